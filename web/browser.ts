/**
 * Locating the system Chromium for the headless playground run, and the shape of that run's
 * report. Kept apart from `web/headless.ts` so that a test can skip cleanly (no npm
 * download) when no browser is installed.
 *
 * @module
 */

/** Where the system browser is looked for (after `$GRADUAL_CHROMIUM`). */
export const CHROMIUM_PATHS: readonly string[] = Object.freeze([
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
]);

/**
 * The system Chromium: `$GRADUAL_CHROMIUM` if set, else the first of
 * {@linkcode CHROMIUM_PATHS} that exists.
 *
 * @returns its path, or null when none is installed (or the paths cannot be read)
 */
export function findChromium(): string | null {
  let env: string | undefined;
  try {
    env = Deno.env.get("GRADUAL_CHROMIUM");
  } catch {
    env = undefined;
  }
  for (const p of env ? [env] : CHROMIUM_PATHS) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there, or not readable
    }
  }
  return null;
}

/** One map as read from the page. */
export interface HeadlessMap {
  /** Panel title. */
  title: string;
  /** Method name. */
  method: string;
  /** Extrapolator name, if any. */
  extrapolator?: string;
  /** Map width. */
  width: number;
  /** Map height. */
  height: number;
  /** Method time in the page, ms. */
  ms: number;
  /** The values, row-major. */
  map: number[];
}

/** What `runHeadless` (web/headless.ts) reports. */
export interface HeadlessReport {
  /** The page URL loaded. */
  url: string;
  /** The server's origin. */
  origin: string;
  /** Final page state (`done` or `error`). */
  state: string;
  /** The page's error message, if any. */
  error: string | null;
  /** Backend as reported by the worker. */
  backend: { backend: string; threads: number; simd: boolean; crossOriginIsolated: boolean };
  /** The model as reported by the worker. */
  model: { name: string; inputSize: [number, number]; preprocess: string; ms: number };
  /** Explained class index. */
  classIndex: number;
  /** Top classes. */
  top: { index: number; label: string; score: number; probability: number }[];
  /** The maps. */
  maps: HeadlessMap[];
  /** Page timings, ms: navigation to first maps; the worker's total for that run. */
  times: { firstResult: number; explainTotal: number; backendStart: number };
  /** Every request URL the browser reported (page and workers). */
  requests: string[];
  /** Resource URLs seen by the page's own resource timing. */
  pageResources: string[];
  /** Resource URLs seen by the worker's own resource timing. */
  workerResources: string[];
  /** Console messages. */
  console: { type: string; text: string }[];
  /** Uncaught page errors. */
  pageErrors: string[];
  /** The downloaded figure: size in bytes and whether it starts with the PNG signature. */
  download: { bytes: number; png: boolean; width: number; height: number } | null;
  /** The extra cases of `runHeadless({ scenario })`, when asked for. */
  scenario?: ScenarioReport;
}

/** The page's layout at one viewport width. */
export interface LayoutReport {
  /** Viewport width, px. */
  viewport: number;
  /** The page's scroll width (more than `viewport` = sideways scrolling). */
  pageWidth: number;
  /** Width of the results figure, px. */
  figureWidth: number;
  /** Width of the widest map canvas, px. */
  canvasWidth: number;
  /** Whether the Explain button and the status line are inside the viewport. */
  buttonsInView: boolean;
  /** After scrolling to the bottom: the header's top (0 = stuck) and the status in view. */
  afterScroll: { headerTop: number; statusInView: boolean; scrollY: number };
  /** The screenshot written. */
  screenshot: string;
}

/** What one page state looked like after an action of the scenario. */
export interface CaseReport {
  /** Page state (`done`, `error`, `idle`). */
  state: string;
  /** Error message, if any. */
  error: string | null;
  /** The notice above the page, if any. */
  notice: string | null;
  /** Model name and its first labels. */
  model: { name: string; labels: string[] } | null;
  /** Backend in use, and the one it fell back from. */
  backend: { backend: string; fallbackFrom?: string; fallbackReason?: string } | null;
  /** Titles and layers of the maps shown. */
  maps: { title: string; layer: string }[];
  /** Top class labels shown. */
  top: string[];
  /** Whether Download is enabled, and the file name it would use. */
  download: { enabled: boolean; name: string | null };
  /** Whether the results are dimmed as stale. */
  stale: boolean;
  /** The status line's text. */
  status: string;
  /** The built-in model's note next to the results (empty when hidden). */
  modelNote: string;
}

/** The extra browser cases (layouts, dropped model, bad file, backend fallback). */
export interface ScenarioReport {
  /** Layout at 1440 px and at 375 px. */
  layouts: LayoutReport[];
  /** After dropping model.json + shards + labels.json. */
  droppedModel: CaseReport;
  /** After picking a file that is not an image. */
  badFile: CaseReport;
  /** A page loaded with `backend=webgpu` (falls back to wasm where no adapter exists). */
  webgpu: CaseReport;
  /** After Cancel pressed during an explanation. */
  cancel: CaseReport;
}
