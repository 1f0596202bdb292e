/**
 * Walks through the storefront in headless Chromium (Debian's, driven by playwright-core) the
 * way a shopper would, and prints what the page showed as one JSON object for
 * tests/e2e/test_storefront.py to assert on. Screenshots go to --screenshots.
 *
 *   node dist/storefront-e2e.mjs --url http://127.0.0.1:8080 --user u --password p \
 *     --screenshots ../test-artifacts/storefront [--serve-from dist/storefront]
 *
 * --serve-from answers the page's own files (/ and /assets/*) from a directory inside the
 * browser, for an edge that does not serve the storefront itself; the API calls still go to
 * the edge at --url.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { parseArgs } from "node:util";

import { type BrowserContext, type Page, chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    user: { type: "string" },
    password: { type: "string" },
    screenshots: { type: "string" },
    "serve-from": { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    timeout: { type: "string", default: "30" },
  },
});

const base = args.url!.replace(/\/$/, "");
const waitMs = Number(args.timeout) * 1000;
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

async function serveLocally(context: BrowserContext, dir: string): Promise<void> {
  const answer = (path: string) => async (route: { fulfill: (r: object) => Promise<void> }) => {
    const body = await readFile(join(dir, path));
    await route.fulfill({ status: 200, body, headers: { "content-type": TYPES[extname(path)] ?? "application/octet-stream" } });
  };
  await context.route(`${base}/`, answer("index.html"));
  await context.route(`${base}/assets/**`, (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\//, "");
    return answer(path)(route);
  });
}

const productNames = (page: Page) => page.getByTestId("product").locator(".product-name").allTextContents();

async function shot(page: Page, name: string): Promise<string> {
  const path = join(args.screenshots!, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

async function searchFor(page: Page, query: string): Promise<void> {
  await page.getByRole("searchbox", { name: "Search products" }).fill(query);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.getByTestId("catalog-summary").filter({ hasText: `“${query}”` }).waitFor();
}

async function checkout(page: Page, card: string): Promise<void> {
  const year = (new Date().getFullYear() + 3) % 100;
  const fill = (label: string, value: string) => page.getByLabel(label, { exact: true }).fill(value);
  await fill("Card number", card);
  await fill("Expiry (MM/YY)", `12/${year}`);
  await fill("CVC", "123");
  await fill("Name on card", "Storefront Shopper");
  await fill("Recipient", "Storefront Shopper");
  await fill("Address", "1 Test Street");
  await fill("Postal code", "D01 F5P2");
  await fill("City", "Dublin");
  await fill("Country code", "IE");
  await page.getByRole("button", { name: /^Place order/ }).click();
}

const statusText = (page: Page) => page.getByTestId("order-status").textContent();
const history = (page: Page) => page.getByTestId("order-history").locator("li").evaluateAll((items) => items.map((li) => li.getAttribute("data-status")));
const alertText = (page: Page) => page.getByRole("alert").first().textContent();

async function walk(page: Page) {
  const seen: Record<string, unknown> = {};

  await page.goto(`${base}/`);
  await page.getByTestId("product").first().waitFor();
  await page.getByTestId("product").locator(".stock").first().filter({ hasText: /stock|left/ }).waitFor();
  seen.title = await page.title();
  seen.catalog = { names: await productNames(page), summary: await page.getByTestId("catalog-summary").textContent() };
  seen.screenshots = [await shot(page, "catalog")];

  // The page number follows the products on screen, not the request under way.
  await page.getByRole("button", { name: "Next →" }).click();
  await page.getByTestId("page-number").filter({ hasText: "Page 2" }).waitFor();
  seen.page2 = { names: await productNames(page), summary: await page.getByTestId("catalog-summary").textContent() };
  await page.getByRole("button", { name: "← Previous" }).click();
  await page.getByTestId("page-number").filter({ hasText: "Page 1" }).waitFor();

  await searchFor(page, "coffee");
  seen.search = { names: await productNames(page), summary: await page.getByTestId("catalog-summary").textContent() };

  // Sign up, sign out, sign in again.
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByLabel("Username").fill(args.user!);
  await page.getByLabel("Email").fill(`${args.user}@example.test`);
  await page.getByLabel("Your name").fill("Storefront Shopper");
  await page.getByLabel("Password").fill(args.password!);
  await page.getByRole("button", { name: "Create account" }).click();
  seen.signUp = await page.getByTestId("notice").filter({ hasText: "Signed in as" }).textContent();
  await page.locator("#header").getByRole("button", { name: "Sign out" }).click();
  await page.getByTestId("notice").filter({ hasText: "signed out" }).waitFor();
  await page.getByLabel("Username").fill(args.user!);
  await page.getByLabel("Password").fill(args.password!);
  await page.getByRole("form", { name: "Sign in" }).getByRole("button", { name: "Sign in" }).click();
  seen.signIn = await page.getByTestId("notice").filter({ hasText: "Signed in as" }).textContent();

  // An approved card: PENDING → CONFIRMED → SHIPPED, live.
  await searchFor(page, "espresso");
  await page.getByRole("button", { name: "Add Espresso Blend Beans 1 kg to cart" }).click();
  seen.cartCount = await page.getByTestId("cart-count").textContent();
  await checkout(page, "4242 4242 4242 4242");
  await page.getByTestId("order-status").filter({ hasText: /Confirmed|Shipped/ }).waitFor({ timeout: waitMs });
  (seen.screenshots as string[]).push(await shot(page, "order-confirmed"));
  await page.getByTestId("order-status").filter({ hasText: "Shipped" }).waitFor({ timeout: waitMs });
  (seen.screenshots as string[]).push(await shot(page, "order-shipped"));
  seen.approved = {
    orderId: await page.locator("[data-order-id]").getAttribute("data-order-id"),
    status: await statusText(page),
    history: await history(page),
    cartCountAfter: await page.getByTestId("cart-count").textContent(),
  };

  // A mistyped card number: the service's field violation, in words, and no order.
  await searchFor(page, "sencha");
  await page.getByRole("button", { name: "Add Japanese Sencha 100 g to cart" }).click();
  await checkout(page, "4242 4242 4242 4241");
  seen.invalidCard = await page.getByTestId("notice").filter({ hasText: "Card number" }).textContent();

  // The decline test card: the order is rejected and the page says why.
  await checkout(page, "4000 0000 0000 0002");
  await page.getByTestId("order-status").filter({ hasText: "Rejected" }).waitFor({ timeout: waitMs });
  seen.declined = {
    orderId: await page.locator("[data-order-id]").getAttribute("data-order-id"),
    status: await statusText(page),
    alert: await alertText(page),
    cartCountAfter: await page.getByTestId("cart-count").textContent(),
  };
  (seen.screenshots as string[]).push(await shot(page, "order-declined"));

  // More than the stock: rejected as out of stock, in words.
  await page.getByRole("button", { name: /^Cart/ }).click();
  await page.getByRole("button", { name: "Remove Japanese Sencha 100 g" }).click();
  await searchFor(page, "tent");
  await page.getByRole("button", { name: "Add Two-Person Backpacking Tent to cart" }).click();
  const quantity = page.getByLabel("Quantity of Two-Person Backpacking Tent");
  await quantity.fill("11");
  await quantity.press("Tab");
  await checkout(page, "4242 4242 4242 4242");
  await page.getByTestId("order-status").filter({ hasText: "Rejected" }).waitFor({ timeout: waitMs });
  seen.outOfStock = { status: await statusText(page), alert: await alertText(page) };
  (seen.screenshots as string[]).push(await shot(page, "order-out-of-stock"));
  return seen;
}

async function main(): Promise<void> {
  await mkdir(args.screenshots!, { recursive: true });
  // A fresh profile every run: nothing carried over from an earlier browser.
  const profile = await mkdtemp(join(tmpdir(), "emporium-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1280, height: 900 },
  });
  const problems: string[] = [];
  try {
    context.setDefaultTimeout(waitMs);
    if (args["serve-from"]) await serveLocally(context, args["serve-from"]);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    let seen: Record<string, unknown>;
    try {
      seen = await walk(page);
    } catch (error) {
      await shot(page, "failure").catch(() => undefined);
      throw error;
    }
    console.log(JSON.stringify({ ...seen, problems }));
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
