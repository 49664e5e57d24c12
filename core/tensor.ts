/**
 * The one place the toolkit imports TensorFlow.js from, plus the small tensor helpers the core
 * and plugins share: half-pixel bilinear resize, per-image min-max, channel sums and a
 * first-maximum max-pool gradient that is correct on every backend, and a `conv2d` that
 * takes a Winograd path on wasm.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { wasmKernelsRegistered } from "./_wasm_kernels.ts";
import { WINOGRAD_POINTS, winogradApplies, winogradConv2d, winogradKernel } from "./_winograd.ts";

export { tf };

/** A tfjs tensor (re-exported type so plugins need not import tfjs themselves). */
export type Tensor = tf.Tensor;
/** A 1-D tfjs tensor, e.g. one score per image `[N]`. */
export type Tensor1D = tf.Tensor1D;
/** A 2-D tfjs tensor, e.g. class scores `[N, classes]`. */
export type Tensor2D = tf.Tensor2D;
/** A 3-D tfjs tensor, e.g. a batch of maps `[N, h, w]`. */
export type Tensor3D = tf.Tensor3D;
/** A 4-D tfjs tensor, e.g. an image batch or activations `[N, H, W, C]`. */
export type Tensor4D = tf.Tensor4D;
/** A tfjs LayersModel (Keras-style Sequential or functional model). */
export type LayersModel = tf.LayersModel;
/** A tfjs GraphModel (converted TensorFlow SavedModel or frozen graph). */
export type GraphModel = tf.GraphModel;

/**
 * Bilinear resize of a batch of maps `[N, h, w]` to `[N, height, width]`.
 *
 * Half-pixel centres with edge clamping (PyTorch `F.interpolate(..., align_corners=False)`,
 * OpenCV `INTER_LINEAR`), or align-corners sampling when `alignCorners` is true. No
 * antialiasing: shrinking picks the neighbouring pixels only, as PyTorch does.
 *
 * @example
 * ```ts
 * import { resizeMaps, tf } from "./tensor.ts";
 * const up = resizeMaps(tf.ones([1, 2, 2]) as Tensor3D, 4, 4); // [1, 4, 4]
 * ```
 */
export function resizeMaps(
  maps: Tensor3D,
  height: number,
  width: number,
  alignCorners = false,
): Tensor3D {
  return tf.tidy(() => {
    const [n, h, w] = maps.shape;
    if (h === height && w === width) return maps.clone();
    const four = maps.reshape([n, h, w, 1]) as Tensor4D;
    const out = tf.image.resizeBilinear(four, [height, width], alignCorners, !alignCorners);
    return out.reshape([n, height, width]) as Tensor3D;
  });
}

/**
 * Per-image min-max normalisation of `[N, h, w]` maps to [0, 1]:
 * `(m - min) / (max - min + eps)`, the formula pytorch-grad-cam uses (eps 1e-7).
 */
export function minMaxPerImage(maps: Tensor3D, eps = 1e-7): Tensor3D {
  return tf.tidy(() => {
    const lo = maps.min([1, 2], true);
    const shifted = maps.sub(lo);
    const hi = shifted.max([1, 2], true);
    return shifted.div(hi.add(eps)) as Tensor3D;
  });
}

/** Sum over the channel axis of an NHWC tensor: `[N, H, W, C]` to `[N, H, W]`. */
export function channelSum(x: Tensor): Tensor3D {
  return tf.tidy(() => x.sum(-1) as Tensor3D);
}

/** Ensures a tensor is 4-D NHWC; throws a clear error otherwise. */
export function as4d(x: Tensor, what: string): Tensor4D {
  if (x.rank !== 4) {
    throw new Error(`${what} must be a 4-D [N, H, W, C] tensor, got shape [${x.shape}]`);
  }
  return x as Tensor4D;
}

/** Explicit padding of a 2-D window op in TF's convention (`same` pads bottom/right first). */
export function windowPads(
  inSize: number,
  window: number,
  stride: number,
  dilation: number,
  padding: "same" | "valid" | number,
): [number, number] {
  if (typeof padding === "number") return [padding, padding];
  if (padding === "valid") return [0, 0];
  const eff = (window - 1) * dilation + 1;
  const out = Math.ceil(inSize / stride);
  const total = Math.max(0, (out - 1) * stride + eff - inSize);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * Gradient of a 2-D max pool with respect to its input, routing each output's gradient to
 * the FIRST maximum of its window in row-major scan order (PyTorch's and tfjs-cpu's rule).
 * Padding is never selected. Works on every backend (wasm's own `MaxPoolGrad` picks the last
 * maximum on ties): on wasm it runs the corrected `MaxPoolGrad` kernel that `initBackend`
 * registers (one pass over the windows), elsewhere strided slices and one transposed
 * convolution.
 */
export function maxPoolInputGrad(
  x: Tensor4D,
  dy: Tensor4D,
  pool: [number, number],
  strides: [number, number],
  padding: "same" | "valid" | number,
): Tensor4D {
  if (tf.getBackend() === "wasm" && wasmKernelsRegistered()) {
    const attrs = { filterSize: pool, strides, pad: padding };
    // The corrected kernel reads only `input` and `dy`: `output` is a placeholder.
    return tf.engine().runKernel(
      "MaxPoolGrad",
      { dy, input: x, output: dy },
      attrs as unknown as tf.NamedAttrMap,
    ) as Tensor4D;
  }
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const [ph, pw] = pool;
    const [sh, sw] = strides;
    const [pt, pb] = windowPads(h, ph, sh, 1, padding);
    const [pl, pr] = windowPads(w, pw, sw, 1, padding);
    const [, oh, ow] = dy.shape;
    // Pad so that every window lies inside the array; padded cells can never win.
    const needH = (oh - 1) * sh + ph;
    const needW = (ow - 1) * sw + pw;
    const extraB = Math.max(0, needH - (h + pt + pb));
    const extraR = Math.max(0, needW - (w + pl + pr));
    const xp = (pt + pb + pl + pr + extraB + extraR) > 0
      ? tf.pad(x, [[0, 0], [pt, pb + extraB], [pl, pr + extraR], [0, 0]], -Infinity)
      : x;
    const y = tf.maxPool(xp as Tensor4D, pool, strides, "valid");
    let free: Tensor = tf.onesLike(y);
    const parts: Tensor[] = [];
    for (let i = 0; i < ph; i++) {
      for (let j = 0; j < pw; j++) {
        const cand = tf.stridedSlice(
          xp,
          [0, i, j, 0],
          [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c],
          [1, sh, sw, 1],
        );
        const hit = tf.equal(cand, y).cast("float32").mul(free);
        free = free.sub(hit);
        parts.push(hit.mul(dy));
      }
    }
    // [N, oh, ow, C, k] -> [N*C, oh, ow, k]: scatter every window offset back in one go.
    const k = ph * pw;
    const stacked = tf.stack(parts, 4).transpose([0, 3, 1, 2, 4]).reshape([n * c, oh, ow, k]);
    const eye = tf.eye(k).reshape([ph, pw, 1, k]) as Tensor4D;
    const hp = xp.shape[1], wp = xp.shape[2];
    const scattered = tf.conv2dTranspose(
      stacked as Tensor4D,
      eye,
      [n * c, hp, wp, 1],
      [sh, sw],
      "valid",
    );
    const back = scattered.reshape([n, c, hp, wp]).transpose([0, 2, 3, 1]);
    return back.slice([0, pt, pl, 0], [n, h, w, c]) as Tensor4D;
  });
}

interface Derived {
  /** The source's data when the entries were made: `setWeights`/`assign` swap it. */
  data: object;
  entries: Map<string, Tensor>;
}

const derivedCache = new Map<Tensor, Derived>();
/** Weights whose convolutions always run direct (see {@linkcode DerivedWeightOptions.exact}). */
const exactOnly = new WeakSet<Tensor>();

/** Options of {@linkcode derivedWeight}. */
export interface DerivedWeightOptions {
  /**
   * Convolutions ({@linkcode conv2d}, {@linkcode sameConvTranspose}) with this weight, and
   * with its {@linkcode flippedKernel}, always run the direct convolution, in every Winograd
   * mode. For methods that divide by a convolution's output or by per-position sums, such as
   * excitation backprop's `z = W+ x` and `W+ᵀ (g / z)`: Winograd's rounding error is of the
   * order of a layer's LARGEST outputs (1e-5 of them), not of each output, so where an output
   * is small (a small denominator) its relative error is not small.
   */
  exact?: boolean;
}

/** Frees the derived weights of disposed sources, and of sources whose data was replaced. */
function purgeDerived(): void {
  for (const [src, d] of derivedCache) {
    if (src.isDisposed || src.dataId !== d.data) {
      for (const t of d.entries.values()) t.dispose();
      derivedCache.delete(src);
    }
  }
}

/**
 * A tensor derived from a long-lived one (a model weight), computed once per `key` and kept
 * while the source lives: e.g. max(W, 0) or a flipped kernel. Reusing the same derived weight
 * lets the wasm backend keep its packed weights instead of re-packing them on every call.
 * Entries whose source was disposed (model disposed) or given new values (`setWeights`,
 * training) are freed on the next lookup and made anew.
 */
export function derivedWeight(
  source: Tensor,
  key: string,
  make: () => Tensor,
  opts: DerivedWeightOptions = {},
): Tensor {
  purgeDerived();
  return cachedDerived(source, key, make, opts);
}

/** {@linkcode derivedWeight} without the purge (for callers that just purged). */
function cachedDerived(
  source: Tensor,
  key: string,
  make: () => Tensor,
  opts: DerivedWeightOptions = {},
): Tensor {
  let d = derivedCache.get(source);
  if (!d) {
    d = { data: source.dataId, entries: new Map() };
    derivedCache.set(source, d);
  }
  let t = d.entries.get(key);
  if (!t) {
    t = tf.keep(tf.tidy(make));
    d.entries.set(key, t);
    if (opts.exact) exactOnly.add(t);
  }
  return t;
}

/**
 * HWIO kernel flipped in space with in/out swapped: `conv2d` with it is `conv2dTranspose`.
 * Inherits {@linkcode DerivedWeightOptions.exact} from `kernel`.
 */
export function flippedKernel(kernel: Tensor): Tensor4D {
  return derivedWeight(
    kernel,
    "flipped",
    () => tf.reverse(kernel, [0, 1]).transpose([0, 1, 3, 2]),
    { exact: exactOnly.has(kernel) },
  ) as Tensor4D;
}

/**
 * `tf.conv2d` (NHWC) that takes the Winograd F(4x4, 3x3) path on wasm where it pays (3x3,
 * stride 1, `same`, wide channels; see `setWinograd`), 2-2.8x faster on VGG16's deep layers
 * and equal up to float32 rounding. `kernel` must be long-lived (a model weight or a
 * {@linkcode derivedWeight}): its transform is cached with it.
 */
export function conv2d(
  x: Tensor4D,
  kernel: Tensor,
  strides: readonly [number, number] = [1, 1],
  padding: "same" | "valid" = "same",
  dilations: readonly [number, number] = [1, 1],
): Tensor4D {
  purgeDerived(); // before the Winograd budget counts what is cached
  const exact = exactOnly.has(kernel);
  if (!exact && winogradApplies(x, kernel, strides, padding, dilations)) {
    const u = Array.from(
      { length: WINOGRAD_POINTS },
      (_, k) => cachedDerived(kernel, `winograd-${k}`, () => winogradKernel(kernel, k)) as Tensor2D,
    );
    return winogradConv2d(x, u);
  }
  return tf.conv2d(
    x,
    kernel as Tensor4D,
    strides as [number, number],
    padding,
    "NHWC",
    dilations as [number, number],
  );
}

/**
 * `a · bᵀ` for 2-D `a` [m, k] and `b` [n, k], computed as `(b · aᵀ)ᵀ`: tfjs-wasm runs a
 * matMul with a transposed second operand in a scalar loop, the untransposed one in XNNPACK
 * (the input gradient of VGG16's fc1: 44 ms instead of 100-190 ms on one thread). Other
 * backends get the plain `tf.matMul(a, b, false, true)`.
 */
export function matMulTransposeB(a: Tensor2D, b: Tensor2D): Tensor2D {
  if (tf.getBackend() !== "wasm") return tf.matMul(a, b, false, true);
  return tf.tidy(() => tf.matMul(b, a.transpose()).transpose());
}

/**
 * Input gradient of a stride-1 `same` convolution with an odd kernel as a plain convolution
 * with the flipped kernel (identical to `conv2dTranspose`, and a fast XNNPACK conv on wasm).
 * Returns undefined when the convolution is not of that kind.
 */
export function sameConvTranspose(
  dy: Tensor4D,
  kernel: Tensor,
  strides: readonly [number, number],
  padding: string,
): Tensor4D | undefined {
  const [kh = 0, kw = 0] = kernel.shape;
  if (strides[0] !== 1 || strides[1] !== 1 || padding !== "same" || kh % 2 !== 1 || kw % 2 !== 1) {
    return undefined;
  }
  return conv2d(dy, flippedKernel(kernel));
}
