/**
 * EigenCAM (Muhammad & Yeasin 2020), as pytorch-grad-cam computes it: no gradient, the
 * target is ignored. Per image, M = the layer's activations as an `[h*w, C]` matrix minus
 * its column means; the map is `M v1` (v1: the first right singular vector of M) reshaped
 * to `[h, w]`, then ReLU.
 *
 * The SVD is the toolkit's own: v1 is the dominant eigenvector of the Gram matrix of M
 * (`M^T M`, or `M M^T` mapped back when h*w < C), found by power iteration in float64 after
 * a few squarings of the Gram matrix. Nothing here runs on the tfjs backend except reading
 * the activations.
 *
 * **Sign convention.** A singular vector is only defined up to sign. pytorch-grad-cam
 * keeps whatever LAPACK's divide-and-conquer / QR-iteration SVD returns, which depends on
 * LAPACK's internal Householder and rotation sequence and cannot be predicted from M
 * alone, so this implementation fixes the sign deterministically instead (option `sign`):
 * - `"svd-flip"` (default): the largest-magnitude component of v1 is positive (the
 *   convention of scikit-learn's `svd_flip`); on the vgg_tiny fixtures it agrees with
 *   LAPACK on 3 of 4 images;
 * - `"positive-mass"`: flip where |min| > |max| of the map (the Seg-Eigen-CAM rule);
 * - `"positive-loading"`: the components of v1 sum to >= 0 (the map grows with the
 *   overall activation along the principal direction).
 * Compare with pytorch-grad-cam up to a per-image sign (for the ReLU'd output, only where
 * the signs agree).
 *
 * Options: `raw` (no final ReLU), `inplaceRelu` as for Grad-CAM, `sign` as above.
 *
 * @example Eigen-CAM on the built-in shapes model
 * ```ts
 * import assert from "node:assert/strict";
 * import { explain, initBackend, loadLayersModel, pointingGame } from "../mod.ts";
 * import { tf } from "../core/tf.ts";
 * import { BUILTIN_MODELS } from "../models/builtin.ts";
 * import { generateScene } from "../models/scenes.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl);
 * const scene = generateScene(3000003); // a square among other shapes, with its mask
 * const x = tf.tensor4d(scene.image, [1, 128, 128, 3]);
 * const [e] = await explain(model, x, { method: "eigen-cam" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod } from "./cam_base.ts";

/** Sign conventions of {@linkcode eigenCam}'s projection (see the module documentation). */
export type EigenSign = "svd-flip" | "positive-mass" | "positive-loading";

const SIGNS: readonly EigenSign[] = ["svd-flip", "positive-mass", "positive-loading"];

/** Dominant eigenvector (unit norm) of a symmetric PSD `n x n` matrix (row-major, float64). */
export function dominantEigenvector(gram: Float64Array, n: number): Float64Array {
  // Squarings sharpen the eigengap: B^(2^k) has eigenvalue ratios (l2/l1)^(2^k).
  let b = Float64Array.from(gram);
  const scaleDown = (m: Float64Array): void => {
    let peak = 0;
    for (const v of m) peak = Math.max(peak, Math.abs(v));
    if (peak > 0) { for (let i = 0; i < m.length; i++) m[i] /= peak; }
  };
  scaleDown(b);
  for (let s = 0; s < 4; s++) {
    const c = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const bik = b[i * n + k];
        if (bik === 0) continue;
        for (let j = 0; j < n; j++) c[i * n + j] += bik * b[k * n + j];
      }
    }
    scaleDown(c);
    b = c;
  }
  // Start from the largest-norm column of the original Gram matrix (never orthogonal to
  // the dominant eigenvector unless the matrix is zero).
  let v = new Float64Array(n);
  let best = -1;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += gram[i * n + j] * gram[i * n + j];
    if (s > best) {
      best = s;
      for (let i = 0; i < n; i++) v[i] = gram[i * n + j];
    }
  }
  const normalise = (x: Float64Array): number => {
    let s = 0;
    for (const e of x) s += e * e;
    const norm = Math.sqrt(s);
    if (norm > 0) { for (let i = 0; i < x.length; i++) x[i] /= norm; }
    return norm;
  };
  if (normalise(v) === 0) {
    v.fill(0);
    v[0] = 1;
    return v;
  }
  for (let it = 0; it < 1000; it++) {
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += b[i * n + j] * v[j];
      w[i] = s;
    }
    if (normalise(w) === 0) break;
    let diff = 0;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(w[i] - v[i]));
    v = w;
    if (diff < 1e-14) break;
  }
  return v;
}

/** The first principal direction of one image's activations and the projection on it. */
export interface PrincipalComponent {
  /** v1, the first right singular vector of the centred matrix (unit norm, length C). */
  v: Float64Array;
  /** `M v1` (length h*w). */
  projection: Float64Array;
}

/**
 * First principal component of one image's activations `[p, C]` (row-major values):
 * centres the columns, finds v1 (float64) and projects on it. The sign is the
 * eigen-solver's; apply {@linkcode applySignConvention} to fix it.
 */
export function firstPrincipalComponent(
  values: ArrayLike<number>,
  p: number,
  c: number,
): PrincipalComponent {
  const m = new Float64Array(p * c);
  for (let j = 0; j < c; j++) {
    let mean = 0;
    for (let i = 0; i < p; i++) mean += values[i * c + j];
    mean /= p;
    for (let i = 0; i < p; i++) m[i * c + j] = values[i * c + j] - mean;
  }
  let v: Float64Array;
  if (c <= p) {
    const gram = new Float64Array(c * c); // M^T M
    for (let i = 0; i < p; i++) {
      for (let a = 0; a < c; a++) {
        const mia = m[i * c + a];
        if (mia === 0) continue;
        for (let b = a; b < c; b++) gram[a * c + b] += mia * m[i * c + b];
      }
    }
    for (let a = 0; a < c; a++) for (let b = 0; b < a; b++) gram[a * c + b] = gram[b * c + a];
    v = dominantEigenvector(gram, c);
  } else {
    const gram = new Float64Array(p * p); // M M^T: its top eigenvector u1 gives v1 ~ M^T u1
    for (let a = 0; a < p; a++) {
      for (let b = a; b < p; b++) {
        let s = 0;
        for (let j = 0; j < c; j++) s += m[a * c + j] * m[b * c + j];
        gram[a * p + b] = s;
        gram[b * p + a] = s;
      }
    }
    const u = dominantEigenvector(gram, p);
    v = new Float64Array(c);
    for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) v[j] += m[i * c + j] * u[i];
    let norm = 0;
    for (const e of v) norm += e * e;
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < c; j++) v[j] /= norm;
  }
  const projection = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += m[i * c + j] * v[j];
    projection[i] = s;
  }
  return { v, projection };
}

/** Fixes the sign of a principal component in place (see the module documentation). */
export function applySignConvention(pc: PrincipalComponent, sign: EigenSign): void {
  let flip: boolean;
  if (sign === "positive-mass") {
    let lo = 0, hi = 0;
    for (const x of pc.projection) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    flip = -lo > hi;
  } else if (sign === "positive-loading") {
    let s = 0;
    for (const x of pc.v) s += x;
    flip = s < 0;
  } else {
    let best = 0;
    for (const x of pc.v) if (Math.abs(x) > Math.abs(best)) best = x;
    flip = best < 0;
  }
  if (!flip) return;
  for (let i = 0; i < pc.v.length; i++) pc.v[i] = -pc.v[i];
  for (let i = 0; i < pc.projection.length; i++) pc.projection[i] = -pc.projection[i];
}

/** The EigenCAM method plugin (`eigen-cam`, alias `eigencam`). */
export const eigenCam: SaliencyMethod = camMethod({
  name: "eigen-cam",
  aliases: ["eigencam"],
  description: "EigenCAM: first principal component of the layer's activations (no gradient)",
  needsGradient: false,
  options: {
    sign: {
      type: "string",
      values: SIGNS,
      default: "svd-flip",
      doc: "sign convention of the principal component (svd-flip: pytorch-grad-cam's)",
    },
  },
  combine: async (a, _g, ctx) => {
    const sign = ctx.options.sign;
    const [n, h, w, c] = a.shape;
    const values = await a.data(); // asynchronous: webgpu has no synchronous read
    const out = new Float32Array(n * h * w);
    for (let b = 0; b < n; b++) {
      const img = values.subarray(b * h * w * c, (b + 1) * h * w * c);
      const pc = firstPrincipalComponent(img, h * w, c);
      applySignConvention(pc, sign);
      out.set(pc.projection, b * h * w);
    }
    return tf.tensor3d(out, [n, h, w]);
  },
});

export default eigenCam;
