/**
 * A Node.js client of Emporium built on the generated TypeScript (gen/ts) and Connect:
 * logs in, lists products, places an order and watches it until it ships (or is rejected).
 *
 *   node build/clients/shop.mjs                                  gRPC, straight to the services
 *   node build/clients/shop.mjs --transport grpc-web --edge http://127.0.0.1:8080
 *                                                                gRPC-Web through the Envoy edge
 *
 * Options: --identity/--catalog/--order host:port (gRPC; defaults are scripts/up's ports),
 * --user/--password (demo/demo-password), --card (4242424242424242 approves), --page-size,
 * --query, --timeout seconds, --json (print one JSON summary instead of prose).
 * Exits 0 when the order reached a final status, 1 on an error or timeout.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

import { type Client, type Interceptor, type Transport, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { CatalogService } from "@emporium/api/emporium/catalog/v1/catalog_service_pb.js";
import { IdentityService } from "@emporium/api/emporium/identity/v1/identity_service_pb.js";
import { type Order, OrderService } from "@emporium/api/emporium/order/v1/order_service_pb.js";

import { formatMoney, isFinal, statusName } from "../shared/orders.js";

const { values: args } = parseArgs({
  options: {
    transport: { type: "string", default: "grpc" },
    edge: { type: "string", default: "http://127.0.0.1:8080" },
    identity: { type: "string", default: "127.0.0.1:50051" },
    catalog: { type: "string", default: "127.0.0.1:50052" },
    order: { type: "string", default: "127.0.0.1:50055" },
    user: { type: "string", default: "demo" },
    password: { type: "string", default: "demo-password" },
    card: { type: "string", default: "4242424242424242" },
    "page-size": { type: "string", default: "5" },
    query: { type: "string", default: "" },
    timeout: { type: "string", default: "60" },
    json: { type: "boolean", default: false },
  },
});

let token = "";
/** Sends the access token (once there is one) as a bearer token, like every client must. */
const bearer: Interceptor = (next) => (request) => {
  if (token) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

type Transports = { identity: Transport; catalog: Transport; order: Transport };

function transports(): Transports {
  if (args.transport === "grpc-web") {
    // One origin for everything: the edge routes by the gRPC path. HTTP/1.1, like a browser.
    const edge = createGrpcWebTransport({
      baseUrl: args.edge!,
      httpVersion: "1.1",
      interceptors: [bearer],
    });
    return { identity: edge, catalog: edge, order: edge };
  }
  if (args.transport !== "grpc") throw new Error(`unknown --transport ${args.transport}`);
  // gRPC (HTTP/2 without TLS) to each service's own port.
  const direct = (target: string) =>
    createGrpcTransport({ baseUrl: `http://${target}`, interceptors: [bearer] });
  return { identity: direct(args.identity!), catalog: direct(args.catalog!), order: direct(args.order!) };
}

type Summary = {
  transport: string;
  user: { userId: string; username: string };
  products: { productId: string; sku: string; name: string; price: string }[];
  order: { orderId: string; statuses: string[]; final: string; rejectionReason: string };
};

function say(line: string): void {
  if (!args.json) console.log(line);
}

async function watch(orders: Client<typeof OrderService>, order: Order, seconds: number) {
  const statuses = [statusName(order.status)];
  let last = order;
  const signal = AbortSignal.timeout(seconds * 1000);
  // The stream sends the current state first, then one message per change, and ends after a
  // final status.
  for await (const change of orders.watchOrder({ orderId: order.orderId }, { signal })) {
    if (change.order) last = change.order;
    const name = statusName(change.status);
    if (statuses[statuses.length - 1] !== name) {
      statuses.push(name);
      say(`  order ${order.orderId}: ${name}${last.rejectionReason ? ` (${last.rejectionReason})` : ""}`);
    }
    if (isFinal(change.status)) break;
  }
  return { statuses, last };
}

async function main(): Promise<number> {
  const t = transports();
  const identity = createClient(IdentityService, t.identity);
  const catalog = createClient(CatalogService, t.catalog);
  const orders = createClient(OrderService, t.order);

  const login = await identity.login({ username: args.user!, password: args.password! });
  token = login.accessToken;
  say(`logged in as ${login.user?.username} (${login.user?.userId}) over ${args.transport}`);

  const page = await catalog.listProducts({
    pageSize: Number(args["page-size"]),
    query: args.query!,
  });
  say(`${page.totalSize} products; the first ${page.products.length}:`);
  for (const p of page.products) say(`  ${p.sku.padEnd(20)} ${p.name.padEnd(40)} ${formatMoney(p.price)}`);
  const first = page.products[0];
  if (!first) throw new Error("the catalog is empty");

  const placed = await orders.placeOrder({
    idempotencyKey: randomUUID(),
    lines: [{ productId: first.productId, quantity: 1 }],
    card: {
      number: args.card!,
      expiryMonth: 12,
      expiryYear: new Date().getFullYear() + 3,
      cvc: "123",
      holderName: "Node Example",
    },
    shippingAddress: {
      name: "Node Example",
      line1: "1 Example Street",
      city: "Dublin",
      postalCode: "D01 F5P2",
      countryCode: "IE",
    },
  });
  const order = placed.order!;
  say(`placed order ${order.orderId} for 1 × ${first.name}, ${formatMoney(order.total)}: ${statusName(order.status)}`);

  const { statuses, last } = await watch(orders, order, Number(args.timeout));
  const summary: Summary = {
    transport: args.transport!,
    user: { userId: login.user?.userId ?? "", username: login.user?.username ?? "" },
    products: page.products.map((p) => ({
      productId: p.productId,
      sku: p.sku,
      name: p.name,
      price: formatMoney(p.price),
    })),
    order: {
      orderId: order.orderId,
      statuses,
      final: statusName(last.status),
      rejectionReason: last.rejectionReason,
    },
  };
  if (args.json) console.log(JSON.stringify(summary));
  return isFinal(last.status) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`shop: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
