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
}
