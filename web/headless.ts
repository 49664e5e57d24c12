/**
 * Runs the playground in a real, headless browser (the system's Chromium, driven by
 * playwright-core; no browser download): starts the local server, opens the page with a
 * model, a sample, methods and an extrapolator preset through URL parameters, waits for the
 * maps, downloads the figure PNG, and reports the page's maps, every request URL, the
 * console messages and page errors, and the load times. Used by `tests/web_test.ts`.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env
 * --allow-sys web/headless.ts [--model NAME] [--sample FILE] [--methods a,b]
 * [--extrapolator NAME] [--backend wasm] [--timeout MS] [--no-build] [--out result.json]`
 *
 * @module
 */
import { findChromium, type HeadlessMap, type HeadlessReport } from "./browser.ts";
import { startServer } from "./serve.ts";

export { findChromium };
export type { HeadlessMap, HeadlessReport };

/** Options of {@linkcode runHeadless}. */
export interface HeadlessOptions {
  /** The browser executable. */
  chromium: string;
  /** Model name from the catalog (default: the page's first). */
  model?: string;
  /** Sample file name (default: the page's first). */
  sample?: string;
  /** Methods (default `["grad-cam"]`). */
  methods?: string[];
  /** Extrapolator (default `"gradual"`). */
  extrapolator?: string;
  /** Backend (default `"wasm"`). */
  backend?: string;
  /** Build `web/dist` first (default true). */
  build?: boolean;
  /** Give up after this long, ms (default 60000). */
  timeoutMs?: number;
}

/** Flags for a quiet, offline, reproducible headless Chromium. */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--metrics-recording-only",
  "--no-default-browser-check",
]);

interface PageState {
  state: string;
  error: string | null;
  backend: HeadlessReport["backend"];
  model: HeadlessReport["model"];
  workerResources: string[];
  result: {
    classIndex: number;
    top: HeadlessReport["top"];
    timing: { total: number };
    maps: (Omit<HeadlessMap, "map"> & { map: Float32Array })[];
  } | null;
}

/**
 * Loads the playground headless and reads back its maps.
 *
 * @param opts browser path, model, sample, methods, extrapolator, backend, timeout
 * @returns what the page computed and everything the browser did
 */
export async function runHeadless(opts: HeadlessOptions): Promise<HeadlessReport> {
  // Not in deno.json's import map (yet); only this runner needs it.
  const { chromium } = await import("playwright-core");
  const server = await startServer({ log: false, build: opts.build ?? true });
  const origin = new URL(server.url).origin;
  const profile = await Deno.makeTempDir({ prefix: "gradual-chromium-" });
  const timeout = opts.timeoutMs ?? 60_000;
  const q = new URLSearchParams({
    backend: opts.backend ?? "wasm",
    methods: (opts.methods ?? ["grad-cam"]).join(","),
    extrapolator: opts.extrapolator ?? "gradual",
  });
  if (opts.model) q.set("model", opts.model);
  if (opts.sample) q.set("sample", opts.sample);
  const url = `${server.url}?${q}`;
  const requests: string[] = [];
  const consoleMessages: { type: string; text: string }[] = [];
  const pageErrors: string[] = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    args: [...CHROMIUM_ARGS],
    acceptDownloads: true,
    timeout,
  });
  try {
    context.on("request", (r) => requests.push(r.url()));
    const page = context.pages()[0] ?? await context.newPage();
    page.on("console", (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("worker", (w) => {
      // deno-lint-ignore no-explicit-any
      const ww = w as any;
      if (typeof ww.on === "function") {
        try {
          ww.on(
            "console",
            (m: { type(): string; text(): string }) =>
              consoleMessages.push({ type: m.type(), text: `[worker] ${m.text()}` }),
          );
        } catch {
          // older playwright: worker console arrives on the page
        }
      }
    });
    const t0 = performance.now();
    await page.goto(url, { timeout });
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { gradualPlayground?: { state: string } })
          .gradualPlayground;
        return s !== undefined && (s.state === "done" || s.state === "error");
      },
      null,
      { timeout, polling: 50 },
    );
    const firstResult = performance.now() - t0;
    const state = await page.evaluate(() => {
      const s = (globalThis as unknown as { gradualPlayground: PageState }).gradualPlayground;
      const r = s.result;
      return {
        state: s.state,
        error: s.error,
        backend: s.backend,
        model: s.model,
        workerResources: s.workerResources,
        pageResources: performance.getEntriesByType("resource").map((e) => e.name),
        result: r && {
          classIndex: r.classIndex,
          top: r.top,
          timing: r.timing,
          maps: r.maps.map((m) => ({
            title: m.title,
            method: m.method,
            extrapolator: m.extrapolator,
            width: m.width,
            height: m.height,
            ms: m.ms,
            map: Array.from(m.map),
          })),
        },
      };
    });
    let download: HeadlessReport["download"] = null;
    if (state.state === "done") {
      await page.locator("#opacity").fill("70");
      const [dl] = await Promise.all([
        page.waitForEvent("download", { timeout }),
        page.click("#download"),
      ]);
      const path = await dl.path();
      const bytes = await Deno.readFile(path);
      const png = bytes.length > 24 && bytes[0] === 0x89 && bytes[1] === 0x50 &&
        bytes[2] === 0x4e && bytes[3] === 0x47;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      download = {
        bytes: bytes.length,
        png,
        width: png ? dv.getUint32(16) : 0,
        height: png ? dv.getUint32(20) : 0,
      };
    }
    return {
      url,
      origin,
      state: state.state,
      error: state.error,
      backend: state.backend!,
      model: state.model!,
      classIndex: state.result?.classIndex ?? -1,
      top: state.result?.top ?? [],
      maps: (state.result?.maps ?? []) as HeadlessMap[],
      times: {
        firstResult,
        explainTotal: state.result?.timing.total ?? NaN,
        backendStart: (state.backend as unknown as { ms?: number } | null)?.ms ?? NaN,
      },
      requests,
      pageResources: state.pageResources,
      workerResources: state.workerResources,
      console: consoleMessages,
      pageErrors,
      download,
    };
  } finally {
    await context.close().catch(() => {});
    await server.shutdown();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const chromium = findChromium();
  if (!chromium) {
    console.error(
      "headless: no Chromium found (set GRADUAL_CHROMIUM or `apt-get install -y chromium`)",
    );
    Deno.exit(3);
  }
  const report = await runHeadless({
    chromium,
    model: arg("model"),
    sample: arg("sample"),
    methods: arg("methods")?.split(","),
    extrapolator: arg("extrapolator"),
    backend: arg("backend"),
    timeoutMs: arg("timeout") ? Number(arg("timeout")) : undefined,
    build: !Deno.args.includes("--no-build"),
  });
  const out = arg("out");
  if (out) await Deno.writeTextFile(out, JSON.stringify(report));
  const { maps, ...rest } = report;
  console.log(JSON.stringify(
    { ...rest, maps: maps.map(({ map: _m, ...m }) => m) },
    null,
    2,
  ));
  Deno.exit(report.state === "done" ? 0 : 1);
}
