/** The Emporium storefront: one static page talking gRPC-Web to the edge it is served from. */
import "../style.css";

import { renderAccount, signOut } from "./account.js";
import { cartCount } from "./cart.js";
import { loadCategories, loadPage, renderCatalog, search } from "./catalog.js";
import { renderCart } from "./checkout.js";
import { h, mount } from "./dom.js";
import { onRender, render, show, state } from "./state.js";
import { renderOrder, renderOrders, showOrders } from "./tracking.js";

function renderHeader(): void {
  const s = state.session;
  const searchForm = h(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const field = (e.currentTarget as HTMLFormElement).elements.namedItem("q") as HTMLInputElement;
        search(field.value.trim());
      },
    },
    h("input", { name: "q", type: "search", placeholder: "Search products", "aria-label": "Search products", value: state.catalog.query }),
    h("button", { type: "submit" }, "Search"),
  );
  const account = s
    ? [
        h("span", { class: "who" }, `Hi, ${s.displayName}`),
        h("button", { type: "button", class: "link", onclick: () => void showOrders() }, "My orders"),
        h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
      ]
    : [
        h("button", { type: "button", class: "link", onclick: () => { state.accountMode = "signin"; show("account"); } }, "Sign in"),
        h("button", { type: "button", class: "link", onclick: () => { state.accountMode = "signup"; show("account"); } }, "Sign up"),
      ];
  mount(
    "header",
    h("a", { class: "brand", href: location.pathname + location.search }, "Emporium"),
    searchForm,
    h("nav", { class: "account" }, account),
    h(
      "button",
      { type: "button", class: "cart-button", onclick: () => show("cart") },
      "Cart ",
      h("span", { class: "badge", "data-testid": "cart-count" }, cartCount(state.cart)),
    ),
  );
}

function renderSide(): void {
  const notice = state.notice;
  const panels = { cart: renderCart, account: renderAccount, order: renderOrder, orders: renderOrders };
  mount(
    "side",
    notice &&
      h(
        "p",
        { class: `notice ${notice.kind}`, role: notice.kind === "error" ? "alert" : "status", "data-testid": "notice" },
        notice.text,
      ),
    panels[state.panel](),
  );
}

onRender("header", renderHeader);
onRender("catalog", renderCatalog);
onRender("side", renderSide);
render();
void loadCategories();
void loadPage();
