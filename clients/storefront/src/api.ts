/**
 * The storefront's connection to Emporium: gRPC-Web through the Envoy edge, with the
 * generated TypeScript clients (gen/ts). The edge is the page's own origin (it serves the
 * storefront), so no CORS is involved; `?api=http://127.0.0.1:8080` points a storefront
 * served elsewhere (the dev server on :5173, an allowed CORS origin) at an edge.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { CatalogService } from "@emporium/api/emporium/catalog/v1/catalog_service_pb.js";
import { IdentityService, type User } from "@emporium/api/emporium/identity/v1/identity_service_pb.js";
import { InventoryService } from "@emporium/api/emporium/inventory/v1/inventory_service_pb.js";
import { OrderService } from "@emporium/api/emporium/order/v1/order_service_pb.js";

export const apiBase = new URLSearchParams(location.search).get("api") ?? location.origin;

/** The signed-in user, kept for the browser tab (sessionStorage). */
export type Session = { token: string; userId: string; username: string; displayName: string; expiresAt: number };

const SESSION_KEY = "emporium.session";

export function loadSession(): Session | null {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    return session && session.expiresAt > Date.now() ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(token: string, user: User | undefined, expiresInSeconds: bigint): Session {
  const session: Session = {
    token,
    userId: user?.userId ?? "",
    username: user?.username ?? "",
    displayName: user?.displayName || user?.username || "",
    expiresAt: Date.now() + Number(expiresInSeconds) * 1000,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export function clearSession(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

const bearer: Interceptor = (next) => (request) => {
  const session = loadSession();
  if (session) request.header.set("authorization", `Bearer ${session.token}`);
  return next(request);
};

const transport = createGrpcWebTransport({ baseUrl: apiBase, interceptors: [bearer] });

export const identity = createClient(IdentityService, transport);
export const catalog = createClient(CatalogService, transport);
export const inventory = createClient(InventoryService, transport);
export const orders = createClient(OrderService, transport);

/** Readable names of the request fields a service may reject (google.rpc.BadRequest). */
const FIELD_LABELS: Record<string, string> = {
  username: "Username",
  email: "Email",
  password: "Password",
  display_name: "Name",
  "card.number": "Card number",
  "card.expiry_month": "Expiry month",
  "card.expiry_year": "Expiry year",
  "card.cvc": "CVC",
  "card.holder_name": "Card holder",
  "shipping_address.name": "Recipient",
  "shipping_address.line1": "Address",
  "shipping_address.city": "City",
  "shipping_address.postal_code": "Postal code",
  "shipping_address.country_code": "Country",
  lines: "Cart",
};

function label(field: string): string {
  return FIELD_LABELS[field] ?? field.replace(/^lines\[\d+\]\./, "Cart: ").replace(/_/g, " ");
}

/** Decodes google.rpc.BadRequest (field 1: repeated FieldViolation {1: field, 2: description})
 * without generating google/rpc: two strings per violation. */
function fieldViolations(error: ConnectError): [string, string][] {
  const found: [string, string][] = [];
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== "google.rpc.BadRequest") continue;
    const outer = new BinaryReader(detail.value);
    while (outer.pos < outer.len) {
      const [number, wireType] = outer.tag();
      if (number !== 1) {
        outer.skip(wireType);
        continue;
      }
      const inner = new BinaryReader(outer.bytes());
      let field = "";
      let description = "";
      while (inner.pos < inner.len) {
        const [n, type] = inner.tag();
        if (n === 1) field = inner.string();
        else if (n === 2) description = inner.string();
        else inner.skip(type);
      }
      found.push([field, description]);
    }
  }
  return found;
}

/** What to tell a shopper about a failed call. */
export function errorText(error: unknown): string {
  const e = ConnectError.from(error);
  const violations = fieldViolations(e);
  if (violations.length > 0) {
    return violations.map(([field, description]) => `${label(field)}: ${description}`).join("; ");
  }
  switch (e.code) {
    case Code.Unauthenticated:
      return "Your session has expired or the credentials are wrong. Please sign in again.";
    case Code.AlreadyExists:
      return e.rawMessage || "That already exists.";
    case Code.ResourceExhausted:
      return "Too many attempts. Please wait a minute and try again.";
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "The shop is not reachable right now. Please try again in a moment.";
    default:
      return e.rawMessage || `Something went wrong (${Code[e.code]}).`;
  }
}

/** A key that makes a retried PlaceOrder place one order (randomUUID needs a secure context). */
export function idempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}
