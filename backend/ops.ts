/**
 * The tensor ops whose fast form depends on the backend: convolutions that take a Winograd
 * path on wasm (and the switch that decides when: {@linkcode setWinograd}), weights derived
 * once from a model's kernels, and a matrix product and a transposed convolution routed to
 * XNNPACK.
 *
 * The core's layer ops (`core/layer_ops.ts`) and excitation backprop's rules run their
 * convolutions through here. This module imports TensorFlow.js itself and nothing of `core/`:
 * the backend sits below the core.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Tensor2D, Tensor4D } from "@tensorflow/tfjs";
import { WINOGRAD_POINTS, winogradApplies, winogradConv2d, winogradKernel } from "./_winograd.ts";

/**
 * When 3x3 convolutions take the Winograd path on wasm. Its rounding error is about 1e-5 of
 * a layer's LARGEST output, not of each output, and it differs from position to position
 * within a 4x4 tile, so it breaks exact ties (constant image regions give equal activations,
 * which max-pool gradients route to the first maximum): on the paper's VGG16 with a flat
 * black background, `"auto"` moves input-gradient maps by up to 65 % of their maximum (Grad-CAM
 * by 1e-6). Hence the default is `"off"`; the other modes are opt-in speed for methods whose
 * maps average such effects away (Grad-CAM). Each kernel on the path keeps a cached transform
 * of 8x its bytes (4x for the 36 transformed kernels, as much again for XNNPACK's packed
 * copies):
 * - `"off"` (default): never; every convolution is the direct one.
 * - `"auto"`: the model's kernels of 128x256 to 256x256 channels (VGG16's 56x56 block: +40 MB),
 *   where the gain per byte is best (its 512-channel kernels would add 400 MB).
 * - `"all"`: wherever it pays; fastest.
 *
 * Weights marked `exact` ({@linkcode DerivedWeightOptions.exact}: excitation backprop's
 * positive kernels and their flipped versions) never take the path, in any mode: EB divides
 * by each output.
 *
 * In `"auto"` and `"all"` the cached transforms total at most 1 GiB (the wasm heap ends at
 * 4 GiB); convolutions past that budget stay direct.
 */
export type WinogradMode = "auto" | "all" | "off";

let mode: WinogradMode = "off";

/**
 * Sets when {@linkcode conv2d} takes the Winograd path (see {@link WinogradMode}); process-wide,
 * like the tfjs backend. `initBackend`'s `winograd` option calls it.
 */
export function setWinograd(m: WinogradMode): void {
  if (m !== "auto" && m !== "all" && m !== "off") {
    throw new Error(`setWinograd: mode must be auto, all or off, got '${m}'`);
  }
  mode = m;
}

/** The current {@link WinogradMode}. */
export function getWinograd(): WinogradMode {
  return mode;
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
 * stride 1, `same`, wide channels; see {@linkcode setWinograd}), 2-2.8x faster on VGG16's deep layers
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
  if (!exact && mode !== "off" && winogradApplies(x, kernel, strides, padding, dilations, mode)) {
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
