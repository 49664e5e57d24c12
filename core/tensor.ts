/**
 * The core's gateway to TensorFlow.js: the one module of `core/` that imports tfjs. The rest
 * of `core/`, the plugins, metrics and CLI take `tf` and the tensor types from here (or from
 * `core/tf.ts`, its public face), so they all share one tfjs instance and its backends.
 * Outside `core/`, the backend (`backend/`: initialisation, extra wasm kernels, Winograd)
 * imports tfjs itself, and so do a few programs, benches and tests (model training, the web
 * worker).
 *
 * Also the small tensor helpers the core and plugins share: half-pixel bilinear resize of
 * maps, per-image min-max, channel sums, a 4-D check, TF-style window padding and a
 * first-maximum max-pool gradient that is correct on every backend. Convolutions and derived
 * weights, whose fast form depends on the backend, are in `backend/ops.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

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
 * Name of the kernel a backend registers to run {@linkcode maxPoolInputGrad} in one pass
 * (`backend/` registers it for wasm): `MaxPoolGrad`'s inputs and attributes, ties routed to
 * the first maximum.
 */
export const FIRST_MAX_POOL_GRAD = "GradualMaxPoolGradFirstMax";

/**
 * Gradient of a 2-D max pool with respect to its input, routing each output's gradient to
 * the FIRST maximum of its window in row-major scan order (PyTorch's and tfjs-cpu's rule).
 * Padding is never selected. Works on every backend (wasm's own `MaxPoolGrad` picks the last
 * maximum on ties): where the backend registered a {@linkcode FIRST_MAX_POOL_GRAD} kernel (the
 * wasm backend, once `backend/` is loaded) it runs that kernel (one pass over the windows),
 * elsewhere strided slices and one transposed convolution.
 */
export function maxPoolInputGrad(
  x: Tensor4D,
  dy: Tensor4D,
  pool: [number, number],
  strides: [number, number],
  padding: "same" | "valid" | number,
): Tensor4D {
  if (tf.getKernel(FIRST_MAX_POOL_GRAD, tf.getBackend()) != null) {
    const attrs = { filterSize: pool, strides, pad: padding };
    // The corrected kernel reads only `input` and `dy`: `output` is a placeholder.
    return tf.engine().runKernel(
      FIRST_MAX_POOL_GRAD,
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
