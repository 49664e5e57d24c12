/**
 * `gradual eval`: measures explanation quality on held-out generated scenes, whose exact
 * target masks and boxes are known: pointing game (ties averaged and first argmax),
 * energy-based pointing game, deletion and insertion AUC, with 95 % bootstrap confidence
 * intervals and the time per image, for every method × extrapolator and the centre
 * baseline. A markdown table on stdout, or JSON with `--json`.
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
import { preprocess, PREPROCESS_PRESETS, type PreprocessPreset } from "../core/image.ts";
import { type EvalResult, type EvalSample, evaluate, formatEvalTable } from "../metrics/mod.ts";
import { CLASS_NAMES, generateScene } from "../models/scenes.ts";
import { boolFlag, listFlag, numberFlag, parseFlags, stringFlag } from "./_args.ts";
import { buildRequests, loadPlugins, openModel, parseOptions, startBackend } from "./_common.ts";
import { FileError, UsageError } from "./_errors.ts";
import { validateRun } from "./_model.ts";
import { Progress } from "./_progress.ts";

/** First seed of the evaluation scenes (see the module documentation). */
export const EVAL_SEED_START = 4_000_000;
/** Seeds reserved per `--seed` value: `n` may not exceed it. */
export const EVAL_SEEDS_PER_BLOCK = 100_000;

/** Help of `gradual eval`. */
export const EVAL_HELP =
  `gradual eval: how well do saliency maps locate the object? (held-out generated scenes)

Usage: gradual eval [options]

Options:
  -m, --model M        built-in model name or path to a tfjs model.json (default shapes-vgg);
                       it must take square RGB input and classify the 10 scene classes
      --methods L      comma list of methods (default grad-cam), e.g. grad-cam,c-eb
      --extrapolate L  comma list of extrapolators, none for none (default none,gradual)
      --n N            number of scenes (default 500)
      --seed S         0..999: scene block (seeds ${EVAL_SEED_START} + ${EVAL_SEEDS_PER_BLOCK}·S + i) and
                       bootstrap seed (default 0)
      --steps K        deletion/insertion steps, 1/K of the pixels each (default 64)
      --curve-n N      deletion/insertion only on the first N scenes (default: all n);
                       they cost 2·(K+1) forward images per scene and method, the other
                       metrics about one
      --batch N        images per model call when scoring deletion/insertion (default 32)
      --preprocess P   imagenet, unit, symmetric, caffe (default: the built-in model's,
                       else imagenet)
      --opt KEY=VALUE  method option (repeatable); NAME.KEY=VALUE for one plugin only
      --plugin P       load a method/extrapolator plugin module (repeatable)
      --backend B      wasm (default) or cpu
      --threads N      wasm threads (default: all cores, at most 8)
      --json           print the result as JSON instead of a markdown table
  -q, --quiet          no progress bar or summary
  -h, --help           this help

Metrics (mean [95% bootstrap CI], 1000 resamples): pointing game (TorchRay; tolerance
15 px at 224, scaled; tied maxima averaged, and first argmax), energy inside the box,
deletion AUC (lower is better) and insertion AUC (RISE), ms per image to make the map.
The explained class is each scene's label, not the model's top-1.

Examples:
  gradual eval --model shapes-vgg --methods grad-cam,c-eb --extrapolate none,gradual --n 500
  gradual eval --model shapes-resnet --n 100 --json > eval.json
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
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

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
 * @returns a generator of samples for `evaluate`
 */
export function* heldOutScenes(
  n: number,
  seed: number,
  size: number,
  preset: PreprocessPreset,
): Generator<EvalSample> {
  const first = EVAL_SEED_START + EVAL_SEEDS_PER_BLOCK * seed;
  for (let i = 0; i < n; i++) {
    const s = generateScene(first + i, { size });
    yield {
      image: preprocess({ width: size, height: size, data: s.image }, preset),
      mask: s.mask,
      box: s.box,
      label: s.label,
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
 * import { evalCommand } from "./eval.ts";
 * // const code = await evalCommand(["--model", "shapes-vgg", "--n", "50", "--json"]);
 * ```
 *
 * @param argv the arguments after `eval`
 * @returns the exit status
 */
export async function evalCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseFlags(argv, FLAGS);
  if (boolFlag(flags, "help")) {
    console.log(EVAL_HELP);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(`eval takes no arguments, got '${positionals[0]}'`);
  }
  const n = numberFlag(flags, "n", 500, { min: 1, max: EVAL_SEEDS_PER_BLOCK, integer: true });
  const seed = numberFlag(flags, "seed", 0, { min: 0, max: 999, integer: true });
  const steps = numberFlag(flags, "steps", 64, { min: 1, max: 1 << 20, integer: true });
  const curveN = numberFlag(flags, "curve-n", n, { min: 0, max: n, integer: true });
  const batch = numberFlag(flags, "batch", 32, { min: 1, max: 1024, integer: true });
  numberFlag(flags, "threads", 1, { min: 1, max: 64, integer: true });
  const backend = stringFlag(flags, "backend", "wasm");
  if (backend !== "wasm" && backend !== "cpu") {
    throw new UsageError(`--backend must be wasm or cpu, got '${backend}'`);
  }
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
  for (const m of methods) {
    if (m.includes("+")) {
      throw new UsageError(`--methods takes method names; use --extrapolate for '${m}'`);
    }
  }
  const quiet = boolFlag(flags, "quiet");
  const json = boolFlag(flags, "json");
  const opts = parseOptions(flags);

  await loadPlugins(flags);
  await startBackend(flags);
  const m = await openModel(flags, quiet);
  const requests = buildRequests(methods, extrapolators, undefined, opts);
  validateRun(m, requests, 0);
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
  const preset = (pre as PreprocessPreset | undefined) ?? m.spec.preprocess ?? "imagenet";
  const methodOptions: Record<string, Record<string, unknown>> = {};
  for (const r of requests) {
    if (typeof r.method === "string" && r.methodOptions) methodOptions[r.method] = r.methodOptions;
  }

  const progress = new Progress({ quiet });
  progress.start(n);
  let ticked = 0;
  const result = await evaluate({
    model: m.session,
    samples: heldOutScenes(n, seed, h, preset),
    methods,
    extrapolators,
    methodOptions,
    batchSize: batch,
    steps,
    curveSamples: curveN,
    seed,
    total: n,
    onProgress: (p) => {
      while (ticked < p.done) progress.tick(`scene ${++ticked}`);
    },
  });
  progress.finish("scene");
  const first = EVAL_SEED_START + EVAL_SEEDS_PER_BLOCK * seed;
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
      `${m.spec.display}: ${n} held-out scenes (seeds ${first}..${first + n - 1}), ` +
        `${h}×${w}, explaining the labelled class; pointing tolerance ` +
        `${result.tolerance.toFixed(2)} px; deletion/insertion in ${steps} steps` +
        (curveN < n ? ` on the first ${curveN} scenes; ` : "; ") +
        `mean [95% CI], ${result.resamples} bootstrap resamples, seed ${seed}.\n`,
    );
    console.log(formatEvalTable(result));
  }
  return 0;
}
