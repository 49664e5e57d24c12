/**
 * `evaluateDataset()`: the metrics of `metrics/evaluate.ts` (pointing game with both tie
 * rules, energy pointing game, deletion and insertion AUC, 95 % bootstrap CIs, time per
 * image, centre baseline) on a user's labelled dataset, one sample per (image, class) pair.
 *
 * Streaming: images are read one at a time and scored in groups of `sampleBatch` pairs;
 * only per-pair scalars are kept, so memory is bounded by the group, not the dataset.
 * Each group's per-pair scores can be appended to a results file as they are computed
 * (`results.ts`), and a run can resume from it: pairs already there are not recomputed,
 * and the final numbers aggregate every pair, old and new, in dataset order. The numbers
 * are the ones `evaluate()` gives on the same samples (the same per-sample scores, the
 * same bootstrap over them in the same order).
 *
 * A pair that cannot be read (missing or undecodable image or mask file, size mismatch)
 * is reported through `onPair` and counted as failed; the run goes on.
 *
 * @module
 */
import { explainMany, sessionOf } from "../core/explain.ts";
import type { PreprocessPreset } from "../io/mod.ts";
import type { Registry } from "../core/registry.ts";
import type { Session } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import { centreBaseline } from "../metrics/baseline.ts";
import { bootstrapMean } from "../metrics/bootstrap.ts";
import { type CurveRequest, deletionInsertion } from "../metrics/deletion_insertion.ts";
import {
  addCurveWork,
  type CurveWork,
  type EnergyMap,
  type EvalResult,
  type EvalRowSpec,
  evalRowSpecs,
  type EvalSample,
  localisationScores,
  type ScoringOptions,
} from "../metrics/evaluate.ts";
import type { InsertionStart } from "../metrics/deletion_insertion.ts";
import { dilateMask, pointingTolerance } from "../metrics/pointing.ts";
import type { ClassMapping } from "./classes.ts";
import { DatasetError } from "./errors.ts";
import { datasetPairs, type EvalPair, pairKey, type PairList, type Subset } from "./pairs.ts";
import {
  openResults,
  type PairRecord,
  readResults,
  type ResultsFile,
  type RowScores,
} from "./results.ts";
import { loadPairSamples, type PairSample, type RegionMode } from "./samples.ts";
import type { Dataset } from "./types.ts";

/** What happened to one pair, for progress reports. */
export interface PairEvent {
  /** The pair. */
  pair: EvalPair;
  /** `ok` scored now, `resumed` taken from the results file, `failed`, or `skipped` (not difficult). */
  status: "ok" | "resumed" | "failed" | "skipped";
  /** One-line problem for `failed` (the file is `file`). */
  problem?: string;
  /** The file concerned for `failed`. */
  file?: string;
  /** Pairs handled so far. */
  done: number;
  /** Pairs to handle. */
  total: number;
}

/** Options of {@linkcode evaluateDataset} (the shared settings, where "sample" means a pair). */
export interface DatasetEvalOptions extends ScoringOptions {
  /** The dataset (`loadDataset`). */
  dataset: Dataset;
  /** Dataset categories → model classes (`buildClassMapping`). */
  mapping: ClassMapping;
  /** The model's preprocessing. */
  preprocess: PreprocessPreset;
  /** All pairs or TorchRay's difficult subset (default `"all"`). */
  subset?: Subset;
  /** TorchRay's precomputed difficult flags, used instead of the rule. */
  difficultFlags?: Map<string, boolean[]>;
  /** Object pixels: `"auto"` (default), `"masks"` or `"boxes"` (see `samples.ts`). */
  regions?: RegionMode;
  /** Only the first `limit` pairs (default all). */
  limit?: number;
  /** Results file to append per-pair records to. */
  results?: string;
  /** Continue `results` (skip the pairs already in it). */
  resume?: boolean;
  /**
   * Evaluate only share `k` of `n` (`[k, n]`, `0 <= k < n`, as the CLI's `--shard K/N`):
   * the images whose position among the run's images is `k` modulo `n`, all pairs of an
   * image together. The
   * `results` files of all shards merge ({@linkcode mergeResults}) into the numbers of one
   * run.
   */
  shard?: readonly [number, number];
  /** Extra settings stored in (and checked against) the results file header, e.g. the model. */
  resultsSettings?: Record<string, unknown>;
  /** Called once the pairs are known, with how many will be handled. */
  onStart?: (total: number) => void;
  /** Called for every pair handled. */
  onPair?: (e: PairEvent) => void;
}

/** Counts of a dataset evaluation. */
export interface DatasetSummary {
  /** Images in the dataset. */
  images: number;
  /** Images without any object. */
  imagesWithoutObjects: number;
  /** Pairs with a model class (before the limit and the area rule). */
  pairs: number;
  /** Pairs scored in this run. */
  evaluated: number;
  /** Pairs taken from the results file. */
  resumed: number;
  /** Pairs that failed (missing or unreadable files), with the file and problem. */
  failed: { file: string; problem: string }[];
  /** Pairs skipped because the model does not know their class, per dataset category. */
  unknown: Record<string, number>;
  /** VOC pairs skipped because all their objects are `difficult`. */
  allDifficult: number;
  /** Pairs outside the difficult subset (with `subset: "difficult"`). */
  notDifficult: number;
}

/** The result of {@linkcode evaluateDataset}: the table's numbers and the counts. */
export interface DatasetEvalResult extends EvalResult {
  /** What was evaluated, skipped and failed. */
  summary: DatasetSummary;
}

/** Chooses, per sample with several candidate classes, the one the model scores highest. */
async function chooseTargets(
  session: Session,
  x: tf.Tensor4D,
  group: readonly PairSample[],
): Promise<void> {
  if (group.every((g) => g.pair.candidates.length === 1)) return;
  const scores = tf.tidy(() => session.predict(x));
  let s: number[][];
  try {
    s = await scores.array() as number[][];
  } finally {
    scores.dispose();
  }
  group.forEach((g, i) => {
    let best = g.pair.candidates[0];
    for (const k of g.pair.candidates) if (s[i][k] > s[i][best]) best = k;
    g.sample.label = best;
  });
}

/**
 * Scores a group of samples on every row: the per-sample values `evaluate()` averages.
 *
 * @param session the model session
 * @param group the samples
 * @param rows methods × extrapolators (and the baseline)
 * @param withCurves per sample, whether to compute deletion / insertion
 * @param o sizes and settings
 * @returns scores[sample][row]
 */
async function scoreGroup(
  session: Session,
  group: readonly PairSample[],
  rows: readonly EvalRowSpec[],
  withCurves: readonly boolean[],
  o: {
    tolerance: number;
    steps: number;
    batchSize: number;
    centre: Float32Array;
    registry?: Registry;
    energy: EnergyMap;
    insertionStart: InsertionStart;
    shareImages?: boolean;
    work: CurveWork;
    layers: (string | undefined)[];
  },
): Promise<Record<string, RowScores>[]> {
  const [h, w, c] = session.inputSize;
  const m = group.length;
  const size = h * w * c;
  const data = new Float32Array(m * size);
  group.forEach((g, i) => data.set(g.sample.image, i * size));
  const accept = group.map((g) => dilateMask(g.sample.mask, h, w, o.tolerance));
  const maps: ArrayLike<number>[][] = [];
  const ms: number[] = [];
  const x = tf.tensor4d(data, [m, h, w, c]);
  try {
    await chooseTargets(session, x, group);
    const targets = group.map((g) => g.sample.label);
    for (const row of rows) {
      const t0 = performance.now();
      if (!row.request) {
        maps.push(group.map(() => o.centre));
        ms.push(performance.now() - t0);
        continue;
      }
      const [ex] = await explainMany(session, x, [row.request], {
        targets,
        registry: o.registry,
        normalize: o.energy === "raw" ? "none" : "minmax",
      });
      ms.push(performance.now() - t0);
      const r = maps.length;
      o.layers[r] ??= ex[0]?.layer;
      const mp: ArrayLike<number>[] = new Array(m);
      for (const e of ex) mp[e.image] = e.map;
      maps.push(mp);
    }
  } finally {
    x.dispose();
  }
  const out: Record<string, RowScores>[] = group.map(() => ({}));
  const curves: CurveRequest[] = [];
  rows.forEach((row, r) => {
    group.forEach((g, i) => {
      const s: EvalSample = g.sample;
      const sc = localisationScores(maps[r][i], accept[i], s.box, h, w);
      out[i][rowName(row)] = {
        ...sc,
        deletion: null,
        insertion: null,
        ms: ms[r] / m,
        ...(o.layers[r] !== undefined ? { layer: o.layers[r] } : {}),
      };
      if (!withCurves[i]) return;
      curves.push({ kind: "deletion", image: s.image, map: maps[r][i], classIndex: s.label });
      curves.push({ kind: "insertion", image: s.image, map: maps[r][i], classIndex: s.label });
    });
  });
  if (curves.length) {
    const tc = performance.now();
    const done = await deletionInsertion(session, curves, {
      height: h,
      width: w,
      steps: o.steps,
      batchSize: o.batchSize,
      insertionStart: o.insertionStart,
      shareImages: o.shareImages,
      onStats: (st) => addCurveWork(o.work, st, (performance.now() - tc) / 1000),
    });
    let k = 0;
    rows.forEach((row) => {
      group.forEach((_, i) => {
        if (!withCurves[i]) return;
        const sc = out[i][rowName(row)];
        sc.deletion = done[k++].auc;
        sc.insertion = done[k++].auc;
      });
    });
  }
  return out;
}

/** The name of a row in results files: `method+extrapolator`. */
export function rowName(row: { method: string; extrapolator: string }): string {
  return `${row.method}+${row.extrapolator}`;
}

/** Sizes and settings {@linkcode aggregateRecords} reports with the numbers. */
export interface AggregateInfo {
  /** Model input height. */
  height: number;
  /** Model input width. */
  width: number;
  /** Pointing tolerance in pixels. */
  tolerance: number;
  /** Deletion / insertion steps. */
  steps: number;
  /** Bootstrap seed. */
  seed: number;
  /** Bootstrap resamples. */
  resamples: number;
  /** Wall time in seconds. */
  seconds: number;
  /** The map the energy pointing game summed. */
  energyMap: EnergyMap;
  /** The insertion start. */
  insertionStart: InsertionStart;
  /** Deletion / insertion work (zeros when unknown, e.g. after a merge). */
  curveWork: CurveWork;
  /** Layer per row (same order as `rows`). */
  layers?: readonly (string | undefined)[];
}

/**
 * Aggregates per-pair records into the table's numbers (means and 95 % bootstrap CIs in
 * the given order, ms per image = mean of the per-pair times).
 *
 * @param records the pairs' records, in dataset order
 * @param rows row names `[method, extrapolator]`
 * @param info sizes and settings to report
 * @returns the result in `evaluate()`'s shape
 */
export function aggregateRecords(
  records: readonly PairRecord[],
  rows: readonly (readonly [string, string])[],
  info: AggregateInfo,
): EvalResult {
  const n = records.length;
  const ci = (v: number[]): ReturnType<typeof bootstrapMean> =>
    bootstrapMean(v, { seed: info.seed, resamples: info.resamples });
  const col = (row: string, k: Exclude<keyof RowScores, "layer">): number[] => {
    const v: number[] = [];
    for (const rec of records) {
      const x = rec.scores[row]?.[k];
      if (x === undefined) {
        throw new DatasetError(rec.image, `results record ${rec.index} has no row '${row}'`);
      }
      if (x !== null) v.push(x);
    }
    return v;
  };
  const first = rows.length ? rowName({ method: rows[0][0], extrapolator: rows[0][1] }) : "";
  return {
    n,
    height: info.height,
    width: info.width,
    tolerance: info.tolerance,
    steps: info.steps,
    curveSamples: records.filter((r) => r.scores[first]?.deletion != null).length,
    resamples: info.resamples,
    seed: info.seed,
    energyMap: info.energyMap,
    insertionStart: info.insertionStart,
    curveWork: info.curveWork,
    rows: rows.map(([method, extrapolator], r) => {
      const name = rowName({ method, extrapolator });
      return {
        method,
        extrapolator,
        layer: info.layers?.[r] ?? records.find((rec) => rec.scores[name]?.layer)?.scores[name]
          .layer,
        pointing: ci(col(name, "pointing")),
        pointingFirst: ci(col(name, "pointingFirst")),
        energy: ci(col(name, "energy")),
        deletion: ci(col(name, "deletion")),
        insertion: ci(col(name, "insertion")),
        msPerImage: n ? col(name, "ms").reduce((a, b) => a + b, 0) / n : NaN,
      };
    }),
    seconds: info.seconds,
  };
}

/**
 * Evaluates methods × extrapolators (and the centre baseline) on a dataset's (image,
 * class) pairs.
 *
 * @example
 * ```ts
 * import "../plugins/mod.ts";
 * import { buildClassMapping, evaluateDataset, loadDataset } from "./mod.ts";
 * import { formatEvalTable } from "../metrics/mod.ts";
 * import { loadLayersModel } from "../core/model_io.ts";
 * // const model = await loadLayersModel("vgg16/model.json");
 * // const dataset = loadDataset("VOCdevkit/VOC2007", { split: "test" });
 * // const mapping = buildClassMapping({ labels, numClasses: 1000, map });
 * // const r = await evaluateDataset({ model, dataset, mapping, preprocess: "caffe",
 * //   methods: ["grad-cam"], extrapolators: ["none", "gradual"], results: "voc.jsonl" });
 * // console.log(formatEvalTable(r), r.summary);
 * ```
 *
 * @param opts model, dataset, mapping, methods and settings
 * @returns the table's numbers and the counts
 * @throws {DatasetError} for a bad results file, a class index out of range, or when no
 *   pair has a class the model knows
 */
export async function evaluateDataset(opts: DatasetEvalOptions): Promise<DatasetEvalResult> {
  const t0 = performance.now();
  const session = sessionOf(opts.model);
  const [h, w, c] = session.inputSize;
  const sampleBatch = opts.sampleBatch ?? 8;
  if (!(Number.isInteger(sampleBatch) && sampleBatch >= 1)) {
    throw new RangeError("evaluateDataset: sampleBatch must be a positive integer");
  }
  const steps = opts.steps ?? 64;
  const tolerance = opts.tolerance ?? pointingTolerance(h, w);
  const seed = opts.seed ?? 0;
  const resamples = opts.resamples ?? 1000;
  const curveSamples = opts.curveSamples ?? Infinity;
  const baseline = opts.baseline ?? true;
  if (opts.methods.length === 0 && !baseline) {
    throw new RangeError("evaluateDataset: no methods and no baseline: nothing to evaluate");
  }
  const rows = evalRowSpecs({ ...opts, baseline });
  const energy = opts.energy ?? "minmax";
  const insertionStart = opts.insertionStart ?? "gaussian";
  const work: CurveWork = { images: 0, scored: 0, seconds: 0 };
  const layers: (string | undefined)[] = rows.map(() => undefined);
  const shard = opts.shard ?? [0, 1];
  if (
    !(Number.isInteger(shard[0]) && Number.isInteger(shard[1]) && shard[0] >= 0 &&
      shard[0] < shard[1])
  ) {
    throw new RangeError(`evaluateDataset: bad shard ${shard[0]}/${shard[1]}`);
  }
  const list: PairList = datasetPairs(opts.dataset, opts.mapping, {
    subset: opts.subset,
    difficultFlags: opts.difficultFlags,
  });
  const unknownPairs = Object.values(list.unknown).reduce((a, b) => a + b, 0);
  if (list.pairs.length === 0 && unknownPairs > 0 && list.allDifficult + list.notDifficult === 0) {
    throw new DatasetError(
      opts.dataset.annotationFile,
      `no class of the dataset is a class of the model (${
        Object.keys(list.unknown).slice(0, 5).join(", ")
      }${
        Object.keys(list.unknown).length > 5 ? ", ..." : ""
      }); map them with a class map file or give the model's labels`,
    );
  }
  const all = list.pairs.slice(0, opts.limit ?? Infinity);
  const curveOf = new Map<EvalPair, boolean>(all.map((p, i) => [p, i < curveSamples]));
  const indexOf = new Map<EvalPair, number>(all.map((p, i) => [p, i]));
  // Shard by image (all pairs of an image stay together): the image's ordinal mod N.
  const imageOrdinal = new Map<unknown, number>();
  for (const p of all) if (!imageOrdinal.has(p.image)) imageOrdinal.set(p.image, imageOrdinal.size);
  const pairs = all.filter((p) => imageOrdinal.get(p.image)! % shard[1] === shard[0]);
  const summary: DatasetSummary = {
    images: list.images,
    imagesWithoutObjects: list.imagesWithoutObjects,
    pairs: list.pairs.length,
    evaluated: 0,
    resumed: 0,
    failed: [],
    unknown: list.unknown,
    allDifficult: list.allDifficult,
    notDifficult: list.notDifficult,
  };
  const settings = {
    ...(opts.resultsSettings ?? {}),
    dataset: opts.dataset.path,
    format: opts.dataset.format,
    input: [h, w, c],
    preprocess: opts.preprocess,
    rows: rows.map(rowName),
    layers: rows.map((r) => r.request?.layer ?? null),
    methodOptions: opts.methodOptions ?? {},
    extrapolatorOptions: opts.extrapolatorOptions ?? {},
    steps,
    tolerance,
    curveSamples: Number.isFinite(curveSamples) ? curveSamples : null,
    regions: opts.regions ?? "auto",
    subset: opts.subset ?? "all",
    energy,
    insertionStart,
    shard: `${shard[0]}/${shard[1]}`,
  };
  const keyOf = (r: PairRecord): string => pairKey(r.image, r.category);
  let file: ResultsFile | undefined;
  if (opts.results !== undefined) {
    file = await openResults(opts.results, settings, opts.resume ?? false, keyOf);
  }
  const records = new Map<string, PairRecord>(file?.done ?? []);
  const total = pairs.length;
  opts.onStart?.(total);
  let handled = 0;
  const emit = (pair: EvalPair, status: PairEvent["status"], f?: string, p?: string): void => {
    handled++;
    opts.onPair?.({ pair, status, file: f, problem: p, done: handled, total });
  };
  const centre = centreBaseline(h, w);
  const queue: PairSample[] = [];
  const flush = async (all: boolean): Promise<void> => {
    while (queue.length >= sampleBatch || (all && queue.length > 0)) {
      const group = queue.splice(0, sampleBatch);
      const scores = await scoreGroup(
        session,
        group,
        rows,
        group.map((g) => curveOf.get(g.pair) ?? false),
        {
          tolerance,
          steps,
          batchSize: opts.batchSize ?? 32,
          centre,
          registry: opts.registry,
          energy,
          insertionStart,
          shareImages: opts.shareImages,
          work,
          layers,
        },
      );
      const recs: PairRecord[] = group.map((g, i) => ({
        index: indexOf.get(g.pair)!,
        image: g.pair.image.key,
        category: g.pair.category,
        class: g.sample.label,
        scores: scores[i],
      }));
      await file?.append(recs);
      recs.forEach((r, i) => {
        records.set(group[i].pair.key, r);
        summary.evaluated++;
        emit(group[i].pair, "ok");
      });
    }
  };
  try {
    let i = 0;
    while (i < pairs.length) {
      const image = pairs[i].image;
      let j = i;
      while (j < pairs.length && pairs[j].image === image) j++;
      const todo: EvalPair[] = [];
      for (const p of pairs.slice(i, j)) {
        if (records.has(p.key)) {
          summary.resumed++;
          emit(p, "resumed");
        } else todo.push(p);
      }
      i = j;
      if (todo.length === 0) continue;
      try {
        const got = await loadPairSamples(image, todo, {
          inputSize: [h, w, c],
          preprocess: opts.preprocess,
          format: opts.dataset.format,
          regions: opts.regions,
          difficultRule: opts.subset === "difficult" && !opts.difficultFlags,
        });
        for (const p of got.notDifficult) {
          summary.notDifficult++;
          emit(p, "skipped");
        }
        queue.push(...got.samples);
      } catch (e) {
        if (!(e instanceof DatasetError)) throw e;
        for (const p of todo) {
          summary.failed.push({ file: e.file, problem: e.problem });
          emit(p, "failed", e.file, e.problem);
        }
        continue;
      }
      await flush(false);
    }
    await flush(true);
  } finally {
    file?.close();
  }
  const ordered = pairs.map((p) => records.get(p.key)).filter((r): r is PairRecord =>
    r !== undefined
  );
  const result = aggregateRecords(
    ordered,
    rows.map((r) => [r.method, r.extrapolator] as const),
    {
      height: h,
      width: w,
      tolerance,
      steps,
      seed,
      resamples,
      seconds: (performance.now() - t0) / 1000,
      energyMap: energy,
      insertionStart,
      curveWork: work,
      layers,
    },
  );
  return { ...result, summary };
}

/** The result of {@linkcode mergeResults}. */
export interface MergedResults {
  /** The table's numbers over the pairs of every file, in the order of one run. */
  result: EvalResult;
  /** The shared settings (without `shard`). */
  settings: Record<string, unknown>;
  /** Shards merged, `N` of `K/N`. */
  shards: number;
}

/**
 * Merges the results files of the shards of one run (`shard: [k, n]` for every
 * `k < n`) into
 * the numbers one unsharded run gives: the records are put back in run order (`index`) and
 * aggregated with the same bootstrap.
 *
 * @param files the shards' results files (each `k` of `0 .. n - 1` exactly once)
 * @param opts bootstrap seed and resamples (defaults 0 and 1000, as `evaluateDataset`)
 * @returns the numbers, the common settings and the shard count
 * @throws {DatasetError} naming the file for different settings, a missing or repeated
 *   shard, or a pair in two files
 */
export async function mergeResults(
  files: readonly string[],
  opts: { seed?: number; resamples?: number } = {},
): Promise<MergedResults> {
  if (files.length === 0) throw new RangeError("mergeResults: no files");
  const seen = new Map<string, string>(); // shard -> file
  const byIndex = new Map<number, PairRecord>();
  let common: Record<string, unknown> | undefined;
  let commonJson = "";
  let n = 0;
  for (const file of files) {
    const { settings, records } = await readResults(file);
    const { shard, ...rest } = settings;
    const m = /^(\d+)\/(\d+)$/.exec(String(shard));
    if (!m) throw new DatasetError(file, `line 1: no shard in the settings`);
    const [k, total] = [Number(m[1]), Number(m[2])];
    if (common === undefined) {
      common = rest;
      commonJson = JSON.stringify(rest);
      n = total;
    } else if (JSON.stringify(rest) !== commonJson) {
      const diff = Object.keys({ ...common, ...rest }).filter((key) =>
        JSON.stringify(common![key]) !== JSON.stringify(rest[key])
      );
      throw new DatasetError(
        file,
        `made with different settings than ${files[0]} (${diff.join(", ")})`,
      );
    }
    if (total !== n) throw new DatasetError(file, `shard ${k}/${total}, ${files[0]} is of ${n}`);
    if (seen.has(String(shard))) {
      throw new DatasetError(file, `shard ${shard} is also in ${seen.get(String(shard))}`);
    }
    seen.set(String(shard), file);
    for (const r of records) {
      if (byIndex.has(r.index)) {
        throw new DatasetError(file, `pair ${r.index} (${r.image} ${r.category}) is twice`);
      }
      byIndex.set(r.index, r);
    }
  }
  const missing = Array.from({ length: n }, (_, i) => `${i}/${n}`).filter((s) => !seen.has(s));
  if (missing.length) {
    throw new DatasetError(files[0], `shard(s) ${missing.join(", ")} missing from the merge`);
  }
  const s = common!;
  const records = [...byIndex.values()].sort((a, b) => a.index - b.index);
  const input = s.input as number[];
  const rowNames = s.rows as string[];
  const rows = rowNames.map((name) => {
    const plus = name.lastIndexOf("+");
    return [name.slice(0, plus), name.slice(plus + 1)] as const;
  });
  const result = aggregateRecords(records, rows, {
    height: input[0],
    width: input[1],
    tolerance: s.tolerance as number,
    steps: s.steps as number,
    seed: opts.seed ?? 0,
    resamples: opts.resamples ?? 1000,
    seconds: 0,
    energyMap: s.energy as EnergyMap,
    insertionStart: s.insertionStart as InsertionStart,
    curveWork: { images: 0, scored: 0, seconds: 0 },
  });
  return { result, settings: s, shards: n };
}
