// Builds the clients with esbuild into clients/dist/ (gitignored):
//   dist/shop.mjs              the Node.js example (its options: node/shop.ts)
//   dist/storefront-e2e.mjs    the headless-Chromium walk through the storefront (tests)
//   dist/storefront/           the storefront: index.html, assets/app.js, assets/app.css
//   dist/storefront/docs/      the API reference (/docs at the edge): Swagger UI from
//                              swagger-ui-dist on the edge's /openapi.json
// `node build.mjs --serve` also serves the storefront on http://localhost:5173 and rebuilds on
// change; ?api= points it at the edge of `scripts/up`, which allows this origin (CORS).
// Type checking is tsc's job (`npm run typecheck`); esbuild only strips the types.
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const site = join(dist, "storefront");

// gen/ts is linked into node_modules (@emporium/api → ../gen/ts): keep the link's path so
// the generated files' own imports resolve from clients/node_modules.
const common = { bundle: true, preserveSymlinks: true, logLevel: "warning", legalComments: "none" };

const node = {
  ...common,
  platform: "node",
  target: "node20",
  format: "esm",
  // playwright-core loads its own files at run time: leave it in node_modules.
  external: ["playwright-core"],
  entryPoints: {
    shop: join(here, "node", "shop.ts"),
    "storefront-e2e": join(here, "e2e", "storefront.ts"),
  },
  outdir: dist,
  outExtension: { ".js": ".mjs" },
};

const browser = {
  ...common,
  platform: "browser",
  target: ["chrome120", "firefox120", "safari17"],
  format: "esm",
  minify: true,
  sourcemap: true,
  entryPoints: { app: join(here, "storefront", "src", "main.ts") },
  outdir: join(site, "assets"),
};

async function page() {
  await mkdir(site, { recursive: true });
  await copyFile(join(here, "storefront", "index.html"), join(site, "index.html"));
  const docs = join(site, "docs");
  const swagger = join(here, "node_modules", "swagger-ui-dist");
  await mkdir(docs, { recursive: true });
  for (const file of ["index.html", "init.js"]) await copyFile(join(here, "docs", file), join(docs, file));
  for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) await copyFile(join(swagger, file), join(docs, file));
}

if (process.argv.includes("--serve")) {
  await page();
  const context = await esbuild.context(browser);
  await context.watch();
  const { hosts, port } = await context.serve({ servedir: site, host: "127.0.0.1", port: 5173 });
  console.log(`storefront on http://localhost:${port}/?api=http://127.0.0.1:8080 (${hosts[0]}; Ctrl-C stops)`);
} else {
  await rm(dist, { recursive: true, force: true });
  await page();
  await Promise.all([esbuild.build(node), esbuild.build(browser)]);
  console.log(`built ${dist}`);
}
