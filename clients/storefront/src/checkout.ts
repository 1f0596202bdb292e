/** The cart and checkout: PlaceOrder with a card and an address, then watch the order. */
import { formatMoney } from "../../shared/orders.js";
import { errorText, idempotencyKey, orders } from "./api.js";
import { MAX_QUANTITY, cartCount, cartTotals, saveCart, setQuantity } from "./cart.js";
import { formValues, h } from "./dom.js";
import { draft, render, show, state } from "./state.js";
import { watch } from "./tracking.js";

const FORM = "checkout";

function expiry(text: string): { month: number; year: number } {
  const match = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(text);
  if (!match) return { month: 0, year: 0 }; // the service names the field
  const year = Number(match[2]);
  return { month: Number(match[1]), year: year < 100 ? 2000 + year : year };
}

async function placeOrder(event: Event): Promise<void> {
  event.preventDefault();
  if (!state.session) {
    show("account", { kind: "info", text: "Sign in or create an account to check out." });
    return;
  }
  const values = formValues(event.currentTarget as HTMLFormElement);
  const { month, year } = expiry(values.expiry);
  state.placing = true;
  state.notice = null;
  render("side");
  try {
    const placed = await orders.placeOrder({
      idempotencyKey: idempotencyKey(),
      lines: state.cart.map((line) => ({ productId: line.productId, quantity: line.quantity })),
      card: {
        number: values.card_number.replace(/[\s-]/g, ""),
        expiryMonth: month,
        expiryYear: year,
        cvc: values.cvc,
        holderName: values.holder_name,
      },
      shippingAddress: {
        name: values.ship_name,
        line1: values.line1,
        city: values.city,
        postalCode: values.postal_code,
        countryCode: values.country_code.toUpperCase(),
      },
    });
    state.placing = false;
    if (placed.order) watch(placed.order);
  } catch (error) {
    state.placing = false;
    state.notice = { kind: "error", text: errorText(error) };
    render("side");
  }
}

function input(name: string, label: string, attributes: Record<string, string | boolean> = {}) {
  const values = draft(FORM);
  return h(
    "label",
    {},
    h("span", {}, label),
    h("input", {
      name,
      value: values[name] ?? "",
      oninput: (e: Event) => {
        values[name] = (e.target as HTMLInputElement).value;
      },
      ...attributes,
    }),
  );
}

function line(item: (typeof state.cart)[number]) {
  const available = state.stock.get(item.sku);
  const short = available !== undefined && BigInt(item.quantity) > available;
  const update = (quantity: number) => {
    state.cart = setQuantity(state.cart, item.productId, quantity);
    saveCart(state.cart);
    render("header", "side");
  };
  return h(
    "li",
    { class: "cart-line", "data-testid": "cart-line" },
    h("span", { class: "cart-name" }, item.name),
    h("input", {
      type: "number",
      min: 1,
      max: MAX_QUANTITY,
      value: item.quantity,
      "aria-label": `Quantity of ${item.name}`,
      onchange: (e: Event) => update(Number((e.target as HTMLInputElement).value)),
    }),
    h("span", { class: "price" }, formatMoney({ amountMinor: BigInt(item.priceMinor) * BigInt(item.quantity), currencyCode: item.currency })),
    h("button", { type: "button", class: "link", "aria-label": `Remove ${item.name}`, onclick: () => update(0) }, "Remove"),
    short && h("small", { class: "warn" }, `Only ${available} in stock`),
  );
}

export function renderCart(): HTMLElement {
  if (!state.cart.length) {
    return h(
      "section",
      { class: "panel", "aria-labelledby": "cart-title" },
      h("h2", { id: "cart-title" }, "Your cart"),
      h("p", { class: "muted" }, "Your cart is empty. Add something from the catalog."),
    );
  }
  const totals = cartTotals(state.cart).map((t) => formatMoney(t)).join(" + ");
  const form = h(
    "form",
    { class: "stack", "aria-label": "Checkout", onsubmit: (e: Event) => void placeOrder(e) },
    h(
      "fieldset",
      {},
      h("legend", {}, "Payment"),
      input("card_number", "Card number", { required: true, inputmode: "numeric", autocomplete: "cc-number", placeholder: "4242 4242 4242 4242" }),
      h(
        "div",
        { class: "row" },
        input("expiry", "Expiry (MM/YY)", { required: true, autocomplete: "cc-exp", placeholder: "12/30" }),
        input("cvc", "CVC", { required: true, inputmode: "numeric", autocomplete: "cc-csc", placeholder: "123" }),
      ),
      input("holder_name", "Name on card", { required: true, autocomplete: "cc-name" }),
      h("p", { class: "hint" }, "Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined."),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Shipping"),
      input("ship_name", "Recipient", { required: true, autocomplete: "name" }),
      input("line1", "Address", { required: true, autocomplete: "address-line1" }),
      h(
        "div",
        { class: "row" },
        input("postal_code", "Postal code", { required: true, autocomplete: "postal-code" }),
        input("city", "City", { required: true, autocomplete: "address-level2" }),
      ),
      input("country_code", "Country code", { required: true, autocomplete: "country", placeholder: "IE", maxlength: "2" }),
    ),
    state.session
      ? h("button", { type: "submit", class: "primary", disabled: state.placing }, state.placing ? "Placing your order…" : `Place order · ${totals}`)
      : h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: () => show("account", { kind: "info", text: "Sign in or create an account to check out." }),
          },
          "Sign in to check out",
        ),
  );
  return h(
    "section",
    { class: "panel", "aria-labelledby": "cart-title" },
    h("h2", { id: "cart-title" }, `Your cart (${cartCount(state.cart)})`),
    h("ul", { class: "cart" }, state.cart.map(line)),
    h("p", { class: "total" }, "Total ", h("strong", { "data-testid": "cart-total" }, totals)),
    form,
  );
}
