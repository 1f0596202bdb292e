/** Following an order live: WatchOrder (a server stream over gRPC-Web) from PENDING to
 * CONFIRMED to SHIPPED, or to a rejection explained in plain words. */
import { Code, ConnectError } from "@connectrpc/connect";
import { type Order, OrderStatus } from "@emporium/api/emporium/order/v1/order_service_pb.js";

import { declineText, formatMoney, isFinal, parseRejection } from "../../shared/orders.js";
import { errorText, orders } from "./api.js";
import { saveCart } from "./cart.js";
import { h } from "./dom.js";
import { type Notice, render, show, state } from "./state.js";

const LABELS: Record<OrderStatus, string> = {
  [OrderStatus.UNSPECIFIED]: "Unknown",
  [OrderStatus.PENDING]: "Pending",
  [OrderStatus.CONFIRMED]: "Confirmed",
  [OrderStatus.REJECTED]: "Rejected",
  [OrderStatus.CANCELLED]: "Cancelled",
  [OrderStatus.SHIPPED]: "Shipped",
};

/** Why the order was refused, in words a shopper can act on. */
export function rejectionText(order: Order): string {
  const rejection = parseRejection(order.rejectionReason);
  switch (rejection.kind) {
    case "declined":
      return `Your card was declined: ${declineText(rejection.code)}. Nothing was charged — please try another card.`;
    case "out_of_stock": {
      const names = order.lines.filter((l) => rejection.skus.includes(l.sku)).map((l) => l.name);
      const what = names.length ? names.join(", ") : rejection.skus.join(", ");
      const verb = names.length > 1 ? "are" : "is";
      return `Sorry, ${what} ${verb} out of stock in the quantity you asked for. Nothing was charged; lower the quantity and try again.`;
    }
    default:
      return `The order could not be completed: ${rejection.reason}.`;
  }
}

function record(status: OrderStatus): void {
  const last = state.history[state.history.length - 1];
  if (!last || last.status !== status) state.history.push({ status, at: new Date() });
}

function outcome(order: Order): Notice {
  switch (order.status) {
    case OrderStatus.CONFIRMED:
      return { kind: "success", text: "Payment taken and stock reserved: your order is confirmed." };
    case OrderStatus.SHIPPED:
      return { kind: "success", text: "Your order is on its way." };
    case OrderStatus.REJECTED:
      return { kind: "error", text: rejectionText(order) };
    case OrderStatus.CANCELLED:
      return { kind: "info", text: "The order was cancelled." };
    default:
      return { kind: "info", text: "Order placed. Waiting for payment and stock…" };
  }
}

function apply(order: Order): void {
  state.order = order;
  record(order.status);
  if (order.status === OrderStatus.CONFIRMED && state.cart.length) {
    state.cart = []; // bought: a rejected order keeps the cart for another try
    saveCart(state.cart);
  }
  state.notice = outcome(order);
  render("header", "side");
}

/** Shows `order` and follows it until a final status (reconnecting if the stream drops). */
export function watch(order: Order): void {
  state.watching?.abort();
  const controller = new AbortController();
  state.watching = controller;
  state.history = [];
  state.panel = "order";
  apply(order);
  void follow(order.orderId, controller.signal);
}

async function follow(orderId: string, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; attempt <= 5 && !signal.aborted; attempt++) {
    try {
      for await (const change of orders.watchOrder({ orderId }, { signal })) {
        if (change.order) apply(change.order);
        if (isFinal(change.status)) return;
      }
      return; // the server ended the stream after a final status
    } catch (error) {
      if (signal.aborted || ConnectError.from(error).code === Code.Canceled) return;
      if (ConnectError.from(error).code === Code.NotFound || attempt === 5) {
        state.notice = { kind: "error", text: `Live updates stopped: ${errorText(error)}` };
        render("side");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

const STEPS = [OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.SHIPPED];

function timeline(order: Order) {
  const failed = order.status === OrderStatus.REJECTED || order.status === OrderStatus.CANCELLED;
  const steps = failed ? [OrderStatus.PENDING, order.status] : STEPS;
  const reached = failed ? steps.length - 1 : steps.indexOf(order.status);
  return h(
    "ol",
    { class: "timeline", "aria-label": "Order progress" },
    steps.map((step, i) =>
      h(
        "li",
        { class: [i <= reached ? "done" : "", i === reached ? "current" : "", failed && i === reached ? "failed" : ""].join(" ").trim() },
        LABELS[step],
      ),
    ),
  );
}

export function renderOrder(): HTMLElement {
  const order = state.order;
  if (!order) return h("section", { class: "panel" }, h("p", { class: "muted" }, "No order yet."));
  return h(
    "section",
    { class: "panel", "aria-labelledby": "order-title", "data-order-id": order.orderId },
    h("h2", { id: "order-title" }, "Order ", h("code", {}, order.orderId.slice(0, 8))),
    h(
      "p",
      {},
      "Status: ",
      h("strong", { class: `status status-${LABELS[order.status].toLowerCase()}`, "data-testid": "order-status", "aria-live": "polite" }, LABELS[order.status]),
    ),
    timeline(order),
    h(
      "ul",
      { class: "cart" },
      order.lines.map((l) => h("li", { class: "cart-line" }, h("span", { class: "cart-name" }, `${l.quantity} × ${l.name}`), h("span", { class: "price" }, formatMoney(l.lineTotal)))),
    ),
    h("p", { class: "total" }, "Total ", h("strong", {}, formatMoney(order.total))),
    h("h3", {}, "Updates"),
    h(
      "ol",
      { class: "history", "data-testid": "order-history" },
      state.history.map((entry) => h("li", { "data-status": LABELS[entry.status] }, h("time", {}, entry.at.toLocaleTimeString()), " ", LABELS[entry.status])),
    ),
    h(
      "div",
      { class: "row" },
      order.status === OrderStatus.REJECTED && state.cart.length > 0 && h("button", { type: "button", class: "primary", onclick: () => show("cart", state.notice) }, "Back to checkout"),
      h("button", { type: "button", onclick: () => void showOrders() }, "My orders"),
    ),
  );
}

export async function showOrders(): Promise<void> {
  if (!state.session) {
    show("account", { kind: "info", text: "Sign in to see your orders." });
    return;
  }
  show("orders");
  try {
    state.recent = (await orders.listOrders({ pageSize: 10 })).orders;
  } catch (error) {
    state.notice = { kind: "error", text: errorText(error) };
  }
  render("side");
}

export function renderOrders(): HTMLElement {
  return h(
    "section",
    { class: "panel", "aria-labelledby": "orders-title" },
    h("h2", { id: "orders-title" }, "Your orders"),
    state.recent.length
      ? h(
          "ul",
          { class: "orders" },
          state.recent.map((o) =>
            h(
              "li",
              { "data-testid": "order-row" },
              h("span", {}, o.createTime ? new Date(Number(o.createTime.seconds) * 1000).toLocaleString() : ""),
              h("span", {}, o.lines.map((l) => `${l.quantity} × ${l.name}`).join(", ")),
              h("strong", {}, LABELS[o.status]),
              h("button", { type: "button", class: "link", onclick: () => watch(o) }, isFinal(o.status) ? "Details" : "Track"),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No orders yet."),
  );
}
