/**
 * Full-scale helpers: the paper's VGG16 (exact portable weights, 224x224) and every registered
 * method and extrapolator run on it in one `explainMany` call, so that a speed path (Winograd,
 * threads, cached weights) can be compared with the plain path where it actually applies.
 * Used by `tests/fullscale_test.ts` and `bench/fullscale_diff.ts`.
 *
 * @module
 */
import { type Arch, buildArchModel } from "../conformance/arch_model.ts";
import { explainMany, type ExplainRequest } from "../core/explain.ts";
import type { Registry } from "../core/registry.ts";
import { type LayersModel, type Tensor4D, tf } from "../core/tensor.ts";
import { registry as defaultRegistry } from "../mod.ts";

const ARCH = new URL("./fixtures/models/vgg16/arch.json", import.meta.url);

/** The paper's VGG16 with its exact portable weights (528 MiB; the caller disposes it). */
export async function loadVgg16(): Promise<LayersModel> {
  return buildArchModel(JSON.parse(await Deno.readTextFile(ARCH)) as Arch);
}

/**
 * A deterministic batch of `n` 224x224 "images": a few bright shapes on a flat black
 * background, the second image with mild noise. Flat regions give many small excitation
 * denominators, where an inexact convolution shows first (uniform noise hides it).
 */
export function vggInput(n = 2): Tensor4D {
  const h = 224, w = 224;
  const data = new Float32Array(n * h * w * 3);
  let s = 12345;
  const rnd = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let b = 0; b < n; b++) {
    const cx = 70 + 80 * b, cy = 100 + 30 * b;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const disc = (x - cx) ** 2 + (y - cy) ** 2 < 40 ** 2;
        const bar = x > 150 - 60 * b && x < 170 - 60 * b && y > 20 && y < 200;
        for (let c = 0; c < 3; c++) {
          let v = disc ? (c === b % 3 ? 2 : -1) : bar ? (c === 2 ? 1.5 : 0.5) : 0;
          if (b % 2 === 1) v += 0.2 * (rnd() - 0.5);
          data[((b * h + y) * w + x) * 3 + c] = v;
        }
      }
    }
  }
  return tf.tensor4d(data, [n, h, w, 3]);
}

/**
 * Options that keep the many-pass methods short at full scale without changing which kernels
 * they run: fewer samples / steps, and Score-CAM on a 64-channel layer (64 masked forward
 * passes per image instead of 512).
 */
const CHEAP: Record<string, ExplainRequest> = {
  "score-cam": { layer: "features_1", methodOptions: { batchSize: 8 } },
  "smooth-grad": { methodOptions: { samples: 2 } },
  "integrated-gradients": { methodOptions: { steps: 2 } },
};

/** Base methods every extrapolator refines (the paper's two). */
const EXTRAPOLATED = ["grad-cam", "contrastive-excitation-backprop"];

/** One named request of the full-scale sweep. */
export interface Case {
  /** `method` or `method+extrapolator`. */
  name: string;
  /** What `explainMany` runs. */
  request: ExplainRequest;
}

/**
 * Every method of the registry (with {@link CHEAP} options where it has many passes), and
 * every extrapolator on Grad-CAM and c-EB: new plugins are covered without editing this list.
 */
export function allCases(reg: Registry = defaultRegistry): Case[] {
  const out: Case[] = reg.methods().map((m) => ({
    name: m.name,
    request: { ...CHEAP[m.name], method: m.name },
  }));
  for (const e of reg.extrapolators()) {
    for (const m of EXTRAPOLATED) {
      out.push({ name: `${m}+${e.name}`, request: { method: m, extrapolator: e.name } });
    }
  }
  return out;
}

/**
 * Raw maps (no normalisation, native resolution) of every case, for one batch: one
 * `explainMany` call per case, so that each forward pass records only what its method needs
 * (all methods on one pass would keep every activation at once, and the wasm heap keeps its
 * high-water mark).
 */
export async function runCases(
  model: LayersModel,
  x: Tensor4D,
  cases: readonly Case[],
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const c of cases) {
    const [maps] = await explainMany(model, x, [c.request], {
      normalize: "none",
      resize: "none",
      targets: "top1",
    });
    const all = new Float32Array(maps.reduce((s, e) => s + e.map.length, 0));
    let o = 0;
    for (const e of maps) {
      all.set(e.map, o);
      o += e.map.length;
    }
    out.set(c.name, all);
  }
  return out;
}

/** max |a - b| / max |a| (NaN-safe: a non-finite value anywhere gives Infinity). */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return m === 0 ? (d === 0 ? 0 : Infinity) : d / m;
}
