/**
 * `gradual eval`: measures explanation quality on held-out generated scenes, whose exact
 * target masks and boxes are known, or with `--dataset` on a user's labelled images (COCO
 * instances JSON, Pascal VOC folder, or a JSON / CSV manifest; see `datasets/mod.ts`),
 * one sample per (image, class) pair: pointing game (ties averaged and first argmax),
 * energy-based pointing game, deletion and insertion AUC, with 95 % bootstrap confidence
 * intervals and the time per image, for every method × extrapolator and the centre
 * baseline. A markdown table on stdout, or JSON with `--json`.
 *
 * Per-scene (with `--dataset`, per-pair) results can be written to a JSON Lines file
 * (`--results`) as they are computed; `--shard K/N` evaluates every N-th scene (image) from
 * the K-th, and `--merge` of the shards' files gives the table of one run. With `--dataset`
 * a run can be continued from its file (`--resume`), and pairs whose image or mask cannot
 * be read are reported and counted; the run goes on and exits with status 1.
 *
 * Held-out scenes: seeds `EVAL_SEED_START + 100 000 · S + i` for `i < n` (S = `--seed`),
 * i.e. from 4 000 000 upwards, disjoint from the training seeds (`0 .. train - 1`, 10 000 by
 * default), training's validation seeds (1 000 000 ..), the test suite's (2 000 000 ..) and
 * the sample images' (3 000 000 ..) in `models/train.ts` / `models/make_samples.ts`. The
 * scene class is `seed mod 10`, so any `n` that is a multiple of 10 is class-balanced.
 *
 * ```sh
 * deno run -A cli/main.ts eval --model shapes-vgg --methods grad-cam,c-eb --extrapolate none,gradual --n 500
 * ```
 *
 * Everything but the timings is deterministic for a given model, backend and `--seed`.
 *
 * @module
 */
import type { ExplainRequest } from "../core/explain.ts";
import type { PluginOptions } from "../core/types.ts";
import { preprocess, PREPROCESS_PRESETS, type PreprocessPreset } from "../io/mod.ts";
import {
  buildClassMapping,
  type ClassMapFile,
  DatasetError,
  type DatasetEvalResult,
  type DatasetFormat,
  type DatasetSummary,
  evaluateDataset,
  loadDataset,
  mergeResults,
  openResults,
  parseClassMap,
  parseDifficultFlags,
  readResults,
  type RegionMode,
  type Subset,
} from "../datasets/mod.ts";
import {
  type EnergyMap,
  type EvalResult,
  evalRowSpecs,
  type EvalSample,
  evaluate,
  formatCurveWork,
  formatEvalTable,
  type InsertionStart,
  pointingTolerance,
} from "../metrics/mod.ts";
import type { Shard } from "./_files.ts";
import { CLASS_NAMES, generateScene } from "../models/scenes.ts";
import { boolFlag, type FlagValues, listFlag, numberFlag, stringFlag } from "./_args.ts";
import { registered, shardFlag } from "./_common.ts";
import { FileError, UsageError } from "./_errors.ts";
import { type Command, runCommand, type RunContext } from "./_runner.ts";

/** First seed of the evaluation scenes (see the module documentation). */
export const EVAL_SEED_START = 4_000_000;
/** Seeds reserved per `--seed` value: `n` may not exceed it. */
export const EVAL_SEEDS_PER_BLOCK = 100_000;

/** Help of `gradual eval`. */
export const EVAL_HELP =
  `gradual eval: how well do saliency maps locate the object? (held-out generated scenes,
or your own labelled images with --dataset)

Usage: gradual eval [options]
       gradual eval --dataset PATH --model M [options]
       gradual eval --merge FILE... [--json]

Options:
  -m, --model M        built-in model name, a tfjs model.json or an .onnx file (default shapes-vgg);
                       on generated scenes it must take square RGB input and have at least
                       the 10 scene classes (first 10 outputs); with --dataset any model
                       whose classes the dataset's map to (--labels, --class-map)
      --methods L      comma list of methods (default grad-cam), e.g. grad-cam,c-eb
      --extrapolate L  comma list of extrapolators, none for none (default none,gradual)
      --layer NAME     layer every method works on (default: each method's own; for the
                       Grad-CAM family the graph's default layer); NAME.layer=L with --opt
                       for one method only, e.g. --opt grad-cam.layer=block5_conv3
      --n N            number of scenes (default 500)
      --seed S         0..999: scene block (seeds ${EVAL_SEED_START} + ${EVAL_SEEDS_PER_BLOCK}·S + i) and
                       bootstrap seed (default 0)
      --steps K        deletion/insertion steps, 1/K of the pixels each (default 64)
      --curve-n N      deletion/insertion only on the first N scenes (default: all n);
                       they cost 2·(K+1) forward images per scene and method, the other
                       metrics about one
      --batch N        images per model call when scoring deletion/insertion (default 32)
      --tolerance PX   pointing-game tolerance in pixels at the model input (default
                       15·min(H,W)/224: TorchRay uses 15 px at 224×224)
      --energy E       map the energy pointing game sums: minmax (default; the map min-max
                       normalised to [0,1], as explain returns it) or raw (the method's map
                       unnormalised; positive values count in both)
      --insertion-start S  gaussian (default: σ = 5·min(H,W)/224, edges replicated) or
                       rise (RISE's code: 11×11 kernel of σ 5, zero padding at the borders)
      --preprocess P   imagenet, unit, symmetric, caffe, raw (default: the built-in model's,
                       else imagenet)
      --opt KEY=VALUE  method option, for every method that takes KEY (repeatable);
                       NAME.KEY=VALUE for plugin NAME only (every plugin's options below)
      --plugin P       load a method/extrapolator plugin module (repeatable)
      --backend B      wasm (default), cpu or webgpu (needs a GPU adapter: on Linux a
                       Vulkan driver)
      --threads N      wasm threads (default: all cores, at most 8, built-in models too:
                       the deletion/insertion batches are large enough to share out)
      --no-share       score every deletion/insertion step image, also those known to be
                       equal to another (same figures, slower; for benchmarks)
      --winograd W     3x3 convolutions by Winograd on wasm: off (default, exact), auto, all
      --json           print the result as JSON instead of a markdown table
      --results FILE   append per-scene (--dataset: per-pair) results as they are computed
                       (JSON Lines, named fields: see datasets/results.ts)
      --shard K/N      only the K-th of N shares of the scenes (--dataset: of the images),
                       0 <= K < N, round robin, for array jobs; needs --results
      --merge FILE...  no evaluation: the table of the shards' --results files together,
                       the same as one unsharded run (bootstrap over all samples; --seed,
                       default the scenes' --seed, else 0)
  -q, --quiet          no progress bar or summary
  -h, --help           this help

Your own data (--dataset; then --n limits the (image, class) pairs, default all):
      --dataset PATH   a COCO instances .json, a Pascal VOC folder (Annotations/,
                       JPEGImages/, optional SegmentationObject/), or a manifest: a JSON
                       list of {"image", "class", "mask" or "box": [x0, y0, x1, y1]} or a
                       CSV with columns image,class,mask or image,class,x0,y0,x1,y1
      --images DIR     COCO image folder (default: next to the JSON, e.g. ../val2014)
      --split NAME     VOC image set: ImageSets/Main/NAME.txt (default test, if listed)
      --labels FILE    the model's class names (default: labels.json next to the model)
      --class-map FILE JSON {"dataset class": "model class" | index | [...]}; other
                       classes match model labels by name (case, spaces, _ and - ignored)
      --subset S       all (default) or difficult (TorchRay / EBP: the image has another
                       class and the class's boxes cover < 1/4 of the image)
      --difficult-list FILE  TorchRay's precomputed difficult flags instead of the rule
      --regions R      auto (default: boxes for VOC as TorchRay, masks otherwise), masks,
                       or boxes: which pixels count as the object
      --resume         continue --results FILE: skip the pairs already in it
      --allow-outside-paths  read images and masks outside the dataset's folder and
                       weights shards outside the model's (absolute paths, ../); by
                       default such images are skipped with a message
Each (image, class) pair is one sample: the class is explained and its mask is the union
of the class's objects; pairs of classes the model does not know are counted and skipped.

Metrics (mean [95% bootstrap CI], 1000 resamples): pointing game (TorchRay; tolerance
15 px at 224, scaled; tied maxima averaged, and first argmax), energy inside the box,
deletion AUC (lower is better) and insertion AUC (RISE), ms per image to make the map.
The explained class is each scene's label, not the model's top-1. Step images that are
equal (the unchanged, blurred and fully deleted images) are scored once; the throughput
of the curves is printed after the table.

Examples:
  gradual eval --model shapes-vgg --methods grad-cam,c-eb --extrapolate none,gradual --n 500
  gradual eval --model shapes-resnet --n 100 --json > eval.json
  gradual eval --dataset VOCdevkit/VOC2007 --model vgg16/model.json --labels imagenet.json \\
    --class-map voc_to_imagenet.json --preprocess caffe --results voc.jsonl --resume
  gradual eval --n 500 --shard 0/2 --results s0.jsonl      # job 1 (scenes 0, 2, 4, ...)
  gradual eval --n 500 --shard 1/2 --results s1.jsonl      # job 2
  gradual eval --dataset coco.json ... --shard 0/2 --results s0.jsonl   # job 1
  gradual eval --dataset coco.json ... --shard 1/2 --results s1.jsonl   # job 2
  gradual eval --merge s0.jsonl s1.jsonl
`;

const FLAGS = {
  model: { type: "string", short: "m" },
  labels: { type: "string" },
  methods: { type: "string", multiple: true },
  extrapolate: { type: "string", multiple: true },
  n: { type: "string" },
  seed: { type: "string" },
  steps: { type: "string" },
  "curve-n": { type: "string" },
  batch: { type: "string" },
  preprocess: { type: "string" },
  opt: { type: "string", multiple: true },
  plugin: { type: "string", multiple: true },
  backend: { type: "string" },
  threads: { type: "string" },
  winograd: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  dataset: { type: "string" },
  images: { type: "string" },
  split: { type: "string" },
  "class-map": { type: "string" },
  subset: { type: "string" },
  "difficult-list": { type: "string" },
  regions: { type: "string" },
  results: { type: "string" },
  resume: { type: "boolean" },
  "allow-outside-paths": { type: "boolean" },
  shard: { type: "string" },
  merge: { type: "boolean" },
  layer: { type: "string" },
  tolerance: { type: "string" },
  energy: { type: "string" },
  "insertion-start": { type: "string" },
  "no-share": { type: "boolean" },
} as const;

/** Flags that only make sense with `--dataset`. */
const DATASET_ONLY = [
  "images",
  "split",
  "class-map",
  "subset",
  "difficult-list",
  "regions",
  "resume",
  "allow-outside-paths",
] as const;

/** What `--json` prints: the evaluation plus where its scenes came from. */
export interface EvalReport extends EvalResult {
  /** Model name or path. */
  model: string;
  /** Preprocessing applied to the scenes. */
  preprocess: PreprocessPreset;
  /** First and last scene seed. */
  sceneSeeds: [number, number];
}

/**
 * The held-out scenes of block `seed` (seeds `EVAL_SEED_START + EVAL_SEEDS_PER_BLOCK · seed
 * + i`, `i < n`), preprocessed for the model, generated lazily one at a time.
 *
 * @param n number of scenes
 * @param seed block index (`--seed`)
 * @param size scene side in pixels (the model's input size)
 * @param preset the model's preprocessing
 * @param shard only the scenes `i` with `i mod count = index` (`--shard K/N`)
 * @returns a generator of samples for `evaluate`, each with its index `i` in the run
 */
export function* heldOutScenes(
  n: number,
  seed: number,
  size: number,
  preset: PreprocessPreset,
  shard: Shard = { index: 0, count: 1 },
): Generator<EvalSample> {
  const first = EVAL_SEED_START + EVAL_SEEDS_PER_BLOCK * seed;
  for (let i = shard.index; i < n; i += shard.count) {
    const s = generateScene(first + i, { size });
    yield {
      image: preprocess({ width: size, height: size, data: s.image }, preset),
      mask: s.mask,
      box: s.box,
      label: s.label,
      index: i,
    };
  }
}

/**
 * Runs `gradual eval` on its arguments (without the `eval` word); returns the exit status
 * (0 ok, 1 model problem, 2 usage error). Usage and file errors are thrown as
 * `UsageError` / `FileError` for the dispatcher in `cli/main.ts` to report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import "../plugins/mod.ts"; // the built-in methods (cli/main.ts registers them for the CLI)
 * import { evalCommand } from "./eval.ts";
 * // Two held-out scenes, Grad-CAM with and without gradual; prints the JSON result.
 * const code = await evalCommand(["--model", "shapes-vgg", "--n", "2", "--steps", "4", "--json"]);
 * assert.equal(code, 0);
 * ```
 *
 * @param argv the arguments after `eval`
 * @returns the exit status
 */
export function evalCommand(argv: readonly string[]): Promise<number> {
  return runCommand(EVAL, argv);
}

/** What both `eval` modes read from the flags. */
interface EvalSettings {
  /** Images per model call when scoring deletion/insertion. */
  readonly batch: number;
  /** `--preprocess`, or the model's. */
  readonly pre: PreprocessPreset | undefined;
  /** Method names (`--methods`). */
  readonly methods: string[];
  /** Extrapolators (`--extrapolate`, `none` for none). */
  readonly extrapolators: string[];
  /** Whether to print JSON. */
  readonly json: boolean;
  /** The metric options. */
  readonly metric: MetricFlags;
  /** Held-out scenes or a dataset, with that mode's settings. */
  readonly mode: SceneSettings | DatasetSettings;
}

/** `gradual eval` for the runner: scenes, `--dataset` or (without a model) `--merge`. */
const EVAL: Command<EvalSettings> = {
  help: EVAL_HELP,
  flags: FLAGS,
  // eval's forward passes are batches of `--batch` images: worth all cores, even for the
  // small built-in models (for which explain and compare default to one thread).
  allCores: true,
  async prepare(flags, positionals) {
    if (boolFlag(flags, "merge")) return await mergeCommand(flags, positionals);
    if (positionals.length > 0) {
      throw new UsageError(`eval takes no arguments, got '${positionals[0]}'`);
    }
    const dataset = stringFlag(flags, "dataset");
    if (dataset === undefined) {
      const stray = DATASET_ONLY.find((f) => flags[f] !== undefined);
      if (stray) throw new UsageError(`--${stray} needs --dataset`);
    }
    const mode = dataset === undefined ? sceneSettings(flags) : datasetSettings(flags, dataset);
    return { ...runSettings(flags), metric: metricFlags(flags), mode };
  },
  select(s) {
    for (const m of s.methods) {
      if (m.includes("+") && !registered("method", m)) {
        throw new UsageError(`--methods takes method names; use --extrapolate for '${m}'`);
      }
    }
    return { methods: s.methods, extrapolators: s.extrapolators, target: 0 };
  },
  run(ctx) {
    const mode = ctx.settings.mode;
    return mode.kind === "scenes" ? evalScenes(ctx, mode) : evalDataset(ctx, mode);
  },
};

/** The held-out scenes' settings. */
interface SceneSettings {
  readonly kind: "scenes";
  /** Number of scenes. */
  readonly n: number;
  /** Scene block and bootstrap seed. */
  readonly seed: number;
  /** Deletion/insertion steps. */
  readonly steps: number;
  /** Scenes with deletion/insertion curves. */
  readonly curveN: number;
  /** `--results`: the per-scene results file. */
  readonly results?: string;
  /** `--shard`: the share of the scenes to evaluate. */
  readonly shard?: Shard;
}

/** `--n`, `--seed`, `--steps`, `--curve-n` for the held-out scenes. */
function sceneSettings(flags: FlagValues): SceneSettings {
  const n = numberFlag(flags, "n", 500, { min: 1, max: EVAL_SEEDS_PER_BLOCK, integer: true });
  const seed = numberFlag(flags, "seed", 0, { min: 0, max: 999, integer: true });
  const steps = numberFlag(flags, "steps", 64, { min: 1, max: 1 << 20, integer: true });
  const curveN = numberFlag(flags, "curve-n", n, { min: 0, max: n, integer: true });
  const results = stringFlag(flags, "results");
  const shard = shardFlag(flags);
  if (shard && results === undefined) {
    throw new UsageError("--shard needs --results FILE (to merge the shards with --merge)");
  }
  return { kind: "scenes", n, seed, steps, curveN, results, shard };
}

/** `gradual eval` on the held-out scenes. */
async function evalScenes(
  ctx: RunContext<EvalSettings>,
  { n, seed, steps, curveN, results, shard }: SceneSettings,
): Promise<number> {
  const { flags, requests, progress } = ctx;
  const m = ctx.model;
  const { batch, pre, methods, extrapolators, json, metric } = ctx.settings;
  const [h, w, c] = m.session.inputSize;
  if (h !== w || c !== 3) {
    throw new FileError(
      m.spec.display,
      `eval needs square RGB input (the scenes are square), the model takes ${h}×${w}×${c}`,
    );
  }
  if (m.numClasses < CLASS_NAMES.length) {
    throw new FileError(
      m.spec.display,
      `the model has ${m.numClasses} classes, the scenes have ${CLASS_NAMES.length}`,
    );
  }
  const preset = pre ?? m.spec.preprocess ?? "imagenet";
  const methodOptions = methodOptionsOf(requests);
  const first = EVAL_SEED_START + EVAL_SEEDS_PER_BLOCK * seed;
  const specs = evalRowSpecs({ methods, extrapolators, layers: methodLayersOf(requests) });
  const rowNames = specs.map((r) => `${r.method}+${r.extrapolator}`);
  // Per-scene records (the format of dataset runs), which `--merge` puts back together.
  const file = results === undefined ? undefined : await asFileError(() =>
    openResults(
      results,
      {
        model: m.spec.display,
        dataset: `held-out scenes ${first}..${first + n - 1}`,
        format: "scenes",
        input: [h, w, c],
        preprocess: preset,
        rows: rowNames,
        layers: specs.map((r) => r.request?.layer ?? null),
        methodOptions,
        extrapolatorOptions: extrapolatorOptionsOf(requests),
        steps,
        tolerance: metric.tolerance ?? pointingTolerance(h, w),
        curveSamples: curveN,
        energy: metric.energy,
        insertionStart: metric.insertionStart,
        seed,
        shard: `${shard?.index ?? 0}/${shard?.count ?? 1}`,
      },
      false,
      (r) => r.image,
    )
  );
  const scenes = shard ? Math.max(0, Math.ceil((n - shard.index) / shard.count)) : n;

  progress.start(scenes);
  let ticked = 0;
  let result: EvalResult;
  try {
    result = await evaluate({
      model: m.session,
      samples: heldOutScenes(n, seed, h, preset, shard),
      methods,
      extrapolators,
      methodOptions,
      extrapolatorOptions: extrapolatorOptionsOf(requests),
      layers: methodLayersOf(requests),
      ...metric,
      shareImages: !boolFlag(flags, "no-share"),
      batchSize: batch,
      steps,
      curveSamples: curveN,
      seed,
      total: scenes,
      onProgress: (p) => {
        while (ticked < p.done) progress.tick(`scene ${++ticked}`);
      },
      onGroup: (group) =>
        file?.append(group.map((g) => ({
          index: g.index,
          image: `scene ${first + g.index}`,
          category: CLASS_NAMES[g.label],
          class: g.label,
          scores: Object.fromEntries(g.rows.map((sc, r) => [rowNames[r], sc])),
        }))),
    });
  } finally {
    file?.close();
  }
  progress.finish("scene");
  if (json) {
    const report: EvalReport = {
      model: m.spec.display,
      preprocess: preset,
      sceneSeeds: [first, first + n - 1],
      ...result,
    };
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(
      `${m.spec.display}: ${
        shard ? `${result.n} of ${n} (shard ${shard.index}/${shard.count})` : n
      } held-out scenes (seeds ${first}..${first + n - 1}), ` +
        `${h}×${w}, explaining the labelled class; pointing tolerance ` +
        `${result.tolerance.toFixed(2)} px; deletion/insertion in ${steps} steps` +
        (curveN < n ? ` on the first ${curveN} scenes; ` : "; ") +
        `${metricWords(result)}; mean [95% CI], ${result.resamples} bootstrap resamples, ` +
        `seed ${seed}.\n`,
    );
    console.log(formatEvalTable(result));
  }
  if (!progress.quiet) console.error(`gradual: ${formatCurveWork(result.curveWork)}`);
  return 0;
}

/** How energy and insertion were computed, for the line above the table. */
function metricWords(r: EvalResult): string {
  return `energy on ${r.energyMap === "raw" ? "raw" : "min-max normalised"} maps; insertion ` +
    `from ${r.insertionStart === "rise" ? "RISE's 11×11 blur" : "a Gaussian blur"}`;
}

/** The metric options of both modes. */
interface MetricFlags {
  /** Pointing-game tolerance in pixels (default: scaled from 15 px at 224). */
  tolerance?: number;
  /** The map the energy pointing game sums. */
  energy: EnergyMap;
  /** Where insertion starts. */
  insertionStart: InsertionStart;
}

/** `--tolerance`, `--energy`, `--insertion-start`: the metric options. */
function metricFlags(flags: FlagValues): MetricFlags {
  const t = stringFlag(flags, "tolerance");
  const tolerance = t === undefined
    ? undefined
    : numberFlag(flags, "tolerance", 0, { min: 0, max: 1e6 });
  const energy = stringFlag(flags, "energy", "minmax");
  if (energy !== "minmax" && energy !== "raw") {
    throw new UsageError(`--energy must be minmax or raw, got '${energy}'`);
  }
  const start = stringFlag(flags, "insertion-start", "gaussian");
  if (start !== "gaussian" && start !== "rise") {
    throw new UsageError(`--insertion-start must be gaussian or rise, got '${start}'`);
  }
  return { tolerance, energy, insertionStart: start };
}

/** `gradual eval --merge FILE...`: the table of several shards' results files. */
async function mergeCommand(flags: FlagValues, files: readonly string[]): Promise<number> {
  const allowed = new Set(["merge", "json", "seed", "quiet", "help"]);
  const stray = Object.keys(flags).find((f) => !allowed.has(f));
  if (stray) {
    throw new UsageError(`--merge takes results files (and --json, --seed), not --${stray}`);
  }
  if (files.length === 0) throw new UsageError("--merge needs the shards' results files");
  // Scene runs record their --seed (the bootstrap seed of one run); else --seed, default 0.
  const given = stringFlag(flags, "seed") !== undefined;
  const seedOf = async (): Promise<number> => {
    if (given) return numberFlag(flags, "seed", 0, { min: 0, max: 1e9, integer: true });
    const { settings } = await asFileError(() => readResults(files[0]));
    return typeof settings.seed === "number" ? settings.seed : 0;
  };
  const seed = await seedOf();
  const merged = await asFileError(() => mergeResults(files, { seed }));
  const r = merged.result;
  const s = merged.settings;
  if (boolFlag(flags, "json")) {
    console.log(JSON.stringify({ merged: files, settings: s, ...r }, null, 2));
    return 0;
  }
  const what = s.format === "scenes"
    ? `${r.n} ${s.dataset} (${merged.shards} shard${merged.shards === 1 ? "" : "s"} merged)`
    : `${r.n} (image, class) pairs of ${s.dataset} (${s.format}, ${merged.shards} ` +
      `shard${merged.shards === 1 ? "" : "s"} merged)`;
  console.log(
    `${s.model}: ${what}, ${r.height}×${r.width}; pointing ` +
      `tolerance ${r.tolerance.toFixed(2)} px; deletion/insertion in ${r.steps} steps; ` +
      `${metricWords(r)}; mean [95% CI], ${r.resamples} bootstrap resamples, seed ${seed}.\n`,
  );
  console.log(formatEvalTable(r));
  return 0;
}

/** What both `eval` modes read: `--batch`, `--preprocess`, `--methods`, `--extrapolate`, `--json`. */
function runSettings(
  flags: FlagValues,
): Pick<EvalSettings, "batch" | "pre" | "methods" | "extrapolators" | "json"> {
  const batch = numberFlag(flags, "batch", 32, { min: 1, max: 1024, integer: true });
  const pre = stringFlag(flags, "preprocess");
  if (
    pre !== undefined &&
    (!(PREPROCESS_PRESETS as readonly string[]).includes(pre) || pre === "none")
  ) {
    throw new UsageError(
      `unknown --preprocess '${pre}' (one of ${
        PREPROCESS_PRESETS.filter((p) => p !== "none").join(", ")
      })`,
    );
  }
  const methods = listFlag(flags, "methods");
  if (methods.length === 0) methods.push("grad-cam");
  const extrapolators = listFlag(flags, "extrapolate");
  if (extrapolators.length === 0) extrapolators.push("none", "gradual");
  const json = boolFlag(flags, "json");
  return { batch, pre: pre as PreprocessPreset | undefined, methods, extrapolators, json };
}

function methodLayersOf(requests: readonly ExplainRequest[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of requests) {
    if (typeof r.method === "string" && r.layer !== undefined) out[r.method] = r.layer;
  }
  return out;
}

function methodOptionsOf(requests: readonly ExplainRequest[]): Record<string, PluginOptions> {
  const out: Record<string, PluginOptions> = {};
  for (const r of requests) {
    if (typeof r.method === "string" && r.methodOptions) out[r.method] = r.methodOptions;
  }
  return out;
}

function extrapolatorOptionsOf(
  requests: readonly ExplainRequest[],
): Record<string, PluginOptions> {
  const out: Record<string, PluginOptions> = {};
  for (const r of requests) {
    if (typeof r.extrapolator === "string" && r.extrapolatorOptions) {
      out[r.extrapolator] = r.extrapolatorOptions;
    }
  }
  return out;
}

/** What `--json` prints with `--dataset`. */
export interface DatasetEvalReport extends DatasetEvalResult {
  /** Model name or path. */
  model: string;
  /** Preprocessing applied to the images. */
  preprocess: PreprocessPreset;
  /** The dataset and how it was read. */
  dataset: {
    path: string;
    format: DatasetFormat;
    subset: Subset;
    regions: RegionMode;
  };
}

/** Runs `fn`, turning dataset errors into the CLI's one-line file errors. */
async function asFileError<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DatasetError) throw new FileError(e.file, e.problem);
    throw e;
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new FileError(file, e instanceof Deno.errors.NotFound ? "no such file" : String(e));
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileError(file, `invalid JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

/**
 * The summary lines of a dataset run (stderr): skipped classes, difficult rules, resumed
 * and failed pairs.
 *
 * @param s the run's counts
 * @param file the dataset (named in the lines)
 * @returns lines, each `gradual: <dataset>: ...`
 */
export function datasetSummaryLines(s: DatasetSummary, file: string): string[] {
  const out: string[] = [];
  const unknown = Object.entries(s.unknown).sort((a, b) => b[1] - a[1]);
  if (unknown.length) {
    const n = unknown.reduce((a, [, k]) => a + k, 0);
    const shown = unknown.slice(0, 10).map(([c, k]) => `${c} (${k})`).join(", ");
    out.push(
      `gradual: ${file}: skipped ${n} (image, class) pair${
        n === 1 ? "" : "s"
      } of ${unknown.length} class${
        unknown.length === 1 ? "" : "es"
      } the model does not know: ${shown}${unknown.length > 10 ? ", ..." : ""}`,
    );
  }
  if (s.imagesWithoutObjects) {
    out.push(`gradual: ${file}: ${s.imagesWithoutObjects} image(s) without objects`);
  }
  if (s.allDifficult) {
    out.push(
      `gradual: ${file}: skipped ${s.allDifficult} pair(s) whose objects are all VOC 'difficult'`,
    );
  }
  if (s.notDifficult) {
    out.push(`gradual: ${file}: ${s.notDifficult} pair(s) outside the difficult subset`);
  }
  if (s.resumed) out.push(`gradual: ${file}: ${s.resumed} pair(s) taken from the results file`);
  if (s.failed.length) {
    const files = new Set(s.failed.map((f) => f.file)).size;
    out.push(
      `gradual: ${file}: ${s.failed.length} pair(s) failed (${files} file(s) missing or unreadable, reported above)`,
    );
  }
  return out;
}

/** A `--dataset` run's settings. */
interface DatasetSettings {
  readonly kind: "dataset";
  /** The dataset. */
  readonly path: string;
  /** Most (image, class) pairs (`--n`). */
  readonly limit: number;
  /** Bootstrap seed. */
  readonly seed: number;
  /** Deletion/insertion steps. */
  readonly steps: number;
  /** Pairs with deletion/insertion curves. */
  readonly curveN: number;
  /** `--subset`. */
  readonly subset: Subset;
  /** `--regions`. */
  readonly regions: RegionMode;
  /** `--results` file. */
  readonly results?: string;
  /** `--resume`. */
  readonly resume: boolean;
  /** `--difficult-list` file. */
  readonly flagsFile?: string;
  /** `--class-map` file. */
  readonly mapFile?: string;
  /** `--shard`. */
  readonly shard?: Shard;
}

/** The `--dataset` flags. */
function datasetSettings(flags: FlagValues, path: string): DatasetSettings {
  const limit = numberFlag(flags, "n", Infinity, { min: 1, max: 1e9, integer: true });
  const seed = numberFlag(flags, "seed", 0, { min: 0, max: 1e9, integer: true });
  const steps = numberFlag(flags, "steps", 64, { min: 1, max: 1 << 20, integer: true });
  const curveN = numberFlag(flags, "curve-n", Infinity, { min: 0, max: 1e9, integer: true });
  const subset = stringFlag(flags, "subset", "all");
  if (subset !== "all" && subset !== "difficult") {
    throw new UsageError(`--subset must be all or difficult, got '${subset}'`);
  }
  const regions = stringFlag(flags, "regions", "auto");
  if (regions !== "auto" && regions !== "masks" && regions !== "boxes") {
    throw new UsageError(`--regions must be auto, masks or boxes, got '${regions}'`);
  }
  const results = stringFlag(flags, "results");
  const resume = boolFlag(flags, "resume");
  if (resume && results === undefined) throw new UsageError("--resume needs --results FILE");
  const flagsFile = stringFlag(flags, "difficult-list");
  if (flagsFile !== undefined && subset !== "difficult") {
    throw new UsageError("--difficult-list needs --subset difficult");
  }
  const mapFile = stringFlag(flags, "class-map");

  const shard = shardFlag(flags);
  if (shard && results === undefined) {
    throw new UsageError("--shard needs --results FILE (to merge the shards with --merge)");
  }
  return {
    kind: "dataset",
    path,
    limit,
    seed,
    steps,
    curveN,
    subset,
    regions,
    results,
    resume,
    flagsFile,
    mapFile,
    shard,
  };
}

/** `gradual eval --dataset PATH ...`. */
async function evalDataset(
  ctx: RunContext<EvalSettings>,
  mode: DatasetSettings,
): Promise<number> {
  const { flags, requests, progress } = ctx;
  const m = ctx.model;
  const { batch, pre, methods, extrapolators, json, metric } = ctx.settings;
  const { path, limit, seed, steps, curveN, subset, regions, results, resume } = mode;
  const { flagsFile, mapFile, shard } = mode;
  const [h, w, c] = m.session.inputSize;
  if (c !== 3 && c !== 1) {
    throw new FileError(
      m.spec.display,
      `eval needs RGB or gray input, the model takes ${c} channels`,
    );
  }
  const preset = pre ?? m.spec.preprocess ?? "imagenet";
  const dataset = await asFileError(() =>
    loadDataset(path, {
      imageDir: stringFlag(flags, "images"),
      split: stringFlag(flags, "split"),
      allowOutside: boolFlag(flags, "allow-outside-paths"),
    })
  );
  for (const s of dataset.skipped ?? []) console.error(`gradual: ${s.file}: ${s.problem}`);
  let map: ClassMapFile | undefined;
  if (mapFile !== undefined) {
    const j = await readJsonFile(mapFile);
    map = await asFileError(() => parseClassMap(j, mapFile));
  }
  const mapping = await asFileError(() =>
    buildClassMapping({ labels: m.labels, numClasses: m.numClasses, map, mapFile })
  );
  let difficultFlags: Map<string, boolean[]> | undefined;
  if (flagsFile !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(flagsFile);
    } catch (e) {
      throw new FileError(
        flagsFile,
        e instanceof Deno.errors.NotFound ? "no such file" : String(e),
      );
    }
    difficultFlags = await asFileError(() => parseDifficultFlags(text, flagsFile));
  }

  let started = false;
  let lastProblem = "";
  const result = await asFileError(() =>
    evaluateDataset({
      model: m.session,
      dataset,
      mapping,
      preprocess: preset,
      methods,
      extrapolators,
      methodOptions: methodOptionsOf(requests),
      extrapolatorOptions: extrapolatorOptionsOf(requests),
      layers: methodLayersOf(requests),
      ...metric,
      shareImages: !boolFlag(flags, "no-share"),
      shard: shard ? [shard.index, shard.count] : undefined,
      batchSize: batch,
      steps,
      curveSamples: curveN,
      seed,
      subset,
      difficultFlags,
      regions,
      limit,
      results,
      resume,
      resultsSettings: { model: m.spec.display },
      onStart: (total) => {
        progress.start(total);
        started = true;
      },
      onPair: (e) => {
        const label = `${e.pair.image.key} ${e.pair.category}`;
        if (e.status === "failed") {
          const line = `gradual: ${e.file}: ${e.problem}`;
          if (line !== lastProblem) progress.line(line);
          lastProblem = line;
        }
        progress.tick(label, e.status !== "failed");
      },
    })
  );
  if (!started) progress.start(0);
  progress.finish("pair");
  if (!progress.quiet) {
    for (const l of datasetSummaryLines(result.summary, path)) console.error(l);
  }
  if (json) {
    const report: DatasetEvalReport = {
      model: m.spec.display,
      preprocess: preset,
      dataset: { path, format: dataset.format, subset, regions },
      ...result,
    };
    console.log(JSON.stringify(report, null, 2));
  } else {
    const curves = result.curveSamples < result.n
      ? ` on the first ${result.curveSamples} pairs`
      : "";
    console.log(
      `${m.spec.display}: ${result.n} (image, class) pairs of ${path} (${dataset.format}` +
        `${subset === "difficult" ? ", difficult subset" : ""}, ${regions} regions), ` +
        `${h}×${w}, explaining each pair's class; pointing tolerance ` +
        `${result.tolerance.toFixed(2)} px; deletion/insertion in ${steps} steps${curves}; ` +
        `${metricWords(result)}; mean [95% CI], ${result.resamples} bootstrap resamples, ` +
        `seed ${seed}.\n`,
    );
    console.log(formatEvalTable(result));
  }
  if (!progress.quiet) console.error(`gradual: ${formatCurveWork(result.curveWork)}`);
  return result.summary.failed.length || dataset.skipped?.length ? 1 : 0;
}
