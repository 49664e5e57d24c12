/**
 * Runs the playground in a real, headless browser (the system's Chromium, driven by
 * playwright-core; no browser download): starts the local server, opens the page with a
 * model, a sample, methods and an extrapolator preset through URL parameters, waits for the
 * maps, downloads the figure PNG, and reports the page's maps, every request URL, the
 * console messages and page errors, and the load times. Used by `tests/web_test.ts`.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env
 * --allow-sys web/headless.ts [--model NAME] [--sample FILE] [--methods a,b]
 * [--extrapolator NAME] [--backend wasm] [--timeout MS] [--no-build] [--out result.json]
 * [--shots DIR --drop-model model.json,shard.bin,labels.json]`; with `--shots`, the extra
 * cases run too (screenshots at 1440 and 375 px, Cancel, a dropped model, a bad file, a
 * page asking for WebGPU).
 *
 * @module
 */
/// <reference lib="dom" />
import { Buffer } from "node:buffer";
import {
  type CaseReport,
  findChromium,
  type HeadlessMap,
  type HeadlessReport,
  type LayoutReport,
  type ScenarioReport,
} from "./browser.ts";
import { startServer } from "./serve.ts";

export { findChromium };
export type { CaseReport, HeadlessMap, HeadlessReport, LayoutReport, ScenarioReport };

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
  /** Also run the extra cases ({@linkcode ScenarioOptions}) after the first result. */
  scenario?: ScenarioOptions;
}

/** The extra cases of a headless run. */
export interface ScenarioOptions {
  /** Folder for the screenshots (`playground-1440.png`, `playground-375.png`, ...). */
  shots: string;
  /** Files to drop as a model: model.json, its shards and labels.json. */
  dropModel: string[];
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
    await untilFirstResult(page, timeout);
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
    let scenario: ScenarioReport | undefined;
    if (opts.scenario && state.state === "done") {
      scenario = await runScenario(context, page, url, opts.scenario, timeout);
    }
    return {
      scenario,
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
    scenario: arg("shots")
      ? { shots: arg("shots")!, dropModel: (arg("drop-model") ?? "").split(",").filter((f) => f) }
      : undefined,
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

// ------------------------------------------------------------------------------------------
// The extra cases
// ------------------------------------------------------------------------------------------

/** The parts of playwright's Page the scenario uses. */
interface ScenarioPage {
  setViewportSize(s: { width: number; height: number }): Promise<void>;
  screenshot(o: { path: string; fullPage?: boolean }): Promise<unknown>;
  evaluate<R, A>(fn: (arg: A) => R, arg: A): Promise<R>;
  waitForFunction<A>(
    fn: (arg: A) => boolean,
    arg: A,
    o: { timeout: number; polling: number },
  ): Promise<unknown>;
  setInputFiles(
    selector: string,
    files: string[] | { name: string; mimeType: string; buffer: Buffer },
  ): Promise<void>;
  click(selector: string): Promise<void>;
  goto(url: string, o: { timeout: number }): Promise<unknown>;
  waitForTimeout(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** The page's state as a {@linkcode CaseReport}. */
function readCase(page: ScenarioPage): Promise<CaseReport> {
  return page.evaluate(() => {
    interface S {
      state: string;
      error: string | null;
      notice: string | null;
      downloadName: string | null;
      model: { name: string; labels: string[] } | null;
      backend: { backend: string; fallbackFrom?: string; fallbackReason?: string } | null;
      result: {
        maps: { title: string; layer: string }[];
        top: { label: string }[];
      } | null;
    }
    const s = (globalThis as unknown as { gradualPlayground: S }).gradualPlayground;
    const el = (id: string) => document.getElementById(id)!;
    return {
      state: s.state,
      error: s.error,
      notice: s.notice,
      model: s.model && { name: s.model.name, labels: s.model.labels.slice(0, 10) },
      backend: s.backend && {
        backend: s.backend.backend,
        fallbackFrom: s.backend.fallbackFrom,
        fallbackReason: s.backend.fallbackReason,
      },
      maps: (s.result?.maps ?? []).map((m) => ({ title: m.title, layer: m.layer })),
      top: (s.result?.top ?? []).map((t) => t.label),
      download: {
        enabled: !(el("download") as HTMLButtonElement).disabled,
        name: s.downloadName,
      },
      stale: document.querySelector("main")!.classList.contains("stale"),
      status: el("status").textContent ?? "",
      modelNote: el("model-note").hidden ? "" : el("model-note").textContent ?? "",
    };
  }, null);
}

/** Waits for a freshly loaded page's first result (`done` or `error`). */
async function untilFirstResult(page: ScenarioPage, timeout: number): Promise<void> {
  await page.waitForFunction(
    () => {
      const s = (globalThis as unknown as { gradualPlayground?: { state: string } })
        .gradualPlayground;
      return s !== undefined && (s.state === "done" || s.state === "error");
    },
    null,
    { timeout, polling: 50 },
  );
}

/** Waits until the page settles (`done`, `error` or `idle`) after `changed` holds. */
async function settle(
  page: ScenarioPage,
  timeout: number,
  since: { resultId: number; modelName: string | null },
  want: "result" | "error" | "model" | "idle",
): Promise<void> {
  await page.waitForFunction(
    ({ since, want }) => {
      const s = (globalThis as unknown as {
        gradualPlayground?: {
          state: string;
          result: { id: number } | null;
          model: { name: string } | null;
        };
      }).gradualPlayground;
      if (!s) return false;
      if (s.state === "error") return true;
      if (want === "result") return s.state === "done" && (s.result?.id ?? -1) !== since.resultId;
      if (want === "model") {
        return s.state === "done" && s.model?.name !== since.modelName &&
          (s.result?.id ?? -1) !== since.resultId;
      }
      if (want === "idle") return s.state === "idle" || s.state === "done";
      return false;
    },
    { since, want },
    { timeout, polling: 50 },
  );
}

function marks(page: ScenarioPage): Promise<{ resultId: number; modelName: string | null }> {
  return page.evaluate(() => {
    const s = (globalThis as unknown as {
      gradualPlayground: { result: { id: number } | null; model: { name: string } | null };
    }).gradualPlayground;
    return { resultId: s.result?.id ?? -1, modelName: s.model?.name ?? null };
  }, null);
}

async function layout(page: ScenarioPage, width: number, shot: string): Promise<LayoutReport> {
  await page.setViewportSize({ width, height: width < 600 ? 812 : 900 });
  await page.waitForTimeout(300);
  await page.evaluate(() => scrollTo(0, 0), null);
  await page.screenshot({ path: shot, fullPage: true });
  const r = await page.evaluate(() => {
    const inView = (id: string) => {
      const b = document.getElementById(id)!.getBoundingClientRect();
      return b.width > 0 && b.top >= 0 && b.bottom <= innerHeight && b.left >= 0 &&
        b.right <= innerWidth;
    };
    const canvases = [...document.querySelectorAll("#figure canvas")].map((c) =>
      c.getBoundingClientRect().width
    );
    return {
      viewport: innerWidth,
      pageWidth: document.documentElement.scrollWidth,
      figureWidth: document.getElementById("figure")!.getBoundingClientRect().width,
      canvasWidth: Math.max(0, ...canvases),
      buttonsInView: inView("run") && inView("status"),
    };
  }, null);
  await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight), null);
  await page.waitForTimeout(100);
  const afterScroll = await page.evaluate(() => {
    const h = document.querySelector("header")!.getBoundingClientRect();
    const st = document.getElementById("status")!.getBoundingClientRect();
    return {
      headerTop: h.top,
      statusInView: st.top >= 0 && st.bottom <= innerHeight,
      scrollY: scrollY,
    };
  }, null);
  await page.screenshot({ path: shot.replace(/\.png$/, "-scrolled.png") });
  await page.evaluate(() => scrollTo(0, 0), null);
  return { ...r, afterScroll, screenshot: shot };
}

/**
 * The extra cases, on the page that showed its first result: layouts and screenshots at
 * 1440 and 375 px, a dropped model with labels.json, a file that is not an image, Cancel
 * during an explanation, and a second page asking for WebGPU.
 */
async function runScenario(
  context: { newPage(): Promise<unknown> },
  page0: unknown,
  url: string,
  opts: ScenarioOptions,
  timeout: number,
): Promise<ScenarioReport> {
  const page = page0 as ScenarioPage;
  await Deno.mkdir(opts.shots, { recursive: true });
  const layouts = [
    await layout(page, 1440, `${opts.shots}/playground-1440.png`),
    await layout(page, 375, `${opts.shots}/playground-375.png`),
  ];
  await page.setViewportSize({ width: 1280, height: 900 });

  // Cancel while a run is under way (the worker is replaced; the shown maps stay).
  let m = await marks(page);
  await page.click("#run");
  await page.click("#cancel");
  await page.waitForFunction(
    () => {
      const s = (globalThis as unknown as { gradualPlayground: { state: string } })
        .gradualPlayground;
      return s.state === "idle" || s.state === "error" || s.state === "done";
    },
    null,
    { timeout, polling: 50 },
  );
  const cancel = await readCase(page);

  // A dropped model with its labels.json.
  m = await marks(page);
  await page.setInputFiles("#model-files", opts.dropModel);
  await settle(page, timeout, m, "model");
  const droppedModel = await readCase(page);

  // A file that is not an image.
  m = await marks(page);
  await page.setInputFiles("#image-file", {
    name: "broken.png",
    mimeType: "image/png",
    buffer: Buffer.from("this is not a PNG file"),
  });
  await settle(page, timeout, m, "error");
  const badFile = await readCase(page);

  // WebGPU asked for by name: used where an adapter exists, else wasm and a notice.
  const gpuPage = await context.newPage() as ScenarioPage;
  try {
    await gpuPage.goto(url.replace(/backend=[a-z]+/, "backend=webgpu"), { timeout });
    await untilFirstResult(gpuPage, timeout);
    const webgpu = await readCase(gpuPage);
    return { layouts, droppedModel, badFile, webgpu, cancel };
  } finally {
    await gpuPage.close();
  }
}
