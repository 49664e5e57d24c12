/**
 * The conformance runner: `deno task conformance path/to/fixtures.json`.
 *
 * Reads a fixture set in the format of the reference fixtures (`fixtures.json` with one
 * entry per model: `tfjs_model` or `arch`, `layers_tf` naming layers by role, `targets`,
 * `arrays`), runs every array the registered plugins support, and prints one JSON object:
 * `{"models": {"<model>": {"<array>": {"max_abs_over_max_ref", "tolerance", "pass"} |
 * "skipped"}}}`. Exit status 0 if and only if nothing failed.
 *
 * Layer roles come from the `layers_tf` block (or the PyTorch names of `layers` with `.`
 * replaced by `_`), never from hard-coded names, so other architectures work unchanged.
 *
 * @module
 */
import "../plugins/mod.ts";
import { explainMany, type ExplainOptions, type ExplainRequest } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { registry } from "../core/registry.ts";
import { type LayersModel, type Tensor4D, tf } from "../core/tensor.ts";
import { type Arch, buildArchModel } from "./arch_model.ts";

/** Result for one array. */
export type ArrayResult =
  | { max_abs_over_max_ref: number; tolerance: number; pass: boolean }
  | "skipped";

/** The runner's report. */
export interface ConformanceReport {
  /** Per model, per array. */
  models: Record<string, Record<string, ArrayResult>>;
}

interface ArrayEntry {
  file: string;
  shape: number[];
  tolerance?: number;
}

interface ModelEntry {
  tfjs_model?: string;
  arch?: string;
  targets: number[];
  layers?: Record<string, string>;
  layers_tf?: Record<string, string>;
  arrays: Record<string, ArrayEntry>;
  checks?: { extra_methods?: { pgc_layer?: string } };
}

/** How to compute one fixture array: one explain request plus output options. */
interface Recipe {
  req: ExplainRequest;
  resize: "input" | "none";
  normalize: "minmax" | "none";
  /** Compare up to a per-image sign (EigenCAM's SVD sign is arbitrary). */
  signFree?: boolean;
  /**
   * For a sign-free method's normalised output: the raw array whose per-image sign decides
   * which images are comparable (only those where our sign agrees with the reference's).
   */
  signFrom?: { array: string; req: ExplainRequest };
  /** Which reduction of a 3-channel input gradient the map is ("signed" keeps NHWC). */
  kind: "gradual" | "map";
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

const INPUT_METHODS: Record<string, string> = {
  gradient: "gradient",
  guided_backprop: "guided-backprop",
  deconvnet: "deconvnet",
};

const tfName = (pytorchName: string): string => pytorchName.replaceAll(".", "_");

/** The recipe for an array name, or undefined when the runner does not support it. */
function recipeFor(name: string, m: ModelEntry): Recipe | undefined {
  const roles: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.layers ?? {})) roles[k] = tfName(v);
  Object.assign(roles, m.layers_tf ?? {});
  const base = name.replace(/_f64ref$/, "");
  const gradcam = (role: "conv" | "relu", inplace: string, raw = false): ExplainRequest => ({
    method: "grad-cam",
    layer: role === "conv" ? roles.gradcam_layer : roles.gradcam_relu_layer ?? roles.gradcam_layer,
    methodOptions: { inplaceRelu: role === "conv" ? inplace : "none", raw },
  });
  const ceb = (drop: boolean): ExplainRequest => ({
    method: "contrastive-excitation-backprop",
    layer: roles.ceb_saliency_layer,
    methodOptions: {
      contrastLayer: roles.ceb_contrast_layer,
      classifier: roles.ceb_classifier_layer,
      dropContrast: drop,
    },
  });
  const map = (
    req: ExplainRequest,
    resize: "input" | "none" = "none",
    normalize: "minmax" | "none" = "none",
  ): Recipe => ({
    req,
    resize,
    normalize,
    kind: "map",
  });
  let g: RegExpMatchArray | null;
  if ((g = base.match(/^gradcam_torchray_(conv|relu)$/))) {
    return map(gradcam(g[1] as "conv" | "relu", "torchray"));
  }
  if (base === "seed_flow_gradcam") return map(gradcam("conv", "torchray"));
  if ((g = base.match(/^gradcam_pgc_(conv|relu)_(raw|native01|output)$/))) {
    const req = gradcam(g[1] as "conv" | "relu", "pgc", g[2] === "raw");
    if (g[2] === "raw") return map(req);
    if (g[2] === "native01") return map(req, "none", "minmax");
    return map(req, "input", "minmax");
  }
  if (base === "eb_torchray") {
    return map({ method: "excitation-backprop", layer: roles.ceb_saliency_layer });
  }
  if (base === "ceb_torchray") return map(ceb(false));
  if (base === "ceb_torchray_inputgrad" || base === "seed_flow_ceb") return map(ceb(true));
  if (
    (g = base.match(/^gradual_(gradcam_torchray_conv|ceb_torchray)_(single|batch)$/)) ||
    base === "seed_flow_gradual_gradcam"
  ) {
    const src = g ? g[1] : "gradcam_torchray_conv";
    const stats = g ? g[2] : "batch";
    const req = src === "ceb_torchray" ? ceb(false) : gradcam("conv", "torchray");
    return {
      req: {
        ...req,
        extrapolator: "gradual",
        extrapolatorOptions: { statistics: stats === "batch" ? "batch" : "image" },
      },
      resize: "input",
      normalize: "none",
      kind: "gradual",
    };
  }
  if ((g = base.match(/^([a-z]+)_pgc_(raw|output)$/)) && g[1] in CAM_FAMILY) {
    const layer = m.checks?.extra_methods?.pgc_layer
      ? tfName(m.checks.extra_methods.pgc_layer)
      : roles.gradcam_relu_layer;
    const req = { method: CAM_FAMILY[g[1]], layer, methodOptions: { raw: g[2] === "raw" } };
    if (g[2] === "raw") return { ...map(req), signFree: g[1] === "eigencam" };
    const out = map(req, "input", "minmax");
    if (g[1] !== "eigencam") return out;
    return {
      ...out,
      signFrom: { array: `${g[1]}_pgc_raw`, req: { ...req, methodOptions: { raw: true } } },
    };
  }
  if ((g = base.match(/^(gradient|guided_backprop|deconvnet)_torchray$/))) {
    return map({ method: INPUT_METHODS[g[1]], methodOptions: { reduce: "max-abs" } });
  }
  return undefined;
}

/** Tolerance relative to the reference max, as the fixtures README suggests. */
function toleranceFor(model: string, name: string, entry: ArrayEntry, residual: boolean): number {
  if (typeof entry.tolerance === "number") return entry.tolerance;
  const gradual = name.startsWith("gradual_");
  const eb = /(^|_)c?eb_/.test(name) || name.startsWith("ceb") || name.startsWith("eb");
  if (/vgg16/.test(model) && (eb || (gradual && name.includes("ceb")))) return 1e-2;
  if (residual && gradual) return 1e-3;
  return 1e-4;
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
  let maxRef = 0;
  for (const v of ref) maxRef = Math.max(maxRef, Math.abs(v));
  const per = ref.length / n;
  let worst = 0;
  for (const b of images ?? Array.from({ length: n }, (_, i) => i)) {
    const signs = signFree ? [1, -1] : [1];
    let best = Infinity;
    for (const s of signs) {
      let m = 0;
      for (let i = b * per; i < (b + 1) * per; i++) m = Math.max(m, Math.abs(s * got[i] - ref[i]));
      best = Math.min(best, m);
    }
    worst = Math.max(worst, best);
  }
  if (got.length !== ref.length) return Infinity;
  return maxRef > 0 ? worst / maxRef : worst;
}

/** Runs one request and concatenates the per-image maps. */
async function computeArray(
  model: LayersModel,
  x: Tensor4D,
  req: ExplainRequest,
  opts: ExplainOptions,
): Promise<Float32Array> {
  const [res] = await explainMany(model, x, [req], opts);
  const got = new Float32Array(res.reduce((a, e) => a + e.map.length, 0));
  let k = 0;
  for (const e of res) {
    got.set(e.map, k);
    k += e.map.length;
  }
  return got;
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

function supported(req: ExplainRequest): boolean {
  try {
    registry.method(String(req.method));
    if (req.extrapolator) registry.extrapolator(String(req.extrapolator));
    return true;
  } catch {
    return false;
  }
}

/** Runs every supported array of a fixture set. */
export async function runConformance(fixturesPath: string | URL): Promise<ConformanceReport> {
  const url = fixturesPath instanceof URL
    ? fixturesPath
    : new URL(fixturesPath, `file://${Deno.cwd()}/`);
  const index = JSON.parse(await Deno.readTextFile(url));
  const report: ConformanceReport = { models: {} };
  for (const [modelName, entry] of Object.entries(index.models as Record<string, ModelEntry>)) {
    const out: Record<string, ArrayResult> = {};
    report.models[modelName] = out;
    const model = entry.tfjs_model
      ? await loadLayersModel(new URL(entry.tfjs_model, url))
      : buildArchModel(JSON.parse(await Deno.readTextFile(new URL(entry.arch!, url))) as Arch);
    const inputEntry = entry.arrays.model_inputs;
    const x = tf.tensor4d(
      readArray(url, inputEntry),
      inputEntry.shape as [number, number, number, number],
    );
    const residual = model.layers.some((l) => l.getClassName() === "Add");
    const n = x.shape[0];
    try {
      if (entry.arrays.logits) {
        const y = model.predict(x) as tf.Tensor;
        const got = y.dataSync() as Float32Array;
        y.dispose();
        const r = compare(got, readArray(url, entry.arrays.logits), n, false);
        const tol = entry.arrays.logits.tolerance ?? 1e-4;
        out.logits = { max_abs_over_max_ref: r, tolerance: tol, pass: r <= tol };
      }
      for (const [name, arr] of Object.entries(entry.arrays)) {
        if (name === "logits" || name === "model_inputs" || name === "input_images") continue;
        const recipe = recipeFor(name, entry);
        if (!recipe || !supported(recipe.req) || name.endsWith("_signed")) {
          out[name] = "skipped";
          continue;
        }
        const opts: ExplainOptions = {
          targets: entry.targets,
          resize: recipe.resize,
          normalize: recipe.normalize,
        };
        const got = await computeArray(model, x, recipe.req, opts);
        let images: number[] | undefined;
        if (recipe.signFrom) {
          const rawEntry = entry.arrays[recipe.signFrom.array];
          const raw = await computeArray(model, x, recipe.signFrom.req, {
            ...opts,
            resize: "none",
            normalize: "none",
          });
          const refRaw = readArray(url, rawEntry);
          images = sameSignImages(raw, refRaw, n);
          if (images.length === 0) {
            out[name] = "skipped";
            continue;
          }
        }
        const ratio = compare(got, readArray(url, arr), n, recipe.signFree ?? false, images);
        const tol = toleranceFor(modelName, name, arr, residual);
        out[name] = { max_abs_over_max_ref: ratio, tolerance: tol, pass: ratio <= tol };
      }
    } finally {
      x.dispose();
      model.dispose();
    }
  }
  return report;
}

/** Whether every non-skipped array passed. */
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
  const { initBackend } = await import("../core/backend.ts");
  await initBackend({
    backend: (Deno.env.get("GRADUAL_BACKEND") as "wasm" | "cpu") ?? "wasm",
    threads: 1,
  });
  try {
    const report = await runConformance(path);
    console.log(JSON.stringify(report, null, 2));
    Deno.exit(allPassed(report) ? 0 : 1);
  } catch (e) {
    console.error(`conformance: ${path}: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
