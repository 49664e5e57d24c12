/**
 * What the model-running commands share: the image commands' common flags, plugin loading,
 * backend start, model loading and method-request parsing (used by `_runner.ts`).
 *
 * @module
 */
import { DEFAULT_MAX_PIXELS, PREPROCESS_PRESETS, type PreprocessPreset } from "../io/mod.ts";
import { initBackend, NoWebGpuAdapterError, type WinogradMode } from "../backend/mod.ts";
import { registry } from "../core/registry.ts";
import { tf } from "../core/tensor.ts";
import { COLORMAPS } from "../render/colormap.ts";
import { type FlagSpec, type FlagValues, numberFlag, repeatedFlag, stringFlag } from "./_args.ts";
import { UsageError } from "./_errors.ts";
import {
  type CliRequest,
  type OptionFlags,
  type RequestNames,
  requestsWithOptions,
} from "./_plugin_options.ts";
import {
  DEFAULT_MODEL,
  type LoadedModel,
  loadModel,
  parseInputSize,
  parseTarget,
  resolveModelSpec,
} from "./_model.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";
import type { TargetSpec } from "../core/targets.ts";
import { parseShard, type Shard } from "./_files.ts";

/** Flags every explaining command takes. */
export const COMMON_FLAGS: Readonly<Record<string, FlagSpec>> = {
  model: { type: "string", short: "m" },
  labels: { type: "string" },
  layer: { type: "string" },
  target: { type: "string" },
  preprocess: { type: "string" },
  "input-size": { type: "string" },
  out: { type: "string", short: "o" },
  colormap: { type: "string" },
  alpha: { type: "string" },
  batch: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  winograd: { type: "string" },
  plugin: { type: "string", multiple: true },
  shard: { type: "string" },
  "skip-existing": { type: "boolean" },
  "max-pixels": { type: "string" },
  "allow-outside-paths": { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  opt: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
};

/** Help text of the common flags. */
export const COMMON_HELP =
  `  -m, --model M        built-in name, tfjs model.json or .onnx file (default shapes-vgg)
      --labels FILE    class names (JSON array/object or one per line), or 'imagenet'
                       (the 1000 ImageNet classes in torchvision's order, shipped)
      --layer NAME     layer the methods work on (default: each method's choice; the model
                       input's name is a layer too); --opt NAME.layer=L for one method
      --target T       top1 (default), topK, a class index or a class name
      --preprocess P   imagenet, unit (0..1), symmetric (-1..1), caffe, raw (0..255, for
                       models with a Rescaling stem such as EfficientNet), or none (inputs
                       are .npy tensors already preprocessed); default: the built-in
                       model's, else imagenet
      --input-size S   N or HxW, for models whose input size is open ([-1, -1, -1, 3])
  -o, --out DIR        output folder (default ./gradual-out)
      --colormap C     ${COLORMAPS.join(", ")} (default jet)
      --alpha A        heatmap weight in overlays, 0..1 (default 0.5)
      --batch N        images per forward pass (default 4)
      --backend B      wasm (default), cpu or webgpu (needs a WebGPU adapter: a GPU and,
                       on Linux, a Vulkan driver)
      --threads N      wasm threads (default: all cores, at most 8; 1 for built-in models)
      --winograd W     3x3 convolutions by Winograd on wasm: off (default, exact), auto, all
      --plugin P       load a method/extrapolator plugin module (path or URL; repeatable)
      --shard K/N      process only the K-th of N shares of the sorted inputs
      --skip-existing  skip inputs whose outputs all exist (every method, format and
                       class of --target; an interrupted image is done again)
      --max-pixels N   largest image accepted, width x height (default 100000000);
                       checked from the file's header before decoding
      --allow-outside-paths  let a model's weights shards (or ONNX external data) lie
                       outside its folder (absolute paths, ../); refused by default
      --opt KEY=VALUE  method option, for every method that takes KEY (repeatable);
                       NAME.KEY=VALUE for plugin NAME only; NAME.layer=L sets one method's
                       layer; every plugin's options are listed below
  -q, --quiet          no progress or summary
  -h, --help           this help`;

/** Settings common to the explaining commands. */
export interface CommonSettings {
  /** Output folder. */
  readonly out: string;
  /** Colormap name. */
  readonly colormap: string;
  /** Overlay alpha. */
  readonly alpha: number;
  /** Batch size. */
  readonly batch: number;
  /** Preprocessing preset (resolved against the model later when not given). */
  readonly preprocess?: PreprocessPreset;
  /** Quiet mode. */
  readonly quiet: boolean;
  /** Largest image accepted, in pixels. */
  readonly maxPixels: number;
  /** The classes to explain (`--target`). */
  readonly target: TargetSpec;
  /** This run's share of the inputs (`--shard`), or all of them. */
  readonly shard?: Shard;
}

/** Reads and checks the common flags (usage errors before any work). */
export function commonSettings(flags: FlagValues): CommonSettings {
  const colormap = stringFlag(flags, "colormap", "jet");
  if (!(COLORMAPS as readonly string[]).includes(colormap)) {
    throw new UsageError(`unknown colormap '${colormap}' (one of ${COLORMAPS.join(", ")})`);
  }
  const pre = stringFlag(flags, "preprocess");
  if (pre !== undefined && !(PREPROCESS_PRESETS as readonly string[]).includes(pre)) {
    throw new UsageError(
      `unknown --preprocess '${pre}' (one of ${PREPROCESS_PRESETS.join(", ")})`,
    );
  }
  return {
    out: stringFlag(flags, "out", "gradual-out"),
    colormap,
    alpha: numberFlag(flags, "alpha", 0.5, { min: 0, max: 1 }),
    batch: numberFlag(flags, "batch", 4, { min: 1, max: 256, integer: true }),
    preprocess: pre as PreprocessPreset | undefined,
    quiet: flags.quiet === true,
    maxPixels: numberFlag(flags, "max-pixels", DEFAULT_MAX_PIXELS, {
      min: 1,
      max: 0x3fffffff,
      integer: true,
    }),
    target: parseTarget(stringFlag(flags, "target")),
    shard: shardFlag(flags),
  };
}

function optionValue(v: string): unknown {
  if (v === "true") return true;
  if (v === "false") return false;
  if (v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return v;
}

/** Parses the `--opt` flags. */
export function parseOptions(flags: FlagValues): OptionFlags {
  const all: Record<string, unknown> = {};
  const byPlugin: Record<string, Record<string, unknown>> = {};
  for (const kv of repeatedFlag(flags, "opt")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--opt needs KEY=VALUE, got '${kv}'`);
    const key = kv.slice(0, eq);
    const value = optionValue(kv.slice(eq + 1));
    const dot = key.lastIndexOf(".");
    if (dot > 0) (byPlugin[key.slice(0, dot)] ??= {})[key.slice(dot + 1)] = value;
    else all[key] = value;
  }
  return { all, byPlugin };
}

/** Whether a method or extrapolator of that name (or alias) is registered. */
export function registered(kind: "method" | "extrapolator", name: string): boolean {
  try {
    if (kind === "method") registry.method(name);
    else registry.extrapolator(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Splits a method spec `METHOD[+EXTRAPOLATOR]` where names may themselves contain `+`
 * (`grad-cam++`, `gradual+`): a registered method name as a whole wins, then the first split
 * into a registered method and a registered extrapolator (or `none`), then the first `+`.
 */
export function splitSpec(spec: string): [string, string | undefined] {
  if (registered("method", spec)) return [spec, undefined];
  for (let i = spec.indexOf("+"); i > 0; i = spec.indexOf("+", i + 1)) {
    const m = spec.slice(0, i), e = spec.slice(i + 1);
    if (registered("method", m) && (e === "none" || registered("extrapolator", e))) return [m, e];
  }
  const i = spec.indexOf("+");
  return i < 0 ? [spec, undefined] : [spec.slice(0, i), spec.slice(i + 1)];
}

/**
 * Builds explain requests from method specs (`grad-cam`, `grad-cam+gradual`); a spec
 * without `+` gets each of `extrapolators` (`none` for none), marked as the command's
 * default when `byDefault`. The options from `--opt` are given out and validated once
 * ({@linkcode requestsWithOptions}): call it once the plugins are loaded.
 */
export function buildRequests(
  methods: readonly string[],
  extrapolators: readonly string[],
  layer: string | undefined,
  opts: OptionFlags,
  byDefault = false,
): CliRequest[] {
  const pairs: RequestNames[] = [];
  for (const spec of methods) {
    const [method, ex] = splitSpec(spec);
    for (const e of ex !== undefined ? [ex] : extrapolators) {
      const extrapolator = e === "none" || e === "" ? undefined : e;
      pairs.push({ method, extrapolator, defaultExtrapolator: byDefault && ex === undefined });
    }
  }
  return requestsWithOptions(pairs, layer, opts);
}

/** Loads every `--plugin` module into the registry. */
export async function loadPlugins(flags: FlagValues): Promise<void> {
  for (const p of repeatedFlag(flags, "plugin")) await registry.load(p);
}

/** `--shard K/N`, or undefined without it. */
export function shardFlag(flags: FlagValues): Shard | undefined {
  const spec = stringFlag(flags, "shard");
  return spec === undefined ? undefined : parseShard(spec);
}

/** Checks `--backend`, `--threads` and `--winograd` (usage errors before any work). */
export function backendFlags(flags: FlagValues): void {
  const backend = stringFlag(flags, "backend", "wasm");
  if (backend !== "wasm" && backend !== "cpu" && backend !== "webgpu") {
    throw new UsageError(`--backend must be wasm, cpu or webgpu, got '${backend}'`);
  }
  numberFlag(flags, "threads", 1, { min: 1, max: 64, integer: true });
  winogradFlag(flags);
}

/** `--winograd`: off (default), auto or all. */
export function winogradFlag(flags: FlagValues): WinogradMode {
  const w = stringFlag(flags, "winograd", "off");
  if (w !== "auto" && w !== "all" && w !== "off") {
    throw new UsageError(`--winograd must be auto, all or off, got '${w}'`);
  }
  return w;
}

/**
 * Starts the tfjs backend named by `--backend` / `--threads` / `--winograd`. Without
 * `--threads`: with `allCores`, all cores (at most 8); otherwise the built-in models get 1
 * thread (they are too small to gain: the thread pool's hand-offs cost more than they save)
 * and other models all cores.
 */
export async function startBackend(flags: FlagValues, allCores = false): Promise<void> {
  const backend = stringFlag(flags, "backend", "wasm") as "wasm" | "cpu" | "webgpu";
  const t = stringFlag(flags, "threads");
  const model = stringFlag(flags, "model", DEFAULT_MODEL);
  const builtin = Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, model);
  const cores = Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
  tf.enableProdMode(); // no "install tfjs-node" banner and no debug checks in the CLI
  try {
    await initBackend({
      backend,
      threads: t !== undefined ? Number(t) : allCores ? cores : builtin ? 1 : undefined,
      winograd: winogradFlag(flags),
    });
  } catch (e) {
    if (e instanceof NoWebGpuAdapterError) throw new UsageError(`--backend webgpu: ${e.message}`);
    throw e;
  }
}

/** Resolves and loads `--model` / `--labels`; prints label warnings unless quiet. */
export async function openModel(flags: FlagValues, quiet: boolean): Promise<LoadedModel> {
  const m = await loadModel(
    resolveModelSpec(stringFlag(flags, "model"), stringFlag(flags, "labels")),
    {
      inputSize: parseInputSize(stringFlag(flags, "input-size")),
      allowOutsideFolder: flags["allow-outside-paths"] === true,
    },
  );
  if (!quiet) m.warnings.forEach((w) => console.error(w));
  return m;
}

/** The preprocessing to use: `--preprocess`, else the built-in model's, else imagenet. */
export function preprocessFor(settings: CommonSettings, m: LoadedModel): PreprocessPreset {
  return settings.preprocess ?? m.spec.preprocess ?? "imagenet";
}
