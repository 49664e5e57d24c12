/**
 * `evaluate()`: scores saliency methods (× extrapolators) on a labelled dataset with exact
 * object masks and boxes: pointing game (ties averaged and first-argmax), energy-based
 * pointing game, deletion AUC and insertion AUC, each as a mean with a 95 % bootstrap
 * confidence interval, plus the time per image, and the same metrics for the centre
 * baseline map every method has to beat.
 *
 * What is explained is each sample's **labelled class**, not the model's top-1 class: the
 * masks and boxes locate the labelled object, so a top-1 explanation of a misclassified
 * image would be scored against the wrong object (and the "right" answer for the wrong
 * class is undefined). Deletion and insertion also track the labelled class's probability.
 *
 * Means are over samples. (TorchRay reports the pointing game as the mean of per-class
 * accuracies; on class-balanced data, such as generated scenes with `n` a multiple of 10,
 * the two are equal.)
 *
 * Maps are the toolkit's default output ({@linkcode explainMany} with `normalize: "minmax"`,
 * at model-input resolution), i.e. what a user of `explain` sees.
 *
 * Samples are consumed as a stream in groups of `sampleBatch`; only per-sample scalars are
 * kept, so memory does not grow with the dataset beyond a few numbers per sample.
 * No I/O and no Deno APIs: this runs in browsers.
 *
 * @module
 */
import { explainMany, type ExplainRequest, type ModelLike, sessionOf } from "../core/explain.ts";
import type { Registry } from "../core/registry.ts";
import { tf } from "../core/tensor.ts";
import type { PluginOptions } from "../core/types.ts";
import { centreBaseline } from "./baseline.ts";
import { bootstrapMean, type MeanCI } from "./bootstrap.ts";
import {
  type CurveRequest,
  type CurveStats,
  deletionInsertion,
  type InsertionStart,
} from "./deletion_insertion.ts";
import {
  type Box,
  dilateMask,
  energyPointing,
  pointingScore,
  pointingTolerance,
} from "./pointing.ts";

/** Which map the energy-based pointing game sums (see `ScoringOptions.energy`). */
export type EnergyMap = "minmax" | "raw";

/** Method name used for the centre-baseline row. */
export const CENTRE_BASELINE = "centre-baseline";

/** One labelled sample. */
export interface EvalSample {
  /** Preprocessed image at the model's input size, row-major HWC. */
  image: Float32Array;
  /** Object mask `[H * W]`, nonzero = the labelled object. */
  mask: Uint8Array;
  /** The object's box `[x0, y0, x1, y1]` (x1 / y1 exclusive). */
  box: Box;
  /** The labelled class (what is explained). */
  label: number;
  /**
   * The sample's position in the whole run, when the stream is one shard of it: decides
   * whether it is among the first `curveSamples`, and is reported to `onGroup`. Default: its
   * position in the stream.
   */
  index?: number;
}

/** One sample's scores on one row (what `--results` files record per row). */
export interface SampleRowScores {
  /** Pointing game, tied maxima averaged. */
  pointing: number;
  /** Pointing game, first argmax. */
  pointingFirst: number;
  /** Energy-based pointing game. */
  energy: number;
  /** Deletion AUC (`null` past `curveSamples`). */
  deletion: number | null;
  /** Insertion AUC (`null` past `curveSamples`). */
  insertion: number | null;
  /** Milliseconds to make this sample's map (its share of the group's time). */
  ms: number;
  /** Layer the method worked on (absent for the centre baseline). */
  layer?: string;
}

/** One sample's scores on every row, reported by `EvaluateOptions.onGroup`. */
export interface SampleScores {
  /** The sample's position in the run (`EvalSample.index`, else in the stream). */
  index: number;
  /** The explained class. */
  label: number;
  /** Scores per row, in the order of `EvalResult.rows`. */
  rows: SampleRowScores[];
}

/** Progress of {@linkcode evaluate}. */
export interface EvalProgress {
  /** Samples finished. */
  done: number;
  /** Samples expected (from `total`), if known. */
  total?: number;
  /** Milliseconds since the start. */
  elapsedMs: number;
}

/** The settings every evaluation shares (generated scenes, or a user's dataset). */
export interface ScoringOptions {
  /** The classifier (LayersModel, GraphModel or session). */
  model: ModelLike;
  /** Method names (registry names or aliases), e.g. `["grad-cam", "c-eb"]`. */
  methods: readonly string[];
  /** Extrapolators to combine with every method, `"none"` for none (default `["none"]`). */
  extrapolators?: readonly string[];
  /** Options per method name (as given in `methods`). */
  methodOptions?: Readonly<Record<string, PluginOptions>>;
  /** Options per extrapolator name (as given in `extrapolators`). */
  extrapolatorOptions?: Readonly<Record<string, PluginOptions>>;
  /** Images per model call when scoring deletion / insertion steps (default 32). */
  batchSize?: number;
  /** Samples explained per forward pass and kept in memory at once (default 8). */
  sampleBatch?: number;
  /** Deletion / insertion steps (default 64: 1/64 of the pixels per step). */
  steps?: number;
  /**
   * Compute deletion / insertion (by far the most expensive metrics: `2 · (steps + 1)`
   * forward images per sample and row) only for the first `curveSamples` samples; the
   * other metrics use every sample. Default: all samples.
   */
  curveSamples?: number;
  /**
   * Pointing tolerance in pixels at the model input (default `15 · min(H, W) / 224`:
   * TorchRay's pointing game uses 15 px at 224 × 224).
   */
  tolerance?: number;
  /** Layer every method works on (default: each method's own default layer). */
  layer?: string;
  /** Layer per method name (as given in `methods`), before `layer`. */
  layers?: Readonly<Record<string, string>>;
  /**
   * The map the energy-based pointing game sums (only positive values count in both):
   * `"minmax"` (default): the map as `explain` returns it, min-max normalised to [0, 1]
   * before and after resizing; `"raw"`: the method's map resized without normalisation
   * (then every metric uses the raw maps; pointing and the curves depend only on the order
   * of the values, so they barely change).
   */
  energy?: EnergyMap;
  /** Insertion start: `"gaussian"` (default) or `"rise"` (see `deletionInsertion`). */
  insertionStart?: InsertionStart;
  /** Score step images known to be equal only once (default true; same figures). */
  shareImages?: boolean;
  /** Bootstrap seed (default 0). */
  seed?: number;
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  /** Include the centre-baseline row (default true). */
  baseline?: boolean;
  /** Registry to resolve method names in (default: the built-in one). */
  registry?: Registry;
}

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions extends ScoringOptions {
  /** The dataset, streamed (array, generator or async generator). */
  samples: Iterable<EvalSample> | AsyncIterable<EvalSample>;
  /** Deletion baseline (default 0 in the preprocessed space); see `deletionInsertion`. */
  deletionBaseline?: number | Float32Array;
  /** Insertion blur sigma in pixels (default `5 · min(H, W) / 224`). */
  blurSigma?: number;
  /** Number of samples expected, only for progress reports. */
  total?: number;
  /** Called after every group of samples. */
  onProgress?: (p: EvalProgress) => void;
  /**
   * Called (and awaited) with every group's per-sample scores once the group is scored,
   * e.g. to append them to a results file.
   */
  onGroup?: (scores: SampleScores[]) => void | Promise<void>;
}

/** One row of an evaluation table: method × extrapolator and the request that makes its maps. */
export interface EvalRowSpec {
  /** Method name. */
  method: string;
  /** Extrapolator name, `"none"` for none. */
  extrapolator: string;
  /** The explain request (absent for the centre baseline). */
  request?: ExplainRequest;
}

/** The rows of an evaluation: every method × extrapolator, then the centre baseline. */
export function evalRowSpecs(
  opts: Pick<
    ScoringOptions,
    | "methods"
    | "extrapolators"
    | "methodOptions"
    | "extrapolatorOptions"
    | "baseline"
    | "layer"
    | "layers"
  >,
): EvalRowSpec[] {
  const rows: EvalRowSpec[] = [];
  for (const method of opts.methods) {
    for (const ex of opts.extrapolators ?? ["none"]) {
      rows.push({
        method,
        extrapolator: ex,
        request: {
          method,
          layer: opts.layers?.[method] ?? opts.layer,
          extrapolator: ex === "none" ? undefined : ex,
          methodOptions: opts.methodOptions?.[method],
          extrapolatorOptions: ex === "none" ? undefined : opts.extrapolatorOptions?.[ex],
        },
      });
    }
  }
  if (opts.baseline ?? true) rows.push({ method: CENTRE_BASELINE, extrapolator: "none" });
  return rows;
}

/** The metrics of one method × extrapolator (or the centre baseline). */
export interface EvalRow {
  /** Method name as given (or {@linkcode CENTRE_BASELINE}). */
  method: string;
  /** Extrapolator name, `"none"` for none. */
  extrapolator: string;
  /** Layer the method worked on (absent for the centre baseline). */
  layer?: string;
  /** Pointing game, ties averaged (higher is better). */
  pointing: MeanCI;
  /** Pointing game, first argmax (higher is better). */
  pointingFirst: MeanCI;
  /** Energy-based pointing game: map mass inside the box (higher is better). */
  energy: MeanCI;
  /** Deletion AUC (lower is better). */
  deletion: MeanCI;
  /** Insertion AUC (higher is better). */
  insertion: MeanCI;
  /**
   * Milliseconds per image to make the map: the wall time of this method's own
   * `explainMany` call (its forward pass included) over the batch, divided by the batch
   * size; metric computation excluded.
   */
  msPerImage: number;
}

/** The result of {@linkcode evaluate}. */
export interface EvalResult {
  /** Number of samples. */
  n: number;
  /** Model input height. */
  height: number;
  /** Model input width. */
  width: number;
  /** Pointing tolerance used, in pixels. */
  tolerance: number;
  /** Deletion / insertion steps. */
  steps: number;
  /** Samples the deletion / insertion curves were computed on (the first ones). */
  curveSamples: number;
  /** Bootstrap resamples. */
  resamples: number;
  /** Bootstrap seed. */
  seed: number;
  /** The map the energy pointing game summed. */
  energyMap: EnergyMap;
  /** The insertion start. */
  insertionStart: InsertionStart;
  /** Deletion / insertion work: step images, images run through the model, seconds. */
  curveWork: CurveWork;
  /** One row per method × extrapolator, then the centre baseline. */
  rows: EvalRow[];
  /** Wall time of the whole evaluation, in seconds. */
  seconds: number;
}

/** Deletion / insertion work of an evaluation (throughput = `scored / seconds`). */
export interface CurveWork extends CurveStats {
  /** Seconds spent computing curves. */
  seconds: number;
}

/** Adds one call's stats to a running total. */
export function addCurveWork(total: CurveWork, s: CurveStats, seconds: number): void {
  total.images += s.images;
  total.scored += s.scored;
  total.modelSeconds += s.modelSeconds;
  total.seconds += seconds;
}

/** Pointing and energy scores of one map. */
export interface LocalisationScores {
  /** Pointing game, ties averaged. */
  pointing: number;
  /** Pointing game, first argmax. */
  pointingFirst: number;
  /** Energy-based pointing game. */
  energy: number;
}

/**
 * Pointing (both tie rules) and energy scores of one map, given the dilated mask
 * ({@linkcode dilateMask}) so that it is computed once per sample.
 *
 * @param map saliency map `[H * W]`
 * @param accept the object mask dilated by the pointing tolerance
 * @param box the object's box
 * @param height map height
 * @param width map width
 * @returns the three scores
 */
export function localisationScores(
  map: ArrayLike<number>,
  accept: ArrayLike<number>,
  box: Box,
  height: number,
  width: number,
): LocalisationScores {
  return {
    pointing: pointingScore(map, accept, "average"),
    pointingFirst: pointingScore(map, accept, "first"),
    energy: energyPointing(map, box, height, width),
  };
}

interface RowAcc {
  method: string;
  extrapolator: string;
  layer?: string;
  request?: ExplainRequest;
  pointing: number[];
  pointingFirst: number[];
  energy: number[];
  deletion: number[];
  insertion: number[];
  ms: number;
}

async function* groups<T>(
  it: Iterable<T> | AsyncIterable<T>,
  size: number,
): AsyncGenerator<T[]> {
  let buf: T[] = [];
  for await (const x of it as AsyncIterable<T>) {
    buf.push(x);
    if (buf.length === size) {
      yield buf;
      buf = [];
    }
  }
  if (buf.length) yield buf;
}

/**
 * Evaluates methods × extrapolators (and the centre baseline) on a stream of labelled
 * samples. For every sample and row: pointing game (ties averaged and first argmax, see
 * `pointing.ts`), energy inside the box, deletion and insertion AUC (`deletion_insertion.ts`,
 * all step images of a group of samples scored in batches of `batchSize`). Means and 95 %
 * percentile-bootstrap intervals (`bootstrap.ts`, seeded; the same seed for every row and
 * metric, so all intervals resample the same sample sets) are deterministic for a fixed
 * dataset and seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate } from "./evaluate.ts";
 * import { initBackend, loadLayersModel } from "../mod.ts"; // registers the built-in methods
 * import { generateScene } from "../models/scenes.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const samples = [3000002, 3000003].map((seed) => generateScene(seed)); // image, mask, box, label
 * const r = await evaluate({
 *   model,
 *   samples,
 *   methods: ["grad-cam"],
 *   extrapolators: ["none", "gradual"],
 *   steps: 8,
 * });
 * for (const row of r.rows) console.log(row.method, row.extrapolator, row.pointing.mean);
 * assert.equal(r.n, 2);
 * assert.equal(r.rows.length, 3); // grad-cam, grad-cam + gradual and the centre baseline
 * assert.equal(r.rows[1].pointing.mean, 1); // gradual Grad-CAM hits both objects
 * ```
 *
 * @param opts model, samples, methods, extrapolators and settings
 * @returns one row per method × extrapolator plus the centre baseline
 */
export async function evaluate(opts: EvaluateOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const session = sessionOf(opts.model);
  const [h, w, c] = session.inputSize;
  const size = h * w * c;
  const sampleBatch = opts.sampleBatch ?? 8;
  if (!(Number.isInteger(sampleBatch) && sampleBatch >= 1)) {
    throw new RangeError("evaluate: sampleBatch must be a positive integer");
  }
  const steps = opts.steps ?? 64;
  const curveSamples = opts.curveSamples ?? Infinity;
  if (!(curveSamples >= 0)) throw new RangeError("evaluate: curveSamples must be >= 0");
  const tolerance = opts.tolerance ?? pointingTolerance(h, w);
  const seed = opts.seed ?? 0;
  const resamples = opts.resamples ?? 1000;
  const extrapolators = opts.extrapolators ?? ["none"];
  const energyMap = opts.energy ?? "minmax";
  const insertionStart = opts.insertionStart ?? "gaussian";
  const work: CurveWork = { images: 0, scored: 0, modelSeconds: 0, seconds: 0 };
  if (opts.methods.length === 0 && opts.baseline === false) {
    throw new RangeError("evaluate: no methods and no baseline: nothing to evaluate");
  }
  const empty = (method: string, extrapolator: string, request?: ExplainRequest): RowAcc => ({
    method,
    extrapolator,
    request,
    pointing: [],
    pointingFirst: [],
    energy: [],
    deletion: [],
    insertion: [],
    ms: 0,
  });
  const rows: RowAcc[] = evalRowSpecs({ ...opts, extrapolators }).map((r) =>
    empty(r.method, r.extrapolator, r.request)
  );
  const centre = centreBaseline(h, w);

  let n = 0;
  let withCurves = 0; // samples with deletion / insertion
  for await (const group of groups(opts.samples, sampleBatch)) {
    const m = group.length;
    const data = new Float32Array(m * size);
    group.forEach((s, i) => {
      if (s.image.length !== size) {
        throw new RangeError(
          `evaluate: sample ${n + i} has ${s.image.length} values, the model takes ${h}×${w}×${c}`,
        );
      }
      if (s.mask.length !== h * w) {
        throw new RangeError(`evaluate: sample ${n + i}'s mask is not ${h}×${w}`);
      }
      data.set(s.image, i * size);
    });
    const targets = group.map((s) => s.label);
    const accept = group.map((s) => dilateMask(s.mask, h, w, tolerance));
    const index = group.map((s, i) => s.index ?? n + i);
    const withCurve = index.map((k) => k < curveSamples);
    const groupMs: number[] = [];
    // maps[row][sample]
    const maps: ArrayLike<number>[][] = [];
    const x = tf.tensor4d(data, [m, h, w, c]);
    try {
      for (const row of rows) {
        if (!row.request) {
          const tb = performance.now();
          const mp = group.map(() => centre);
          groupMs.push(performance.now() - tb);
          row.ms += groupMs[groupMs.length - 1];
          maps.push(mp);
          continue;
        }
        const tb = performance.now();
        const [ex] = await explainMany(session, x, [row.request], {
          targets,
          registry: opts.registry,
          normalize: energyMap === "raw" ? "none" : "minmax",
        });
        groupMs.push(performance.now() - tb);
        row.ms += groupMs[groupMs.length - 1];
        row.layer ??= ex[0]?.layer;
        const mp: ArrayLike<number>[] = new Array(m);
        for (const e of ex) mp[e.image] = e.map;
        maps.push(mp);
      }
    } finally {
      x.dispose();
    }
    const curves: CurveRequest[] = [];
    const perSample: SampleScores[] = group.map((s, i) => ({
      index: index[i],
      label: s.label,
      rows: [],
    }));
    rows.forEach((row, r) => {
      group.forEach((s, i) => {
        const map = maps[r][i];
        const sc = localisationScores(map, accept[i], s.box, h, w);
        row.pointing.push(sc.pointing);
        row.pointingFirst.push(sc.pointingFirst);
        row.energy.push(sc.energy);
        perSample[i].rows.push({
          ...sc,
          deletion: null,
          insertion: null,
          ms: groupMs[r] / m,
          ...(row.layer !== undefined ? { layer: row.layer } : {}),
        });
        if (!withCurve[i]) return;
        curves.push({ kind: "deletion", image: s.image, map, classIndex: s.label });
        curves.push({ kind: "insertion", image: s.image, map, classIndex: s.label });
      });
    });
    const tc = performance.now();
    const done = await deletionInsertion(session, curves, {
      height: h,
      width: w,
      steps,
      batchSize: opts.batchSize ?? 32,
      deletionBaseline: opts.deletionBaseline,
      blurSigma: opts.blurSigma,
      insertionStart,
      shareImages: opts.shareImages,
      onStats: (st) => addCurveWork(work, st, (performance.now() - tc) / 1000),
    });
    let k = 0;
    rows.forEach((row, r) => {
      group.forEach((_, i) => {
        if (!withCurve[i]) return;
        const del = done[k++].auc, ins = done[k++].auc;
        row.deletion.push(del);
        row.insertion.push(ins);
        perSample[i].rows[r].deletion = del;
        perSample[i].rows[r].insertion = ins;
      });
    });
    withCurves += withCurve.filter(Boolean).length;
    await opts.onGroup?.(perSample);
    n += m;
    opts.onProgress?.({ done: n, total: opts.total, elapsedMs: performance.now() - t0 });
  }
  const ci = (v: number[]): MeanCI => bootstrapMean(v, { seed, resamples });
  return {
    n,
    height: h,
    width: w,
    tolerance,
    steps,
    curveSamples: withCurves,
    resamples,
    seed,
    energyMap,
    insertionStart,
    curveWork: work,
    rows: rows.map((r) => ({
      method: r.method,
      extrapolator: r.extrapolator,
      layer: r.layer,
      pointing: ci(r.pointing),
      pointingFirst: ci(r.pointingFirst),
      energy: ci(r.energy),
      deletion: ci(r.deletion),
      insertion: ci(r.insertion),
      msPerImage: n ? r.ms / n : NaN,
    })),
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Formats an evaluation as a markdown table: one row per method × extrapolator (and the
 * centre baseline), each metric as `mean [lo, hi]`, then ms per image.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate, formatEvalTable } from "./evaluate.ts";
 * import { initBackend, loadLayersModel } from "../mod.ts";
 * import { generateScene } from "../models/scenes.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const samples = [generateScene(3000003)];
 * const table = formatEvalTable(await evaluate({ model, samples, methods: ["grad-cam"], steps: 4 }));
 * console.log(table); // | method | extrapolator | layer | pointing ↑ | ... | ms/image |
 * assert.equal(table.split("\n").length, 2 + 2); // header, separator, grad-cam, centre baseline
 * ```
 *
 * @param r the result of {@linkcode evaluate}
 * @param digits decimals of the metrics (default 3)
 * @returns the table, lines joined with `\n` (no trailing newline)
 */
export function formatEvalTable(r: EvalResult, digits = 3): string {
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
  const cell = (m: MeanCI): string => `${f(m.mean)} [${f(m.lo)}, ${f(m.hi)}]`;
  const head = [
    "method",
    "extrapolator",
    "layer",
    "pointing ↑",
    "pointing (first) ↑",
    "energy ↑",
    "deletion AUC ↓",
    "insertion AUC ↑",
    "ms/image",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i < 3 ? "---" : "--:")).join("|")}|`,
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${
        [
          row.method,
          row.extrapolator,
          row.layer ?? "",
          cell(row.pointing),
          cell(row.pointingFirst),
          cell(row.energy),
          cell(row.deletion),
          cell(row.insertion),
          Number.isFinite(row.msPerImage) ? row.msPerImage.toFixed(1) : "n/a",
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

/**
 * One line about the deletion / insertion work: step images, how many were run through
 * the model (the rest shared), seconds, throughput, and the model's share of the time.
 *
 * @param w the work of an evaluation ({@linkcode EvalResult.curveWork})
 * @returns e.g. `deletion/insertion: 3120 step images, 3082 scored in 14.2 s (217 images/s;
 *   93 % of it in the model)`
 */
export function formatCurveWork(w: CurveWork): string {
  const rate = w.seconds > 0
    ? ` (${(w.scored / w.seconds).toFixed(0)} images/s; ${
      (100 * w.modelSeconds / w.seconds).toFixed(0)
    } % of it in the model)`
    : "";
  return `deletion/insertion: ${w.images} step images, ${w.scored} scored in ` +
    `${w.seconds.toFixed(1)} s${rate}`;
}
