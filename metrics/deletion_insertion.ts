/**
 * Deletion and insertion curves (Petsiuk et al., RISE, 2018): how fast does the class
 * probability fall when the most salient pixels are removed first, and how fast does it
 * rise when they are put back first?
 *
 * Protocol implemented here:
 * - **Order**: pixels sorted by saliency, descending; equal values keep index order (stable
 *   tie-break by row-major index). NaN saliency counts as -Infinity.
 * - **Steps**: `ceil(H·W / steps)` pixels change per step (default `steps = 64`, i.e. 1/64
 *   of the image per step), giving `K + 1` images, `K = ceil(H·W / perStep)`, from "nothing
 *   changed" to "everything changed". All channels of a pixel change together.
 * - **Deletion** starts from the image and replaces pixels with a baseline: by default
 *   zeros *in the model's preprocessed input space* (the dataset mean colour for
 *   ImageNet-normalised models, black for `unit` models), or a constant / full image given
 *   as `deletionBaseline`.
 * - **Insertion** starts from a blurred copy of the image and inserts the original pixels.
 *   Default (`insertionStart: "gaussian"`): a separable Gaussian blur with
 *   `σ = 5 · min(H, W) / 224` px (RISE blurs with σ = 5 px at 224 × 224), kernel radius
 *   `ceil(3σ)`, weights normalised to sum 1 and edges replicated. Because the kernel sums
 *   to 1 and preprocessing is per-channel affine, blurring the preprocessed image equals
 *   preprocessing the blurred one. `insertionStart: "rise"` reproduces RISE's reference
 *   code instead ({@linkcode riseBlur}): an 11 × 11 kernel (a unit impulse blurred by
 *   scipy's `gaussian_filter` at σ = 5, so it sums to 1) applied with zero padding, which
 *   pulls the 5-pixel border towards 0 (the dataset mean for ImageNet-normalised input)
 *   whatever the image size. `insertionBaseline` replaces the blurred start.
 * - **Score**: softmax probability of the explained class (or the raw score with
 *   `output: "raw"`).
 * - **Area**: trapezoid rule over the fraction of pixels changed, `x ∈ [0, 1]`
 *   ({@linkcode trapezoidAuc}). Lower deletion AUC and higher insertion AUC are better.
 *
 * Batched: the step images of one or many curves are streamed into batches of `batchSize`
 * (default 32) images and each batch is scored with ONE model call, so memory stays
 * bounded by one batch whatever the number of curves. Images that are known to be equal
 * are scored once per tracked class (`shareImages`, default true): the unchanged image
 * (deletion's first and insertion's last step) once per distinct image for all curves, the
 * blurred start once per image, the fully deleted image once for all curves of a class,
 * and a step that changes no value
 * (the pixels already equal what replaces them) reuses the previous step's score. The
 * figures are the same as without sharing, since a model scores each image of a batch
 * independently. Each map array is sorted once for all the curves given it. A batch's scores are
 * read after the next batch has been handed to the model, so that an asynchronous backend
 * (webgpu) computes while the next batch is composed; at most two batches' scores are alive.
 * Tensors are disposed after every batch; the rest is plain typed-array code with no I/O
 * (runs in browsers).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../core/tf.ts";
 * import { deletionInsertion } from "./deletion_insertion.ts";
 * // A toy "model": the score of class 0 is the mean of the first pixel's channels.
 * const scorer = (x: tf.Tensor4D) =>
 *   tf.tidy(() => x.slice([0, 0, 0, 0], [-1, 1, 1, -1]).mean([1, 2, 3]).reshape([-1, 1])) as
 *     tf.Tensor2D;
 * const image = new Float32Array(2 * 2 * 3).fill(1);
 * const map = new Float32Array([1, 0, 0, 0]); // the first pixel is the most salient
 * const [del] = await deletionInsertion(scorer, [{ kind: "deletion", image, map, classIndex: 0 }], {
 *   height: 2,
 *   width: 2,
 *   steps: 4,
 *   output: "raw",
 * });
 * assert.deepEqual(Array.from(del.y), [1, 0, 0, 0, 0]); // the score drops at the first step
 * assert.equal(del.auc, 0.125);
 * ```
 *
 * @module
 */
import { type ModelLike, sessionOf } from "../core/explain.ts";
import { type Tensor2D, type Tensor4D, tf } from "../core/tensor.ts";

/** Which curve: remove salient pixels first, or insert them first. */
export type CurveKind = "deletion" | "insertion";

/**
 * Scores a batch `[N, H, W, C]` of preprocessed images: returns class scores `[N, classes]`
 * (logits, or whatever `output` expects); the caller disposes the result, the input stays
 * owned by the caller.
 */
export type Scorer = (batch: Tensor4D) => Tensor2D | Promise<Tensor2D>;

/**
 * The scorer of a model: `sessionOf(model).predict` (pre-softmax class scores).
 *
 * @param model a LayersModel, GraphModel or session
 * @returns a {@linkcode Scorer}
 */
export function modelScorer(model: ModelLike): Scorer {
  const session = sessionOf(model);
  return (batch: Tensor4D): Tensor2D => session.predict(batch);
}

function toScorer(model: ModelLike | Scorer): Scorer {
  return typeof model === "function" ? model : modelScorer(model);
}

/** One curve to compute. */
export interface CurveRequest {
  /** Deletion or insertion. */
  kind: CurveKind;
  /** Preprocessed image, row-major HWC (`height * width * channels`). */
  image: Float32Array;
  /** Saliency map, row-major `height * width` (higher = more important). */
  map: ArrayLike<number>;
  /** The class whose score is tracked. */
  classIndex: number;
}

/** Options of {@linkcode deletionInsertion}. */
export interface CurveOptions {
  /** Image and map height. */
  height: number;
  /** Image and map width. */
  width: number;
  /** Number of steps: `ceil(H·W / steps)` pixels change per step (default 64). */
  steps?: number;
  /** Images per model call (default 32). */
  batchSize?: number;
  /** `"softmax"` (default): track the class probability; `"raw"`: the raw class score. */
  output?: "softmax" | "raw";
  /**
   * What deleted pixels become: a constant (in preprocessed units) or a full HWC image.
   * Default 0 (zeros in the preprocessed space).
   */
  deletionBaseline?: number | Float32Array;
  /**
   * Where insertion starts: a constant or a full HWC image. Default: the image blurred with
   * {@linkcode gaussianBlur} at `blurSigma`.
   */
  insertionBaseline?: number | Float32Array;
  /** Blur sigma in pixels for the insertion start (default `5 · min(H, W) / 224`). */
  blurSigma?: number;
  /**
   * The insertion start when `insertionBaseline` is not given: `"gaussian"` (default, see
   * {@linkcode gaussianBlur} and `blurSigma`) or `"rise"` (RISE's kernel, {@linkcode riseBlur}).
   */
  insertionStart?: InsertionStart;
  /** Score images known to be equal only once (default true; see the module documentation). */
  shareImages?: boolean;
  /** Called after every scored batch with the step images done so far and in total. */
  onBatch?: (done: number, total: number) => void;
  /** Called at the end with how many step images there were and how many were scored. */
  onStats?: (stats: CurveStats) => void;
}

/** The insertion start: a Gaussian blur scaled to the image, or RISE's fixed kernel. */
export type InsertionStart = "gaussian" | "rise";

/** Work done by one {@linkcode deletionInsertion} call. */
export interface CurveStats {
  /** Step images of all curves (`curves · (K + 1)`). */
  images: number;
  /** Images actually run through the model (the others were shared). */
  scored: number;
  /**
   * Seconds spent in model calls and waiting for their scores; the rest of the call's time
   * is composing step images, sorting maps and blurring.
   */
  modelSeconds: number;
}

/** One computed curve. */
export interface Curve {
  /** Deletion or insertion. */
  kind: CurveKind;
  /** The tracked class. */
  classIndex: number;
  /** Fraction of pixels changed at each step, from 0 to 1 (`K + 1` points). */
  x: Float64Array;
  /** Score (probability by default) at each step. */
  y: Float64Array;
  /** Area under the curve (trapezoid rule over `x`). */
  auc: number;
}

/** The default insertion blur for an image of `height × width`: `5 · min(H, W) / 224` px. */
export function defaultBlurSigma(height: number, width: number): number {
  return (5 * Math.min(height, width)) / 224;
}

/**
 * Area under a curve by the trapezoid rule: `Σ (x[k+1] - x[k]) (y[k] + y[k+1]) / 2`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trapezoidAuc } from "./deletion_insertion.ts";
 * assert.equal(trapezoidAuc([0, 0.5, 1], [1, 0, 0]), 0.25);
 * ```
 *
 * @param x abscissae, ascending
 * @param y ordinates, same length
 * @returns the area
 */
export function trapezoidAuc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new RangeError("trapezoidAuc: x and y differ in length");
  let a = 0;
  for (let k = 0; k + 1 < x.length; k++) a += (x[k + 1] - x[k]) * (y[k] + y[k + 1]) / 2;
  return a;
}

/** Index of the high 32-bit word of a float64 in a `Uint32Array` view (platform endianness). */
const HI_WORD = new Uint32Array(new Float64Array([1]).buffer)[1] === 0x3ff00000 ? 1 : 0;

/**
 * Pixel indices by saliency, descending, ties in index order; NaN counts as -Infinity
 * (`-0` and `0` are equal).
 *
 * A stable least-significant-digit radix sort over the 64 bits of the values as float64
 * (four 16-bit digits, constant digits skipped): the same permutation as a comparison sort
 * by (value descending, index ascending), in linear time.
 *
 * @param map saliency values
 * @returns the order (a permutation of `0 .. map.length - 1`)
 */
export function saliencyOrder(map: ArrayLike<number>): Uint32Array {
  const n = map.length;
  // Sort keys: -value (ascending = value descending), its bits made unsigned-ordered.
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = map[i];
    f[i] = Number.isNaN(v) ? Infinity : v === 0 ? 0 : -v;
  }
  const words = new Uint32Array(f.buffer);
  const hi = new Uint32Array(n), lo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const h = words[2 * i + HI_WORD], l = words[2 * i + 1 - HI_WORD];
    const neg = h >>> 31 === 1;
    hi[i] = neg ? ~h >>> 0 : (h | 0x80000000) >>> 0;
    lo[i] = neg ? ~l >>> 0 : l;
  }
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  let tmp = new Uint32Array(n);
  const count = new Uint32Array(65536);
  for (const [key, shift] of [[lo, 0], [lo, 16], [hi, 0], [hi, 16]] as const) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(key[i] >>> shift) & 0xffff]++;
    if (n === 0 || count[(key[0] >>> shift) & 0xffff] === n) continue; // one digit value
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const p = idx[i];
      tmp[count[(key[p] >>> shift) & 0xffff]++] = p;
    }
    [idx, tmp] = [tmp, idx];
  }
  return idx;
}

/**
 * Number of pixels changed at each step and the resulting x axis.
 *
 * @param pixels `H · W`
 * @param steps requested number of steps
 * @returns pixels per step and the `K + 1` fractions `min(k · perStep, H·W) / (H·W)`
 */
export function curveSteps(pixels: number, steps: number): { perStep: number; x: Float64Array } {
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new RangeError("steps must be a positive integer");
  }
  const perStep = Math.ceil(pixels / steps);
  const k = Math.ceil(pixels / perStep);
  const x = new Float64Array(k + 1);
  for (let i = 0; i <= k; i++) x[i] = Math.min(i * perStep, pixels) / pixels;
  return { perStep, x };
}

function gaussianKernel(sigma: number): Float64Array {
  const r = Math.max(0, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) {
    const v = sigma > 0 ? Math.exp(-(i * i) / (2 * sigma * sigma)) : (i === 0 ? 1 : 0);
    k[i + r] = v;
    s += v;
  }
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable Gaussian blur of an HWC image: kernel radius `ceil(3σ)`, weights normalised to
 * sum 1, edges replicated. `sigma <= 0` returns a copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gaussianBlur } from "./deletion_insertion.ts";
 * const flat = new Float32Array(4 * 4 * 3).fill(0.5);
 * assert.ok(Math.abs(gaussianBlur(flat, 4, 4, 2)[0] - 0.5) < 1e-6); // constants stay constant
 * ```
 *
 * @param image row-major HWC values
 * @param height image height
 * @param width image width
 * @param sigma standard deviation in pixels
 * @returns the blurred image (a new array)
 */
export function gaussianBlur(
  image: Float32Array,
  height: number,
  width: number,
  sigma: number,
): Float32Array {
  const c = image.length / (height * width);
  if (!Number.isInteger(c) || c < 1) {
    throw new RangeError(`gaussianBlur: ${image.length} values do not fit ${height} × ${width}`);
  }
  if (!(sigma > 0)) return image.slice();
  const k = gaussianKernel(sigma);
  const horizontal = blurAxis(image, height, width, c, k, true);
  return blurAxis(horizontal, height, width, c, k, false);
}

/**
 * One pass of a separable blur with kernel `k` along x or y: edges clamped (replicated), or
 * with `zeroPad` taken as zeros.
 */
function blurAxis(
  src: Float32Array,
  height: number,
  width: number,
  c: number,
  k: Float64Array,
  alongX: boolean,
  zeroPad = false,
): Float32Array {
  const r = (k.length - 1) / 2;
  const out = new Float32Array(src.length);
  // Neighbour index step along the axis; lines along the axis have `len` pixels.
  const stride = alongX ? c : width * c;
  const len = alongX ? width : height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const pos = alongX ? x : y;
      const inside = pos >= r && pos < len - r; // every tap in the image: no clamping
      for (let ch = 0; ch < c; ch++) {
        const at = (y * width + x) * c + ch;
        let s = 0;
        if (inside) {
          for (let i = -r, q = at - r * stride; i <= r; i++, q += stride) s += k[i + r] * src[q];
        } else {
          for (let i = -r; i <= r; i++) {
            let xx = alongX ? x + i : x, yy = alongX ? y : y + i;
            if (xx < 0 || xx >= width || yy < 0 || yy >= height) {
              if (zeroPad) continue;
              xx = Math.min(width - 1, Math.max(0, xx));
              yy = Math.min(height - 1, Math.max(0, yy));
            }
            s += k[i + r] * src[(yy * width + xx) * c + ch];
          }
        }
        out[at] = s;
      }
    }
  }
  return out;
}

/**
 * The 1-D factor of RISE's 11 × 11 blur kernel: a unit impulse at the centre of 11 samples
 * filtered by scipy's `gaussian_filter1d` (σ = 5, truncate 4, so radius 20, `reflect`
 * boundary: the mass beyond the 11 samples folds back in, and the kernel sums to 1). The
 * 2-D kernel is the outer product of this with itself.
 *
 * @returns 11 weights summing to 1
 */
export function riseKernel1d(): Float64Array {
  const n = 11, sigma = 5, radius = 20, centre = 5;
  const g = new Float64Array(2 * radius + 1);
  let s = 0;
  for (let j = -radius; j <= radius; j++) {
    g[j + radius] = Math.exp(-0.5 * (j * j) / (sigma * sigma));
    s += g[j + radius];
  }
  const reflect = (k: number): number => {
    const period = 2 * n;
    let m = ((k % period) + period) % period;
    if (m >= n) m = period - m - 1;
    return m;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = -radius; j <= radius; j++) {
      if (reflect(i + j) === centre) out[i] += g[j + radius] / s;
    }
  }
  return out;
}

/**
 * RISE's insertion start: the image filtered with {@linkcode riseKernel1d} along x and y
 * with zero padding (as `torch.nn.functional.conv2d(x, k, padding=5)` in RISE's code), in
 * whatever space the image is in (RISE blurs the normalised tensor).
 *
 * @param image row-major HWC values
 * @param height image height
 * @param width image width
 * @returns the blurred image (a new array)
 */
export function riseBlur(image: Float32Array, height: number, width: number): Float32Array {
  const c = image.length / (height * width);
  if (!Number.isInteger(c) || c < 1) {
    throw new RangeError(`riseBlur: ${image.length} values do not fit ${height} × ${width}`);
  }
  const k = riseKernel1d();
  const horizontal = blurAxis(image, height, width, c, k, true, true);
  return blurAxis(horizontal, height, width, c, k, false, true);
}

function filled(value: number | Float32Array, n: number, what: string): Float32Array {
  if (typeof value === "number") return new Float32Array(n).fill(value);
  if (value.length !== n) throw new RangeError(`${what} has ${value.length} values, expected ${n}`);
  return value;
}

/**
 * Computes deletion and/or insertion curves for any number of (image, map, class)
 * requests, streaming all their step images through the model in batches of `batchSize`.
 * See the module documentation for the protocol.
 *
 * @param model a model, session, or a custom {@linkcode Scorer}
 * @param requests the curves to compute
 * @param opts image size, steps, batch size, baselines
 * @returns one {@linkcode Curve} per request, in order
 */
export async function deletionInsertion(
  model: ModelLike | Scorer,
  requests: readonly CurveRequest[],
  opts: CurveOptions,
): Promise<Curve[]> {
  const { height: h, width: w } = opts;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new RangeError("deletionInsertion: height and width must be positive integers");
  }
  const batchSize = opts.batchSize ?? 32;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError("deletionInsertion: batchSize must be a positive integer");
  }
  const scorer = toScorer(model);
  const softmax = (opts.output ?? "softmax") === "softmax";
  const pixels = h * w;
  const { perStep, x } = curveSteps(pixels, opts.steps ?? 64);
  const points = x.length;
  if (requests.length === 0) return [];
  const c = requests[0].image.length / pixels;
  if (!Number.isInteger(c) || c < 1) {
    throw new RangeError(
      `deletionInsertion: image has ${requests[0].image.length} values, not ${h} × ${w} × C`,
    );
  }
  const size = pixels * c;
  for (const r of requests) {
    if (r.image.length !== size) {
      throw new RangeError(`deletionInsertion: every image needs ${size} values`);
    }
    if (r.map.length !== pixels) {
      throw new RangeError(`deletionInsertion: every map needs ${pixels} values`);
    }
  }
  const sigma = opts.blurSigma ?? defaultBlurSigma(h, w);
  const startKind = opts.insertionStart ?? "gaussian";
  if (startKind !== "gaussian" && startKind !== "rise") {
    throw new RangeError(
      `deletionInsertion: unknown insertionStart '${String(startKind)}' (gaussian or rise)`,
    );
  }
  const share = opts.shareImages ?? true;
  const delBase = filled(opts.deletionBaseline ?? 0, size, "deletionBaseline");
  const insBase = opts.insertionBaseline === undefined
    ? undefined
    : filled(opts.insertionBaseline, size, "insertionBaseline");
  const blurred = new Map<Float32Array, Float32Array>(); // one blur per distinct image
  const orders = new Map<ArrayLike<number>, Uint32Array>(); // one order per distinct map

  const curves: Curve[] = requests.map((r) => ({
    kind: r.kind,
    classIndex: r.classIndex,
    x,
    y: new Float64Array(points),
    auc: NaN,
  }));
  const total = requests.length * points;
  // The batch being composed; the model has copied it once its call returns.
  const buffer = new Float32Array(Math.min(batchSize, total) * size);
  let slots: { curve: number; step: number }[] = [];
  let scored = 0; // images run through the model
  let done = 0; // step images scored or shared
  let modelMs = 0; // time in model calls and waiting for their scores
  // Shared images: the array whose content a step image equals, and the tracked class ->
  // the step that scores it.
  const owners = new Map<Float32Array, Map<number, { curve: number; step: number }>>();
  // Steps whose score is another step's, resolved in creation order at the end.
  const aliases: { curve: number; step: number; from: { curve: number; step: number } }[] = [];

  // The batch in the model: its scores are read only after the next batch was handed to
  // the model, so that an asynchronous backend (webgpu) computes while the next batch is
  // composed and uploaded. On wasm and cpu the scores are ready when the call returns.
  interface Pending {
    out: tf.Tensor;
    values: Promise<ArrayLike<number>>;
    slots: { curve: number; step: number }[];
  }
  let pending: Pending | undefined;
  const settle = async (p: Pending): Promise<void> => {
    const t0 = performance.now();
    let values: ArrayLike<number>;
    try {
      values = await p.values;
    } finally {
      p.out.dispose();
    }
    modelMs += performance.now() - t0;
    const classes = p.out.shape[1] as number;
    for (let i = 0; i < p.slots.length; i++) {
      const { curve, step } = p.slots[i];
      const cls = curves[curve].classIndex;
      if (!(Number.isInteger(cls) && cls >= 0 && cls < classes)) {
        throw new RangeError(`deletionInsertion: class ${cls} out of range (${classes} classes)`);
      }
      curves[curve].y[step] = values[i * classes + cls];
    }
    done += p.slots.length;
    opts.onBatch?.(done, total);
  };
  const flush = async (): Promise<void> => {
    const m = slots.length;
    if (m === 0) return;
    const t0 = performance.now();
    const input = tf.tensor4d(buffer.subarray(0, m * size), [m, h, w, c]);
    let out: tf.Tensor;
    try {
      const scores = await scorer(input);
      try {
        out = tf.tidy(() => (softmax ? tf.softmax(scores) : scores.clone()));
      } finally {
        scores.dispose();
      }
    } finally {
      input.dispose();
    }
    const values = out.data(); // may run the model (a synchronous queue submit)
    values.catch(() => {}); // awaited in settle; no unhandled rejection meanwhile
    modelMs += performance.now() - t0;
    const previous = pending;
    pending = { out, values, slots };
    scored += m;
    slots = [];
    if (previous) await settle(previous);
  };

  try {
    for (let ci = 0; ci < requests.length; ci++) {
      const r = requests[ci];
      let start: Float32Array, fill: Float32Array;
      if (r.kind === "deletion") {
        start = r.image;
        fill = delBase;
      } else if (r.kind === "insertion") {
        let b = insBase ?? blurred.get(r.image);
        if (b === undefined) {
          b = startKind === "rise" ? riseBlur(r.image, h, w) : gaussianBlur(r.image, h, w, sigma);
          blurred.set(r.image, b);
        }
        start = b;
        fill = r.image;
      } else {
        throw new RangeError(`deletionInsertion: unknown curve kind '${String(r.kind)}'`);
      }
      let order = orders.get(r.map);
      if (order === undefined) orders.set(r.map, order = saliencyOrder(r.map));
      const work = start.slice();
      for (let step = 0; step < points; step++) {
        let changed = step === 0;
        if (step > 0) {
          const end = Math.min(step * perStep, pixels);
          for (let j = (step - 1) * perStep; j < end; j++) {
            const p = order[j] * c;
            for (let ch = 0; ch < c; ch++) {
              if (!Object.is(work[p + ch], fill[p + ch])) changed = true;
              work[p + ch] = fill[p + ch];
            }
          }
        }
        if (share) {
          // The first step is `start`, the last is `fill` (every pixel replaced).
          const same = step === 0 ? start : step === points - 1 ? fill : undefined;
          const owner = same && owners.get(same)?.get(r.classIndex);
          if (owner) {
            aliases.push({ curve: ci, step, from: owner });
            done++;
            continue;
          }
          if (!changed) {
            aliases.push({ curve: ci, step, from: { curve: ci, step: step - 1 } });
            done++;
            continue;
          }
          if (same) {
            let byClass = owners.get(same);
            if (!byClass) owners.set(same, byClass = new Map());
            byClass.set(r.classIndex, { curve: ci, step });
          }
        }
        buffer.set(work, slots.length * size);
        slots.push({ curve: ci, step });
        if (slots.length === batchSize) await flush();
      }
    }
    await flush();
    const last = pending;
    pending = undefined;
    if (last) await settle(last);
  } finally {
    pending?.out.dispose();
  }
  for (const a of aliases) curves[a.curve].y[a.step] = curves[a.from.curve].y[a.from.step];
  for (const cv of curves) cv.auc = trapezoidAuc(cv.x, cv.y);
  opts.onStats?.({ images: total, scored, modelSeconds: modelMs / 1000 });
  return curves;
}

/** Options of {@linkcode deletionCurve} / {@linkcode insertionCurve}. */
export type SingleCurveOptions = CurveOptions;

/**
 * The deletion curve of one image and map (see {@linkcode deletionInsertion}).
 *
 * @param model a model, session or {@linkcode Scorer}
 * @param image preprocessed HWC image
 * @param map saliency map `[H * W]`
 * @param classIndex tracked class
 * @param opts size, steps, batch size, baseline
 * @returns the curve and its AUC (lower is better)
 */
export async function deletionCurve(
  model: ModelLike | Scorer,
  image: Float32Array,
  map: ArrayLike<number>,
  classIndex: number,
  opts: SingleCurveOptions,
): Promise<Curve> {
  const [c] = await deletionInsertion(model, [{ kind: "deletion", image, map, classIndex }], opts);
  return c;
}

/**
 * The insertion curve of one image and map (see {@linkcode deletionInsertion}).
 *
 * @param model a model, session or {@linkcode Scorer}
 * @param image preprocessed HWC image
 * @param map saliency map `[H * W]`
 * @param classIndex tracked class
 * @param opts size, steps, batch size, blur
 * @returns the curve and its AUC (higher is better)
 */
export async function insertionCurve(
  model: ModelLike | Scorer,
  image: Float32Array,
  map: ArrayLike<number>,
  classIndex: number,
  opts: SingleCurveOptions,
): Promise<Curve> {
  const [c] = await deletionInsertion(model, [{ kind: "insertion", image, map, classIndex }], opts);
  return c;
}
