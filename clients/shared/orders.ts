/**
 * What every client says about orders and money: status names, which statuses end a watch,
 * and a readable form of a rejection reason. Shared by the Node example and the storefront.
 */
import type { Money } from "@emporium/api/emporium/common/v1/money_pb.js";
import { OrderStatus, OrderStatusSchema } from "@emporium/api/emporium/order/v1/order_service_pb.js";

/** The proto name of a status, e.g. "ORDER_STATUS_SHIPPED" (what grpcurl and Python print). */
export function statusName(status: OrderStatus): string {
  return OrderStatusSchema.values.find((v) => v.number === status)?.name ?? `ORDER_STATUS_${status}`;
}

/** WatchOrder ends after these; CONFIRMED is not final (the order ships next). */
export function isFinal(status: OrderStatus): boolean {
  return (
    status === OrderStatus.SHIPPED ||
    status === OrderStatus.REJECTED ||
    status === OrderStatus.CANCELLED
  );
}

/** Money in minor units as text, e.g. 4299 EUR → "€42.99" (in the given locale). */
export function formatMoney(
  money: Pick<Money, "amountMinor" | "currencyCode"> | undefined,
  locale = "en-IE",
): string {
  if (!money || !money.currencyCode) return "";
  const format = new Intl.NumberFormat(locale, { style: "currency", currency: money.currencyCode });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  // Minor units are integers (bigint): divide in decimal, never through a float of cents.
  const sign = money.amountMinor < 0n ? "-" : "";
  const units = (money.amountMinor < 0n ? -money.amountMinor : money.amountMinor).toString();
  const padded = units.padStart(digits + 1, "0");
  const whole = padded.slice(0, padded.length - digits);
  const fraction = digits > 0 ? "." + padded.slice(padded.length - digits) : "";
  return format.format(Number(`${sign}${whole}${fraction}`));
}

/** Why an order was rejected, from its rejection_reason ("payment declined: CARD_DECLINED",
 * "out of stock: SKU-1, SKU-2"). */
export type Rejection =
  | { kind: "declined"; code: string }
  | { kind: "out_of_stock"; skus: string[] }
  | { kind: "other"; reason: string };

export function parseRejection(reason: string): Rejection {
  const [head, ...rest] = reason.split(":");
  const detail = rest.join(":").trim();
  if (head.trim() === "payment declined") return { kind: "declined", code: detail };
  if (head.trim() === "out of stock") {
    return { kind: "out_of_stock", skus: detail.split(",").map((s) => s.trim()).filter(Boolean) };
  }
  return { kind: "other", reason };
}

/** Plain-language explanations of the decline reasons the order service reports
 * ("payment declined: card declined"; the payment service's DeclineReason, docs/payments.md). */
const DECLINES: Record<string, string> = {
  "card declined": "the card was declined by its issuer",
  "insufficient funds": "the card has insufficient funds",
  "expired card": "the card has expired",
  "invalid card": "the card details are not valid (check the number and CVC)",
  "processor error": "the payment processor did not answer; nothing was charged",
};

export function declineText(reason: string): string {
  // Accept the enum spelling too (CARD_DECLINED).
  const key = reason.toLowerCase().replace(/_/g, " ").trim();
  return DECLINES[key] ?? `the payment was refused (${reason || "no reason given"})`;
}
