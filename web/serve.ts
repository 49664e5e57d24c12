/**
 * The playground's local server: builds `web/dist/` (see `web/build.ts`), then serves the
 * page and the repository files it needs on 127.0.0.1, on a free port unless one is given,
 * and prints the URL.
 *
 * Every response carries `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`, so the page is cross-origin isolated and
 * the wasm backend can use threads. Only these paths are served (GET/HEAD):
 * `/web/…` (the page and its bundles), `/models/…` (built-in models and sample images),
 * `/tests/fixtures/models/vgg_tiny/tfjs/…` (the development model), and
 * `/api/catalog.json` (the models and samples on offer); and of those only the file types
 * of {@linkcode MIME_TYPES} (no TypeScript sources).
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env
 * web/serve.ts [--port N] [--no-build]`
 *
 * @module
 */
import { BUILTIN_MODELS } from "../models/builtin.ts";
import { build, REPO_ROOT } from "./build.ts";
import type { Catalog, CatalogModel, CatalogSample } from "./protocol.ts";

/** Options of {@linkcode startServer}. */
export interface ServeOptions {
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Build `web/dist` first (default true). */
  build?: boolean;
  /** Print the URL and build line (default true). */
  log?: boolean;
}

/** A running playground server. */
export interface PlaygroundServer {
  /** The page's URL, e.g. `http://127.0.0.1:41234/web/`. */
  url: string;
  /** The bound port. */
  port: number;
  /** Stops the server. */
  shutdown(): Promise<void>;
}

/** Content types by file extension. */
export const MIME_TYPES: Readonly<Record<string, string>> = Object.freeze({
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  map: "application/json; charset=utf-8",
  wasm: "application/wasm",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  bin: "application/octet-stream",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  svg: "image/svg+xml",
});

/** Path prefixes (relative to the repository root) the server may read. */
const ALLOWED = ["web/", "models/", "tests/fixtures/models/vgg_tiny/tfjs/"];

/** The development model used until the built-in models are trained. */
const DEV_MODEL: CatalogModel = {
  name: "vgg_tiny",
  title: "vgg_tiny (test fixture, random weights)",
  modelUrl: "/tests/fixtures/models/vgg_tiny/tfjs/model.json",
  preprocess: "imagenet",
  description: "The 64x64 VGG-style fixture model of tests/fixtures (random but calibrated " +
    "weights, 10 classes, ImageNet scaling): for development and tests.",
  builtin: false,
};

function securityHeaders(h: Headers): Headers {
  h.set("Cross-Origin-Opener-Policy", "same-origin");
  h.set("Cross-Origin-Embedder-Policy", "require-corp");
  h.set("Cross-Origin-Resource-Policy", "same-origin");
  h.set("X-Content-Type-Options", "nosniff");
  h.set("Cache-Control", "no-cache");
  return h;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

const root = decodeURIComponent(REPO_ROOT.pathname);

/** Repository-relative path of a `file:` URL inside the repository. */
function repoPath(u: URL): string {
  return decodeURIComponent(u.pathname).slice(root.length);
}

/**
 * The models and samples on offer: the built-in models whose files exist, then the
 * development fixture model, and the sample scenes of `models/samples/` (masks left out).
 *
 * @returns the catalog the page loads from `/api/catalog.json`
 */
export async function catalog(): Promise<Catalog> {
  const models: CatalogModel[] = [];
  for (const m of Object.values(BUILTIN_MODELS)) {
    if (!(await exists(decodeURIComponent(m.modelUrl.pathname)))) continue;
    const labels = await exists(decodeURIComponent(m.labelsUrl.pathname));
    models.push({
      name: m.name,
      title: `${m.name} (built-in)`,
      modelUrl: `/${repoPath(m.modelUrl)}`,
      labelsUrl: labels ? `/${repoPath(m.labelsUrl)}` : undefined,
      preprocess: m.preprocess,
      description: m.description,
      builtin: true,
    });
  }
  if (await exists(`${root}${DEV_MODEL.modelUrl.slice(1)}`)) models.push(DEV_MODEL);
  const samples: CatalogSample[] = [];
  try {
    const list = JSON.parse(await Deno.readTextFile(`${root}models/samples/samples.json`)) as {
      file: string;
      className?: string;
    }[];
    for (const s of list) {
      if (/_mask\.png$/.test(s.file)) continue;
      samples.push({ file: s.file, url: `/models/samples/${s.file}`, className: s.className });
    }
  } catch {
    try {
      for await (const e of Deno.readDir(`${root}models/samples`)) {
        if (e.isFile && /\.(png|jpe?g)$/i.test(e.name) && !/_mask\.png$/.test(e.name)) {
          samples.push({ file: e.name, url: `/models/samples/${e.name}` });
        }
      }
    } catch {
      // no samples folder: the page offers drag and drop only
    }
    samples.sort((a, b) => a.file.localeCompare(b.file));
  }
  return { models, samples };
}

function notFound(): Response {
  return new Response("not found\n", {
    status: 404,
    headers: securityHeaders(new Headers({ "Content-Type": "text/plain; charset=utf-8" })),
  });
}

/**
 * Answers one request (exported for tests).
 *
 * @param req the request
 * @returns the response, with the cross-origin isolation headers
 */
export async function handle(req: Request): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: securityHeaders(new Headers({ Allow: "GET, HEAD" })),
    });
  }
  const url = new URL(req.url);
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return notFound();
  }
  if (path === "/" || path === "/web") {
    return new Response(null, {
      status: 302,
      headers: securityHeaders(new Headers({ Location: "/web/" })),
    });
  }
  if (path === "/api/catalog.json") {
    const body = JSON.stringify(await catalog());
    return new Response(req.method === "HEAD" ? null : body, {
      headers: securityHeaders(new Headers({ "Content-Type": MIME_TYPES.json })),
    });
  }
  if (path.endsWith("/")) path += "index.html";
  const rel = path.slice(1);
  const segments = rel.split("/");
  if (
    segments.some((s) => s === "" || s === "." || s === ".." || s.startsWith(".")) ||
    rel.includes("\\") || rel.includes("\0") || !ALLOWED.some((a) => rel.startsWith(a))
  ) {
    return notFound();
  }
  // Only known file types (no sources, no dotfiles).
  const ext = rel.slice(rel.lastIndexOf(".") + 1).toLowerCase();
  if (!Object.hasOwn(MIME_TYPES, ext) || ext === "md" && !rel.startsWith("models/")) {
    return notFound();
  }
  const file = `${root}${rel}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(file);
  } catch {
    return notFound();
  }
  if (!info.isFile) return notFound();
  const type = MIME_TYPES[ext];
  const headers = securityHeaders(
    new Headers({
      "Content-Type": type,
      "Content-Length": String(info.size),
    }),
  );
  if (req.method === "HEAD") return new Response(null, { headers });
  const f = await Deno.open(file, { read: true });
  return new Response(f.readable, { headers });
}

/**
 * Builds the page (unless told not to) and starts the server on 127.0.0.1.
 *
 * @param opts port (0 = a free one), build, log
 * @returns the page's URL and a shutdown function
 */
export async function startServer(opts: ServeOptions = {}): Promise<PlaygroundServer> {
  if (opts.build ?? true) await build({ quiet: !(opts.log ?? true) });
  const { promise, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    onListen: ({ port }) => resolve(port),
    onError: (e) => {
      console.error(`serve: ${e instanceof Error ? e.message : e}`);
      return new Response("internal error\n", {
        status: 500,
        headers: securityHeaders(new Headers()),
      });
    },
  }, handle);
  const port = await promise;
  const url = `http://127.0.0.1:${port}/web/`;
  if (opts.log ?? true) console.log(`gradual playground: ${url}`);
  return { url, port, shutdown: () => server.shutdown() };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: invalid --port ${Deno.args[i + 1]}`);
    Deno.exit(2);
  }
  await startServer({ port, build: !Deno.args.includes("--no-build") });
}
