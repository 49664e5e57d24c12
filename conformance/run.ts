/**
 * The conformance runner: `deno task conformance path/to/fixtures.json`.
 *
 * Reads a fixture set in the format of the reference fixtures (`fixtures.json` with one
 * entry per model: `tfjs_model` or `arch`, the `layers` / `layers_tf` role blocks, `targets`,
 * `arrays`, `checks`), computes every array it has a recipe for, and prints one JSON object:
 * `{"models": {"<model>": {"<array>": {"max_abs_over_max_ref", "tolerance", "pass"} |
 * "skipped"}}, "skipped": {"<model>": {"<array>": "<reason>"}}, "errors": {...},
 * "summary": {...}}`. Skip reasons and errors are also printed to stderr. Exit status 0 if and
 * only if nothing failed and nothing raised.
 *
 * Generality rules (so any architecture in this format runs):
 * - every PyTorch layer name of a fixture set (role blocks, `checks.extra_methods.pgc_layer`)
 *   is mapped to a tfjs layer through the role blocks (`layers[role]` -> `layers_tf[role]`)
 *   and the `arch.json` node table (`name` / `pytorch_output_of` -> `tf_name`); a name that
 *   maps to no layer, or to several, skips the arrays that need it, with the reason;
 * - recipes follow the documented conditions: `ceb_torchray_inputgrad` (and the seed flow's
 *   c-EB) lose the contrast only when the saliency layer equals the contrast layer;
 * - models come from PyTorch, so sessions use PyTorch-style max-pool padding
 *   (`poolPadding: "pytorch"`), except for the arrays computed on purpose with the exported
 *   zero-padded pool (`*_zeropadpool`);
 * - tolerances come from the array entry's `tolerance`, else from the float32-vs-float64 gaps
 *   that `checks` records for arrays of the same family (same method, extrapolator and output
 *   processing): ten times the largest gap, rounded up to a power of ten, at least 1e-4 — the
 *   rule behind the README's suggested tolerances.
 *
 * @module
 */
import "../plugins/mod.ts";
import { explainMany, type ExplainOptions, type ExplainRequest } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { registry } from "../core/registry.ts";
import { type BackwardRule, ModelSession } from "../core/session.ts";
import { oneHotSeed } from "../core/targets.ts";
import { type LayersModel, type Tensor4D, tf } from "../core/tensor.ts";
import { deconvReluRule } from "../plugins/deconvnet.ts";
import { guidedReluRule } from "../plugins/guided_backprop.ts";
import { type Arch, buildArchModel } from "./arch_model.ts";

/** Result for one array (the reason of a skip is in {@linkcode ConformanceReport.skipped}). */
export type ArrayResult =
  | { max_abs_over_max_ref: number; tolerance: number; pass: boolean }
  | "skipped";

/** Per-model counts and the largest error per family. */
export interface ModelSummary {
  /** Arrays in the fixture set (inputs excluded). */
  arrays: number;
  /** Arrays compared. */
  ran: number;
  /** Arrays within tolerance. */
  passed: number;
  /** Arrays skipped (with a reason). */
  skipped: number;
  /** Arrays whose computation raised. */
  errors: number;
  /** Per family: the array with the largest error relative to its reference's max. */
  largest: Record<string, { array: string; max_abs_over_max_ref: number; tolerance: number }>;
}

/** The runner's report. */
export interface ConformanceReport {
  /** Per model, per array. */
  models: Record<string, Record<string, ArrayResult>>;
  /** Per model, per skipped array: why. */
  skipped: Record<string, Record<string, string>>;
  /** Per model, per array whose computation raised: the message (counted as failed). */
  errors: Record<string, Record<string, string>>;
  /** Per model: counts and largest errors. */
  summary: Record<string, ModelSummary>;
}

interface ArrayEntry {
  file: string;
  shape: number[];
  tolerance?: number;
}

interface Gap {
  max_abs_over_max_ref?: number;
}

interface ModelEntry {
  tfjs_model?: string;
  arch?: string;
  targets: number[];
  layers?: Record<string, string>;
  layers_tf?: Record<string, string>;
  arrays: Record<string, ArrayEntry>;
  checks?: Record<string, unknown> & {
    extra_methods?: Record<string, unknown> & { pgc_layer?: string };
  };
}

/** A fixture array's computation. */
interface Recipe {
  /** The explain request (methods' maps) or, for `signed`, the backward rule to use. */
  req: ExplainRequest;
  resize: "input" | "none";
  normalize: "minmax" | "none";
  /** Session flavour: PyTorch's -inf pool padding (default) or the exported zero padding. */
  poolPadding: "pytorch" | "zeros";
  /** Compare up to a per-image sign (EigenCAM's SVD sign is arbitrary). */
  signFree?: boolean;
  /**
   * For a sign-free method's normalised output: the raw array whose per-image sign decides
   * which images are comparable (only those where our sign agrees with the reference's).
   */
  signFrom?: { array: string; req: ExplainRequest };
  /** A signed 3-channel input pseudo-gradient `[N, H, W, C]` under this rule (or none). */
  signed?: { rule?: BackwardRule };
  /** Tolerance family: arrays of one family share the float32-vs-float64 gaps. */
  family: string;
}

/** Why an array is not computed. */
class Skip {
  constructor(readonly reason: string) {}
}

const CAM_FAMILY: Record<string, string> = {
  gradcampp: "grad-cam++",
  xgradcam: "xgrad-cam",
  layercam: "layer-cam",
  hirescam: "hires-cam",
  eigencam: "eigen-cam",
  scorecam: "score-cam",
  gradcamelementwise: "grad-cam-elementwise",
};

const INPUT_METHODS: Record<string, { method: string; rule?: BackwardRule }> = {
  gradient: { method: "gradient" },
  guided_backprop: { method: "guided-backprop", rule: guidedReluRule },
  deconvnet: { method: "deconvnet", rule: deconvReluRule },
};

interface ArchNode {
  name?: string | null;
  tf_name: string;
  pytorch_output_of?: string | string[] | null;
}

/**
 * PyTorch module name -> tfjs layer name, from the role blocks and the arch node table. A
 * name claimed by two different tfjs layers maps to `undefined` (ambiguous).
 */
export function layerNameMap(
  layers: Record<string, string> | undefined,
  layersTf: Record<string, string> | undefined,
  archNodes: readonly ArchNode[] = [],
): Map<string, string | undefined> {
  const map = new Map<string, string | undefined>();
  const add = (torch: string | null | undefined, tfName: string): void => {
    if (!torch) return;
    if (!map.has(torch)) map.set(torch, tfName);
    else if (map.get(torch) !== tfName) map.set(torch, undefined);
  };
  for (const [role, torch] of Object.entries(layers ?? {})) {
    const tfName = layersTf?.[role];
    if (tfName) add(torch, tfName);
  }
  for (const n of archNodes) {
    const outs = n.pytorch_output_of;
    // A node claims its module's name (a module called twice, like a block's ReLU, thus
    // becomes ambiguous) and the modules whose output it is.
    const claims = [n.name, ...(outs === undefined || outs === null ? [] : [outs].flat())];
    for (const c of claims) add(c, n.tf_name);
  }
  return map;
}

/** Everything the recipes need to know about one model of the fixture set. */
interface Context {
  entry: ModelEntry;
  /** Role -> tfjs layer name. */
  roles: Record<string, string>;
  /** PyTorch name -> tfjs name (undefined: ambiguous). */
  names: Map<string, string | undefined>;
}

function tfLayer(ctx: Context, torchName: string, what: string): string {
  if (!ctx.names.has(torchName)) {
    throw new Skip(`${what} '${torchName}' maps to no tfjs layer (not in layers/layers_tf/arch)`);
  }
  const tfName = ctx.names.get(torchName);
  if (tfName === undefined) {
    throw new Skip(`${what} '${torchName}' maps to several tfjs layers (ambiguous)`);
  }
  return tfName;
}

function role(ctx: Context, name: string): string {
  const r = ctx.roles[name];
  if (!r) throw new Skip(`the fixture set names no '${name}' in layers_tf / layers`);
  return r;
}

/** A family name: method (+ extrapolator) and output processing, e.g. `grad-cam raw`. */
const familyOf = (req: ExplainRequest, resize: string, normalize: string): string => {
  const what = req.extrapolator ? `${req.method} + ${req.extrapolator}` : `${req.method}`;
  const how = resize === "input" ? "input-size" : "native";
  return `${what}, ${how}, ${normalize === "minmax" ? "min-max" : "raw"}`;
};

/** The recipe for an array name, or a {@linkcode Skip} (thrown) saying why there is none. */
function recipeFor(name: string, ctx: Context): Recipe {
  const base = name.replace(/_f64ref$/, "");
  const recipe = (
    req: ExplainRequest,
    resize: "input" | "none" = "none",
    normalize: "minmax" | "none" = "none",
    extra: Partial<Recipe> = {},
  ): Recipe => ({
    req,
    resize,
    normalize,
    poolPadding: "pytorch",
    family: familyOf(req, resize, normalize),
    ...extra,
  });
  const gradcam = (which: "conv" | "relu", inplace: string, raw = false): ExplainRequest => {
    const conv = role(ctx, "gradcam_layer");
    const relu = ctx.roles.gradcam_relu_layer ?? conv;
    // The in-place-ReLU emulation only matters where the conv layer is not already the
    // ReLU's output (on a ResNet both roles name the same post-ReLU tensor).
    const atConv = which === "conv" && conv !== relu;
    return {
      method: "grad-cam",
      layer: which === "conv" ? conv : relu,
      methodOptions: { inplaceRelu: atConv ? inplace : "none", raw },
    };
  };
  const saliency = (): string => role(ctx, "ceb_saliency_layer");
  const eb = (plainAdd: boolean): ExplainRequest => ({
    method: "excitation-backprop",
    layer: saliency(),
    methodOptions: { plainAdd },
  });
  const ceb = (inputGrad: boolean, plainAdd = false): ExplainRequest => {
    const layer = saliency();
    const contrast = ctx.roles.ceb_contrast_layer ?? layer;
    // TorchRay on torch < 2 loses the contrast when the input requires grad AND the saliency
    // layer is the contrast layer (README, "Pitfall"); otherwise the contrast is applied.
    const drop = inputGrad && contrast === layer;
    return {
      method: "contrastive-excitation-backprop",
      layer,
      methodOptions: {
        contrastLayer: contrast,
        classifier: role(ctx, "ceb_classifier_layer"),
        dropContrast: drop,
        plainAdd,
      },
    };
  };
  let g: RegExpMatchArray | null;
  if ((g = base.match(/^gradcam_torchray_(conv|relu)$/))) {
    return recipe(gradcam(g[1] as "conv" | "relu", "torchray"));
  }
  if (base === "seed_flow_gradcam") return recipe(gradcam("conv", "torchray"));
  if ((g = base.match(/^gradcam_pgc_(conv|relu)_(raw|native01|output)$/))) {
    const req = gradcam(g[1] as "conv" | "relu", "pgc", g[2] === "raw");
    if (g[2] === "raw") return recipe(req);
    if (g[2] === "native01") return recipe(req, "none", "minmax");
    return recipe(req, "input", "minmax");
  }
  if ((g = base.match(/^eb_torchray(_plainadd)?$/))) return recipe(eb(g[1] !== undefined));
  if ((g = base.match(/^ceb_torchray(_plainadd)?$/))) {
    return recipe(ceb(false, g[1] !== undefined));
  }
  if (base === "ceb_torchray_inputgrad" || base === "seed_flow_ceb") return recipe(ceb(true));
  if (base === "seed_flow_gradual_ceb") {
    throw new Skip(
      "the paper's script left the gradual hooks on during c-EB's two forward passes, so the " +
        "pyramid ran three times (checks.seed_flow_ceb_num_excitations): an accident of that " +
        "script, not a method",
    );
  }
  g = base.match(
    /^gradual_(gradcam_torchray_conv|gradcam_torchray_relu|ceb_torchray)_(single|batch)$/,
  );
  if (g || base === "seed_flow_gradual_gradcam") {
    const src = g ? g[1] : "gradcam_torchray_conv";
    const stats = g ? g[2] : "batch";
    const req = src === "ceb_torchray"
      ? ceb(false)
      : gradcam(src.endsWith("relu") ? "relu" : "conv", "torchray");
    return recipe(
      {
        ...req,
        extrapolator: "gradual",
        extrapolatorOptions: { statistics: stats === "batch" ? "batch" : "image" },
      },
      "input",
      "none",
    );
  }
  if ((g = base.match(/^([a-z]+)_pgc_(raw|output)$/)) && g[1] in CAM_FAMILY) {
    const pgcLayer = ctx.entry.checks?.extra_methods?.pgc_layer;
    const layer = pgcLayer
      ? tfLayer(ctx, pgcLayer, "checks.extra_methods.pgc_layer")
      : role(ctx, "gradcam_relu_layer");
    const req = { method: CAM_FAMILY[g[1]], layer, methodOptions: { raw: g[2] === "raw" } };
    if (g[2] === "raw") return recipe(req, "none", "none", { signFree: g[1] === "eigencam" });
    const out = recipe(req, "input", "minmax");
    if (g[1] !== "eigencam") return out;
    return {
      ...out,
      signFrom: { array: `${g[1]}_pgc_raw`, req: { ...req, methodOptions: { raw: true } } },
    };
  }
  g = base.match(/^(gradient|guided_backprop|deconvnet)_torchray(_zeropadpool)?(_signed)?$/);
  if (g) {
    const m = INPUT_METHODS[g[1]];
    const extra: Partial<Recipe> = { poolPadding: g[2] ? "zeros" : "pytorch" };
    const req = { method: m.method, methodOptions: { reduce: "max-abs" } };
    if (!g[3]) return recipe(req, "none", "none", extra);
    return recipe(req, "none", "none", {
      ...extra,
      signed: { rule: m.rule },
      family: `${m.method}, signed gradient`,
    });
  }
  throw new Skip("no recipe for this array name in the fixture catalogue");
}

/** Float32-vs-float64 gaps recorded in `checks`, as (array name, relative gap) pairs. */
function recordedGaps(entry: ModelEntry): [string, number][] {
  const out: [string, number][] = [];
  const rel = (v: unknown): number | undefined => {
    const r = (v as Gap | undefined)?.max_abs_over_max_ref;
    return typeof r === "number" ? r : undefined;
  };
  for (const [k, v] of Object.entries(entry.checks ?? {})) {
    const m = k.match(/^f32_vs_f64_(.+)$/);
    const r = rel(v);
    if (m && r !== undefined) out.push([m[1], r]);
  }
  for (const [k, v] of Object.entries(entry.checks?.extra_methods ?? {})) {
    if (typeof v !== "object" || v === null) continue;
    const rec = v as Record<string, unknown>;
    const raw = rel(rec.f32_vs_f64_raw);
    if (raw !== undefined) out.push([`${k}_raw`, raw]);
    if (typeof rec.f32_vs_f64_output_max_abs === "number") {
      out.push([`${k}_output`, rec.f32_vs_f64_output_max_abs]);
    }
    const plain = rel(rec.f32_vs_f64);
    if (plain !== undefined) out.push([k, plain]);
  }
  return out;
}

/** Tolerance of a family: 10x its largest recorded gap, rounded up to a power of 10, >= 1e-4. */
export function toleranceFromGap(gap: number | undefined): number {
  if (gap === undefined || !(gap > 0)) return 1e-4;
  const t = 10 ** Math.ceil(Math.log10(10 * gap) - 1e-9);
  return Math.max(1e-4, t);
}

function readArray(dir: URL, e: ArrayEntry): Float32Array {
  const bytes = Deno.readFileSync(new URL(e.file, dir));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function compare(
  got: Float32Array,
  ref: Float32Array,
  n: number,
  signFree: boolean,
  images?: readonly number[],
): number {
  if (got.length !== ref.length) return Infinity;
  let maxRef = 0;
  for (const v of ref) maxRef = Math.max(maxRef, Math.abs(v));
  const per = ref.length / n;
  let worst = 0;
  for (const b of images ?? Array.from({ length: n }, (_, i) => i)) {
    const signs = signFree ? [1, -1] : [1];
    let best = Infinity;
    for (const s of signs) {
      let m = 0;
      for (let i = b * per; i < (b + 1) * per; i++) {
        const d = Math.abs(s * got[i] - ref[i]);
        m = d > m || Number.isNaN(d) ? (Number.isNaN(d) ? Infinity : d) : m;
      }
      best = Math.min(best, m);
    }
    worst = Math.max(worst, best);
  }
  return maxRef > 0 ? worst / maxRef : worst;
}

/** Runs one request and concatenates the per-image maps. */
async function computeArray(
  session: ModelSession,
  x: Tensor4D,
  req: ExplainRequest,
  opts: ExplainOptions,
): Promise<Float32Array> {
  const [res] = await explainMany(session, x, [req], opts);
  const got = new Float32Array(res.reduce((a, e) => a + e.map.length, 0));
  let k = 0;
  for (const e of res) {
    got.set(e.map, k);
    k += e.map.length;
  }
  return got;
}

/** The signed input pseudo-gradient `[N, H, W, C]` of the targets under `rule`. */
function signedGradient(
  session: ModelSession,
  x: Tensor4D,
  targets: readonly number[],
  rule: BackwardRule | undefined,
): Float32Array {
  const input = session.graph.inputName;
  const pass = session.forward(x, { gradientsFrom: [input] });
  const seed = oneHotSeed(targets, pass.scores.shape[1]);
  try {
    const [g] = pass.backward(seed, { wrt: [input], rule });
    const out = g.dataSync() as Float32Array;
    g.dispose();
    return out;
  } finally {
    seed.dispose();
    pass.dispose();
  }
}

/** Images whose map has the same orientation as the reference (positive dot product). */
function sameSignImages(got: Float32Array, ref: Float32Array, n: number): number[] {
  const per = ref.length / n;
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    let dot = 0;
    for (let i = b * per; i < (b + 1) * per; i++) dot += got[i] * ref[i];
    if (dot > 0) out.push(b);
  }
  return out;
}

function checkRegistered(req: ExplainRequest): void {
  try {
    registry.method(String(req.method));
  } catch {
    throw new Skip(`method '${req.method}' is not registered`);
  }
  if (!req.extrapolator) return;
  try {
    registry.extrapolator(String(req.extrapolator));
  } catch {
    throw new Skip(`extrapolator '${req.extrapolator}' is not registered`);
  }
}

const INPUTS = new Set(["logits", "model_inputs", "input_images"]);

/** Runs every array of one model entry. */
async function runModel(
  url: URL,
  modelName: string,
  entry: ModelEntry,
  report: ConformanceReport,
): Promise<void> {
  const out: Record<string, ArrayResult> = {};
  const skipped: Record<string, string> = {};
  const errors: Record<string, string> = {};
  report.models[modelName] = out;
  report.skipped[modelName] = skipped;
  report.errors[modelName] = errors;
  const arch = entry.arch
    ? JSON.parse(await Deno.readTextFile(new URL(entry.arch, url))) as Arch
    : undefined;
  const model: LayersModel = entry.tfjs_model
    ? await loadLayersModel(new URL(entry.tfjs_model, url))
    : buildArchModel(arch!);
  const ctx: Context = {
    entry,
    roles: { ...entry.layers_tf },
    names: layerNameMap(entry.layers, entry.layers_tf, (arch?.layers ?? []) as ArchNode[]),
  };
  for (const [r, torch] of Object.entries(entry.layers ?? {})) {
    if (ctx.roles[r] === undefined && ctx.names.get(torch)) ctx.roles[r] = ctx.names.get(torch)!;
  }
  // Fixture sets come from PyTorch: its max-pool padding, unless an array says otherwise.
  const sessions = {
    pytorch: new ModelSession(model, { poolPadding: "pytorch" }),
    zeros: new ModelSession(model),
  };
  const inputEntry = entry.arrays.model_inputs;
  const x = tf.tensor4d(
    readArray(url, inputEntry),
    inputEntry.shape as [number, number, number, number],
  );
  const n = x.shape[0];
  // Recipes first: the families' tolerances come from the gaps of every array in the set.
  const recipes = new Map<string, Recipe | Skip>();
  const recipeOf = (name: string): Recipe | Skip => {
    if (!recipes.has(name)) {
      try {
        recipes.set(name, recipeFor(name, ctx));
      } catch (e) {
        if (!(e instanceof Skip)) throw e;
        recipes.set(name, e);
      }
    }
    return recipes.get(name)!;
  };
  const familyGap = new Map<string, number>();
  for (const [array, gap] of recordedGaps(entry)) {
    const r = recipeOf(array);
    if (r instanceof Skip) continue;
    familyGap.set(r.family, Math.max(familyGap.get(r.family) ?? 0, gap));
  }
  try {
    if (entry.arrays.logits) {
      const y = sessions.pytorch.predict(x);
      const got = y.dataSync() as Float32Array;
      y.dispose();
      const r = compare(got, readArray(url, entry.arrays.logits), n, false);
      const tol = entry.arrays.logits.tolerance ?? 1e-4;
      out.logits = { max_abs_over_max_ref: r, tolerance: tol, pass: r <= tol };
    }
    for (const [name, arr] of Object.entries(entry.arrays)) {
      if (INPUTS.has(name)) continue;
      const recipe = recipeOf(name);
      try {
        if (recipe instanceof Skip) throw recipe;
        checkRegistered(recipe.req);
        const session = sessions[recipe.poolPadding];
        const opts: ExplainOptions = {
          targets: entry.targets,
          resize: recipe.resize,
          normalize: recipe.normalize,
        };
        const got = recipe.signed
          ? signedGradient(session, x, entry.targets, recipe.signed.rule)
          : await computeArray(session, x, recipe.req, opts);
        let images: number[] | undefined;
        if (recipe.signFrom) {
          const rawEntry = entry.arrays[recipe.signFrom.array];
          if (!rawEntry) throw new Skip(`needs '${recipe.signFrom.array}' for the SVD sign`);
          const raw = await computeArray(session, x, recipe.signFrom.req, {
            ...opts,
            resize: "none",
            normalize: "none",
          });
          images = sameSignImages(raw, readArray(url, rawEntry), n);
          if (images.length === 0) {
            throw new Skip("the SVD sign differs from the reference's on every image");
          }
        }
        const ratio = compare(got, readArray(url, arr), n, recipe.signFree ?? false, images);
        const tol = arr.tolerance ?? toleranceFromGap(familyGap.get(recipe.family));
        out[name] = { max_abs_over_max_ref: ratio, tolerance: tol, pass: ratio <= tol };
      } catch (e) {
        if (e instanceof Skip) {
          out[name] = "skipped";
          skipped[name] = e.reason;
        } else {
          const msg = e instanceof Error ? e.message : String(e);
          out[name] = { max_abs_over_max_ref: Infinity, tolerance: 0, pass: false };
          errors[name] = msg;
        }
      }
    }
  } finally {
    x.dispose();
    model.dispose();
  }
  report.summary[modelName] = summarise(out, skipped, errors, recipes);
}

function summarise(
  out: Record<string, ArrayResult>,
  skipped: Record<string, string>,
  errors: Record<string, string>,
  recipes: Map<string, Recipe | Skip>,
): ModelSummary {
  const s: ModelSummary = {
    arrays: Object.keys(out).length,
    ran: 0,
    passed: 0,
    skipped: Object.keys(skipped).length,
    errors: Object.keys(errors).length,
    largest: {},
  };
  for (const [name, r] of Object.entries(out)) {
    if (r === "skipped") continue;
    s.ran++;
    if (r.pass) s.passed++;
    const rec = recipes.get(name);
    const family = name === "logits" ? "logits" : rec instanceof Skip || !rec ? name : rec.family;
    const cur = s.largest[family];
    if (!cur || r.max_abs_over_max_ref > cur.max_abs_over_max_ref) {
      s.largest[family] = {
        array: name,
        max_abs_over_max_ref: r.max_abs_over_max_ref,
        tolerance: r.tolerance,
      };
    }
  }
  return s;
}

/** Runs every array of a fixture set. */
export async function runConformance(fixturesPath: string | URL): Promise<ConformanceReport> {
  const url = fixturesPath instanceof URL
    ? fixturesPath
    : new URL(fixturesPath, `file://${Deno.cwd()}/`);
  const index = JSON.parse(await Deno.readTextFile(url));
  const report: ConformanceReport = { models: {}, skipped: {}, errors: {}, summary: {} };
  for (const [modelName, entry] of Object.entries(index.models as Record<string, ModelEntry>)) {
    await runModel(url, modelName, entry, report);
  }
  return report;
}

/** Whether every non-skipped array passed (an array that raised counts as failed). */
export function allPassed(report: ConformanceReport): boolean {
  return Object.values(report.models).every((arrays) =>
    Object.values(arrays).every((r) => r === "skipped" || r.pass)
  );
}

if (import.meta.main) {
  const path = Deno.args[0];
  if (!path) {
    console.error("usage: deno task conformance <path/to/fixtures.json>");
    Deno.exit(2);
  }
  const { initBackend } = await import("../backend/mod.ts");
  await initBackend({
    backend: (Deno.env.get("GRADUAL_BACKEND") as "wasm" | "cpu") ?? "wasm",
    threads: 1,
  });
  try {
    const report = await runConformance(path);
    for (const [m, arrays] of Object.entries(report.skipped)) {
      for (const [a, why] of Object.entries(arrays)) console.error(`skipped ${m}/${a}: ${why}`);
    }
    for (const [m, arrays] of Object.entries(report.errors)) {
      for (const [a, why] of Object.entries(arrays)) console.error(`error ${m}/${a}: ${why}`);
    }
    console.log(JSON.stringify(report, null, 2));
    Deno.exit(allPassed(report) ? 0 : 1);
  } catch (e) {
    console.error(`conformance: ${path}: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
