/**
 * `gradual explain`: saliency maps for many images, written as overlays (at the original
 * image size), heatmaps and `.npy` maps (at model-input resolution), JSON records and
 * titled grids.
 *
 * @module
 */
import { join } from "node:path";
import type { Explanation } from "../core/explain.ts";
import { encodePng, type Rgba8Image } from "../io/mod.ts";
import { encodeNpy } from "../io/npy.ts";
import { registry } from "../core/registry.ts";
import { heatmapRgba, overlay } from "../render/compose.ts";
import { boolFlag, listFlag } from "./_args.ts";
import { COMMON_HELP } from "./_common.ts";
import { FileError, UsageError } from "./_errors.ts";
import { explanationFigure } from "./_figure.ts";
import { IMAGE_EXTENSIONS } from "./_files.ts";
import { imageCommand } from "./_image_command.ts";
import { type LoadedInput, originalOf } from "./_inputs.ts";
import type { LoadedModel } from "./_model.ts";
import {
  classTag,
  nonFiniteProblem,
  outputName,
  outputStem,
  safeName,
  stemOfName,
  variantName,
  writeFileAtomic,
} from "./_output.ts";
import type { TargetSpec } from "../core/targets.ts";
import { runCommand } from "./_runner.ts";

/** Help of `gradual explain`. */
export const EXPLAIN_HELP = `gradual explain: saliency maps for images, folders or globs

Usage: gradual explain [options] <images|folders|globs...>

Options:
      --method M       method(s) to run, repeatable or comma list (default grad-cam);
                       METHOD+EXTRAPOLATOR names one combination
      --extrapolate E  gradual+ (default: the measured-better variant), gradual (the paper's),
                       none, or a comma list: gradual+,gradual,none; the default is left off
                       maps already at input resolution (gradient, ...), with a note
      --format F       comma list of overlay, heatmap, grid, npy, json (default overlay,heatmap)
      --json           one JSON record per image and method on stdout
${COMMON_HELP}

Outputs are named <image>_<path hash>.<method>[+<extrapolator>].c<class>[-<name>].<kind>:
overlays at the original image size, heatmaps (.heatmap.png) and maps (.npy, float32 [H, W])
at model-input resolution; grid: <image>_<hash>.grid.png.

Examples:
  gradual explain photos/ --out maps
  gradual explain 'shots/**/*.jpg' --method grad-cam --extrapolate gradual,none --format overlay,npy
  gradual explain cat.png --model my/model.json --labels labels.txt --target top3 --json
  gradual explain tensors/ --preprocess none --format npy --shard 0/4
`;

const FLAGS = {
  method: { type: "string", multiple: true },
  extrapolate: { type: "string", multiple: true },
  format: { type: "string", multiple: true },
  json: { type: "boolean" },
} as const;

/** The output kinds of `--format`. */
export const FORMATS: readonly string[] = ["overlay", "heatmap", "grid", "npy", "json"];

/** File suffix of each per-explanation format. */
const SUFFIX: Record<string, string> = {
  overlay: "overlay.png",
  heatmap: "heatmap.png",
  npy: "npy",
  json: "json",
};

function stats(map: Float32Array): { min: number; max: number; mean: number } {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of map) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: map.length ? sum / map.length : NaN };
}

/** One `--json` record. */
export interface ExplainRecord {
  /** Input file. */
  file: string;
  /** Explained class index. */
  class: number;
  /** Its label, or null. */
  className: string | null;
  /** Class score (logit). */
  score: number;
  /** Softmax probability. */
  probability: number;
  /** Method name. */
  method: string;
  /** Extrapolator name, or null. */
  extrapolator: string | null;
  /** Layer the method worked on. */
  layer: string;
  /** Written files by format. */
  outputs: Record<string, string>;
  /** Map size and statistics. */
  map: { height: number; width: number; min: number; max: number; mean: number };
  /** Whether the map is constant (no evidence for the class at that layer). */
  empty: boolean;
}

/** Where and how `writeImageOutputs` writes. */
interface OutputSettings {
  out: string;
  colormap: string;
  alpha: number;
  formats: string[];
}

async function writeImageOutputs(
  s: OutputSettings,
  x: LoadedInput,
  results: Explanation[][],
): Promise<ExplainRecord[]> {
  const stem = outputStem(x.file);
  const records: ExplainRecord[] = [];
  let original: Rgba8Image | undefined;
  const photo = async (): Promise<Rgba8Image> => (original ??= await originalOf(x));
  const all: Explanation[] = [];
  const failures: string[] = [];
  for (const e of results.flat()) {
    const bad = nonFiniteProblem(e);
    if (bad === undefined) all.push(e);
    else failures.push(bad);
  }
  for (const e of all) {
    const variant = variantName(e.method, e.extrapolator);
    const cls = classTag(e.classIndex, e.className);
    const path = (kind: string): string =>
      join(s.out, outputName(stem, variant, cls, SUFFIX[kind]));
    const outputs: Record<string, string> = {};
    for (const kind of s.formats) {
      if (kind === "overlay") {
        const img = overlay(await photo(), e.map, e.width, e.height, s.colormap, s.alpha);
        await writeFileAtomic(path(kind), await encodePng(img.width, img.height, img.data));
      } else if (kind === "heatmap") {
        const img = heatmapRgba(e.map, e.width, e.height, s.colormap);
        await writeFileAtomic(path(kind), await encodePng(img.width, img.height, img.data));
      } else if (kind === "npy") {
        await writeFileAtomic(path(kind), encodeNpy(e.map, [e.height, e.width]));
      } else continue;
      outputs[kind] = path(kind);
    }
    if (s.formats.includes("json")) outputs.json = path("json");
    const record: ExplainRecord = {
      file: x.file,
      class: e.classIndex,
      className: e.className ?? null,
      score: e.score,
      probability: e.probability,
      method: e.method,
      extrapolator: e.extrapolator ?? null,
      layer: e.layer,
      outputs,
      map: { height: e.height, width: e.width, ...stats(e.map) },
      empty: e.empty,
    };
    if (e.empty) {
      console.error(
        `gradual: ${x.file}: the ${variant} map for ${cls} is empty (constant: no evidence for the class at layer '${e.layer}')`,
      );
    }
    if (s.formats.includes("json")) {
      await writeFileAtomic(path("json"), JSON.stringify(record, null, 2) + "\n");
    }
    records.push(record);
  }
  if (s.formats.includes("grid") && all.length > 0) {
    const fig = explanationFigure(await photo(), all, {
      colormap: s.colormap,
      alpha: s.alpha,
      panelHeight: 224,
    });
    const gridPath = join(s.out, `${stem}.grid.png`);
    await writeFileAtomic(gridPath, await encodePng(fig.width, fig.height, fig.data));
    records.forEach((r) => (r.outputs.grid = gridPath));
  }
  if (failures.length > 0) throw new FileError(x.file, failures.join("; "));
  return records;
}

/** Output names grouped by their stem (everything before the first dot), for `--skip-existing`. */
function namesByStem(names: Iterable<string>): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const n of names) {
    const stem = stemOfName(n);
    const list = by.get(stem);
    if (list) list.push(n);
    else by.set(stem, [n]);
  }
  return by;
}

/**
 * The class tags every image gets for a target (a fixed class), or how many distinct
 * classes it gets (`top1`, `topK`), for `--skip-existing`.
 */
export function expectedClasses(
  target: TargetSpec,
  model: Pick<LoadedModel, "labels" | "numClasses">,
): { tags: string[] } | { count: number } {
  if (typeof target === "number") return { tags: [classTag(target, model.labels?.[target])] };
  if (typeof target === "string") {
    const top = /^top(\d+)$/.exec(target);
    if (top) return { count: Math.min(Number(top[1]), model.numClasses) };
    const i = model.labels?.indexOf(target) ?? -1;
    if (i >= 0) return { tags: [classTag(i, model.labels?.[i])] };
  }
  return { count: 1 };
}

/**
 * Whether every output `file` would get already exists (for `--skip-existing`): for each
 * variant and format, the file of every expected class (all K classes of `--target topK`,
 * so an image interrupted half-way is done again).
 */
function outputsExist(
  file: string,
  variants: string[],
  formats: string[],
  classes: { tags: string[] } | { count: number },
  byStem: Map<string, string[]>,
): boolean {
  const stem = outputStem(file);
  const have = byStem.get(stem) ?? [];
  for (const kind of formats) {
    if (kind === "grid") {
      if (!have.includes(`${stem}.grid.png`)) return false;
      continue;
    }
    for (const v of variants) {
      const prefix = `${stem}.${safeName(v)}.`;
      const suffix = `.${SUFFIX[kind]}`;
      if ("tags" in classes) {
        if (!classes.tags.every((t) => have.includes(`${prefix}${t}${suffix}`))) return false;
        continue;
      }
      const tags = new Set(
        have.filter((n) => n.startsWith(prefix) && n.endsWith(suffix))
          .map((n) => n.slice(prefix.length, n.length - suffix.length))
          .filter((t) => /^c\d+(-|$)/.test(t)),
      );
      if (tags.size < classes.count) return false;
    }
  }
  return true;
}

/** `explain`'s own settings. */
interface ExplainSettings {
  /** Output kinds (`--format`). */
  readonly formats: string[];
  /** Whether to print JSON records (`--json`). */
  readonly json: boolean;
  /** Method specs (`--method`). */
  readonly methods: string[];
  /** Extrapolators of specs without one (`--extrapolate`). */
  readonly extrapolators: string[];
}

/** `gradual explain` for the runner. */
const EXPLAIN = imageCommand<ExplainSettings>({
  name: "explain",
  help: EXPLAIN_HELP,
  flags: FLAGS,
  settings(flags) {
    const formats = listFlag(flags, "format");
    if (formats.length === 0) formats.push("overlay", "heatmap");
    for (const f of formats) {
      if (!FORMATS.includes(f)) {
        throw new UsageError(`unknown format '${f}' (one of ${FORMATS.join(", ")})`);
      }
    }
    return {
      formats,
      json: boolFlag(flags, "json"),
      methods: listFlag(flags, "method"),
      extrapolators: listFlag(flags, "extrapolate"),
    };
  },
  extensions: (common) => common.preprocess === "none" ? ["npy"] : IMAGE_EXTENSIONS,
  select: (own) => ({
    methods: own.methods.length ? own.methods : ["grad-cam"],
    extrapolators: own.extrapolators.length ? own.extrapolators : ["gradual+"],
    defaultExtrapolators: own.extrapolators.length === 0,
  }),
  done(ctx, names) {
    const byStem = namesByStem(names);
    const variants = ctx.requests.map((r) =>
      variantName(
        registry.method(String(r.method)).name,
        r.extrapolator ? registry.extrapolator(String(r.extrapolator)).name : undefined,
      )
    );
    const classes = expectedClasses(ctx.target, ctx.model);
    const formats = ctx.settings.own.formats;
    return (f) => outputsExist(f, variants, formats, classes, byStem);
  },
  async handle(ctx, x, results) {
    const { own, common } = ctx.settings;
    const records = await writeImageOutputs(
      { out: common.out, colormap: common.colormap, alpha: common.alpha, formats: own.formats },
      x,
      results,
    );
    if (own.json) { for (const r of records) console.log(JSON.stringify(r)); }
  },
});

/** Runs `gradual explain`; returns the exit status. */
export function runExplain(argv: readonly string[]): Promise<number> {
  return runCommand(EXPLAIN, argv);
}
