/** The cart lives in the browser (localStorage) until checkout; prices shown here are the
 * catalog's at the time of adding — the order service prices the order itself. */
import type { Product } from "@emporium/api/emporium/catalog/v1/catalog_service_pb.js";

export type CartLine = {
  productId: string;
  sku: string;
  name: string;
  priceMinor: string; // bigint as text (JSON has no bigint)
  currency: string;
  quantity: number;
};

/** The order service's limit per line. */
export const MAX_QUANTITY = 100;
const CART_KEY = "emporium.cart";

export function loadCart(): CartLine[] {
  try {
    const lines = JSON.parse(localStorage.getItem(CART_KEY) ?? "[]") as CartLine[];
    return Array.isArray(lines) ? lines : [];
  } catch {
    return [];
  }
}

export function saveCart(lines: CartLine[]): void {
  localStorage.setItem(CART_KEY, JSON.stringify(lines));
}

export function addToCart(lines: CartLine[], product: Product): CartLine[] {
  const existing = lines.find((line) => line.productId === product.productId);
  if (existing) {
    return setQuantity(lines, product.productId, existing.quantity + 1);
  }
  return [
    ...lines,
    {
      productId: product.productId,
      sku: product.sku,
      name: product.name,
      priceMinor: (product.price?.amountMinor ?? 0n).toString(),
      currency: product.price?.currencyCode ?? "EUR",
      quantity: 1,
    },
  ];
}

export function setQuantity(lines: CartLine[], productId: string, quantity: number): CartLine[] {
  if (!Number.isFinite(quantity) || quantity < 1) {
    return lines.filter((line) => line.productId !== productId);
  }
  const bounded = Math.min(Math.floor(quantity), MAX_QUANTITY);
  return lines.map((line) => (line.productId === productId ? { ...line, quantity: bounded } : line));
}

export function cartCount(lines: CartLine[]): number {
  return lines.reduce((sum, line) => sum + line.quantity, 0);
}

/** The total per currency (a cart is normally one currency). */
export function cartTotals(lines: CartLine[]): { amountMinor: bigint; currencyCode: string }[] {
  const totals = new Map<string, bigint>();
  for (const line of lines) {
    totals.set(line.currency, (totals.get(line.currency) ?? 0n) + BigInt(line.priceMinor) * BigInt(line.quantity));
  }
  return [...totals].map(([currencyCode, amountMinor]) => ({ amountMinor, currencyCode }));
}
