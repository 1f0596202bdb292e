/** The catalog: search, category filter, pages of products with their stock. */
import type { Product } from "@emporium/api/emporium/catalog/v1/catalog_service_pb.js";

import { formatMoney } from "../../shared/orders.js";
import { catalog, errorText, inventory } from "./api.js";
import { addToCart, saveCart } from "./cart.js";
import { h, mount } from "./dom.js";
import { render, state } from "./state.js";

export async function loadCategories(): Promise<void> {
  try {
    state.catalog.categories = (await catalog.listCategories({})).categories;
  } catch {
    state.catalog.categories = []; // the filter is optional: browsing works without it
  }
  render("catalog");
}

/** Loads the page at `state.catalog.tokens[last]`. */
export async function loadPage(): Promise<void> {
  const c = state.catalog;
  const request = ++c.request; // a slow answer to an older search must not win
  c.loading = true;
  c.error = "";
  render("catalog");
  try {
    const page = await catalog.listProducts({
      pageSize: c.pageSize,
      pageToken: c.tokens[c.tokens.length - 1],
      query: c.query,
      categoryId: c.categoryId,
    });
    if (request !== c.request) return;
    c.page = page;
    c.shown = { first: (c.tokens.length - 1) * c.pageSize + 1, query: c.query };
  } catch (error) {
    if (request !== c.request) return;
    c.page = null;
    c.error = errorText(error);
  }
  c.loading = false;
  render("catalog");
  void loadStock(c.page?.products ?? []);
}

async function loadStock(products: Product[]): Promise<void> {
  const missing = products.filter((p) => !state.stock.has(p.sku));
  const levels = await Promise.allSettled(missing.map((p) => inventory.getStock({ sku: p.sku })));
  levels.forEach((result, i) => {
    if (result.status === "fulfilled" && result.value.stock) {
      state.stock.set(missing[i].sku, result.value.stock.available);
    }
  });
  if (missing.length) render("catalog");
}

/** A new search or filter starts at the first page. */
export function search(query: string, categoryId = state.catalog.categoryId): void {
  state.catalog.query = query;
  state.catalog.categoryId = categoryId;
  state.catalog.tokens = [""];
  void loadPage();
}

function next(): void {
  const token = state.catalog.page?.nextPageToken;
  if (!token) return;
  state.catalog.tokens.push(token);
  void loadPage();
}

function previous(): void {
  if (state.catalog.tokens.length < 2) return;
  state.catalog.tokens.pop();
  void loadPage();
}

function stockText(sku: string): { text: string; out: boolean } {
  const available = state.stock.get(sku);
  if (available === undefined) return { text: "", out: false };
  if (available <= 0n) return { text: "Out of stock", out: true };
  if (available < 10n) return { text: `Only ${available} left`, out: false };
  return { text: `${available} in stock`, out: false };
}

function card(product: Product) {
  const stock = stockText(product.sku);
  return h(
    "article",
    { class: "product", "data-testid": "product", "data-sku": product.sku },
    h("div", { class: "product-art", "aria-hidden": "true" }, product.name.slice(0, 1)),
    h("h3", { class: "product-name" }, product.name),
    h("p", { class: "product-description" }, product.description),
    h(
      "div",
      { class: "product-foot" },
      h("span", { class: "price" }, formatMoney(product.price)),
      h("span", { class: stock.out ? "stock out" : "stock" }, stock.text),
    ),
    h(
      "button",
      {
        type: "button",
        class: "primary",
        disabled: stock.out,
        "aria-label": `Add ${product.name} to cart`,
        onclick: () => {
          state.cart = addToCart(state.cart, product);
          saveCart(state.cart);
          state.panel = "cart";
          state.notice = { kind: "success", text: `Added ${product.name} to your cart.` };
          render("header", "side");
        },
      },
      "Add to cart",
    ),
  );
}

function chips() {
  const c = state.catalog;
  if (!c.categories.length) return null;
  const chip = (id: string, name: string) =>
    h(
      "button",
      {
        type: "button",
        class: c.categoryId === id ? "chip active" : "chip",
        "aria-pressed": String(c.categoryId === id),
        onclick: () => search(c.query, id),
      },
      name,
    );
  return h("nav", { class: "chips", "aria-label": "Categories" }, chip("", "All"), c.categories.map((x) => chip(x.categoryId, x.name)));
}

function summary() {
  const c = state.catalog;
  if (c.loading && !c.page) return h("p", { class: "muted" }, "Loading the catalog…");
  if (c.error) return h("p", { class: "notice error", role: "alert" }, `The catalog could not be loaded: ${c.error}`);
  if (!c.page) return null;
  // What the products on screen are (the request for the next page may be under way).
  const { first, query } = c.shown;
  const shown = c.page.products.length;
  if (!shown) {
    return h("p", { class: "muted", "data-testid": "catalog-summary" }, query ? `No products match “${query}”.` : "No products.");
  }
  const what = query ? ` for “${query}”` : "";
  return h("p", { class: "muted", "data-testid": "catalog-summary" }, `Showing ${first}–${first + shown - 1} of ${c.page.totalSize}${what}`);
}

export function renderCatalog(): void {
  const c = state.catalog;
  const products = c.page?.products ?? [];
  mount(
    "catalog",
    chips(),
    summary(),
    h("div", { class: "grid", "aria-busy": String(c.loading) }, products.map(card)),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", disabled: c.tokens.length < 2 || c.loading, onclick: previous }, "← Previous"),
      h("span", { "data-testid": "page-number" }, `Page ${Math.floor((c.shown.first - 1) / c.pageSize) + 1}`),
      h("button", { type: "button", disabled: !c.page?.nextPageToken || c.loading, onclick: next }, "Next →"),
    ),
  );
}
