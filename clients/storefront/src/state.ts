/** The page's state, in one object, and re-rendering of the regions that show it. */
import type { Category, ListProductsResponse } from "@emporium/api/emporium/catalog/v1/catalog_service_pb.js";
import type { Order, OrderStatus } from "@emporium/api/emporium/order/v1/order_service_pb.js";

import { type Session, loadSession } from "./api.js";
import { type CartLine, loadCart } from "./cart.js";

export type Panel = "cart" | "account" | "order" | "orders";
export type Region = "header" | "catalog" | "side";

export type Notice = { kind: "error" | "info" | "success"; text: string } | null;

export const state = {
  session: loadSession() as Session | null,
  panel: "cart" as Panel,
  notice: null as Notice, // shown at the top of the side panel
  catalog: {
    query: "",
    categoryId: "",
    categories: [] as Category[],
    pageSize: 9,
    tokens: [""], // page tokens of the pages seen so far: Previous goes back one
    page: null as ListProductsResponse | null,
    shown: { first: 1, query: "" }, // the page on screen: its first product's position, its query
    loading: false,
    error: "",
    request: 0,
  },
  stock: new Map<string, bigint>(), // sku → available
  cart: loadCart() as CartLine[],
  placing: false,
  /** Form inputs as typed, so a re-render never loses them. */
  drafts: {} as Record<string, Record<string, string>>,
  accountMode: "signin" as "signin" | "signup",
  order: null as Order | null,
  history: [] as { status: OrderStatus; at: Date }[], // what the watch showed, in order
  watching: null as AbortController | null,
  recent: [] as Order[],
};

const renderers = new Map<Region, () => void>();

export function onRender(region: Region, render: () => void): void {
  renderers.set(region, render);
}

/** Re-renders the given regions (all when none are given). */
export function render(...regions: Region[]): void {
  for (const region of regions.length ? regions : (["header", "catalog", "side"] as Region[])) {
    renderers.get(region)?.();
  }
}

export function show(panel: Panel, notice: Notice = null): void {
  state.panel = panel;
  state.notice = notice;
  render("header", "side");
}

export function draft(form: string): Record<string, string> {
  return (state.drafts[form] ??= {});
}
