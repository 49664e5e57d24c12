/**
 * Resampling of images, separable: bilinear with half-pixel centres (or align-corners), or
 * area averaging on axes that shrink, so big photos are not aliased.
 *
 * @module
 */
import type { AlphaMode, Rgba8Image, Rgba8Source } from "./image_types.ts";
import { checkLength, rgba8RowToRgb } from "./_pixels.ts";

/** Options of the resize functions. */
export interface ResizeOptions {
  /**
   * Map the corner pixel centres onto each other (`tf.image.resizeBilinear(…, alignCorners=true)`,
   * PyTorch `align_corners=True`). Default false: half-pixel centres. Ignored on axes that use
   * area averaging.
   */
  alignCorners?: boolean;
  /**
   * On axes that shrink, average over each output pixel's footprint (box filter, exact pixel
   * coverage, like `cv2.INTER_AREA` / `tf.image.resize(method="area")`) instead of sampling two
   * pixels, so big photos are not aliased. Axes that grow still use bilinear. Default false.
   */
  antialias?: boolean;
}

interface AxisTaps {
  off: Int32Array; // taps of output i: [off[i], off[i+1])
  idx: Int32Array;
  w: Float64Array;
  span: number; // max source rows spanned by one output (ring-buffer size)
}

function axisTaps(src: number, dst: number, alignCorners: boolean, antialias: boolean): AxisTaps {
  const idx: number[] = [];
  const w: number[] = [];
  const off = new Int32Array(dst + 1);
  let span = 1;
  if (antialias && dst < src) {
    const scale = src / dst;
    for (let i = 0; i < dst; i++) {
      const a = i * scale, b = Math.min((i + 1) * scale, src);
      const j0 = Math.floor(a), j1 = Math.min(Math.ceil(b), src);
      for (let j = j0; j < j1; j++) {
        const cover = Math.min(b, j + 1) - Math.max(a, j);
        if (cover > 1e-12) {
          idx.push(j);
          w.push(cover / scale);
        }
      }
      off[i + 1] = idx.length;
      span = Math.max(span, j1 - j0);
    }
  } else {
    const ratio = alignCorners && dst > 1 ? (src - 1) / (dst - 1) : src / dst;
    for (let i = 0; i < dst; i++) {
      const x = alignCorners ? i * ratio : (i + 0.5) * ratio - 0.5;
      const f = Math.floor(x);
      const lo = Math.max(f, 0), hi = Math.min(Math.ceil(x), src - 1);
      const frac = x - f;
      if (lo === hi || frac === 0) {
        idx.push(lo);
        w.push(1);
      } else {
        idx.push(lo, hi);
        w.push(1 - frac, frac);
        span = Math.max(span, hi - lo + 1);
      }
      off[i + 1] = idx.length;
    }
  }
  return { off, idx: Int32Array.from(idx), w: Float64Array.from(w), span };
}

/**
 * Row-streaming resampler behind every resize here: calls `onRow(y, row)` for each output
 * row (`row` is `dstW * channels` floats, reused between calls: copy it if you keep it),
 * holding only a few horizontally-resampled source rows. Lets callers resize to huge outputs
 * (e.g. a heatmap to a 10000x10000 photo) without materialising them.
 *
 * @param srcW source width
 * @param srcH source height
 * @param channels interleaved channels per pixel
 * @param readRow returns source row `y` as `srcW * channels` floats (may reuse a buffer)
 * @param dstW output width
 * @param dstH output height
 * @param onRow receives each output row, in order
 * @param opts alignCorners / antialias
 */
export function resampleRows(
  srcW: number,
  srcH: number,
  channels: number,
  readRow: (y: number) => ArrayLike<number>,
  dstW: number,
  dstH: number,
  onRow: (y: number, row: Float32Array) => void,
  opts: ResizeOptions = {},
): void {
  for (const [v, what] of [[srcW, "srcW"], [srcH, "srcH"], [dstW, "dstW"], [dstH, "dstH"]]) {
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new RangeError(`${what} must be a positive integer, got ${v}`);
    }
  }
  const C = channels;
  const align = opts.alignCorners ?? false, aa = opts.antialias ?? false;
  const xt = axisTaps(srcW, dstW, align, aa);
  const yt = axisTaps(srcH, dstH, align, aa);
  const cap = yt.span;
  const ring: Float32Array[] = [];
  for (let i = 0; i < cap; i++) ring.push(new Float32Array(dstW * C));
  const ringRow = new Int32Array(cap).fill(-1);
  const acc = new Float64Array(dstW * C);
  const row = new Float32Array(dstW * C);
  const { off: xo, idx: xi, w: xw } = xt;

  const hpass = (src: ArrayLike<number>, dst: Float32Array): void => {
    for (let x = 0; x < dstW; x++) {
      const k0 = xo[x], k1 = xo[x + 1];
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let k = k0; k < k1; k++) s += xw[k] * src[xi[k] * C + c];
        dst[x * C + c] = s;
      }
    }
  };

  for (let y = 0; y < dstH; y++) {
    const k0 = yt.off[y], k1 = yt.off[y + 1];
    for (let k = k0; k < k1; k++) {
      const sy = yt.idx[k], slot = sy % cap;
      if (ringRow[slot] !== sy) {
        hpass(readRow(sy), ring[slot]);
        ringRow[slot] = sy;
      }
    }
    if (k1 - k0 === 1) {
      row.set(ring[yt.idx[k0] % cap]);
      if (yt.w[k0] !== 1) { for (let i = 0; i < row.length; i++) row[i] *= yt.w[k0]; }
    } else if (k1 - k0 === 2) {
      const a = ring[yt.idx[k0] % cap], b = ring[yt.idx[k0 + 1] % cap];
      const wa = yt.w[k0], wb = yt.w[k0 + 1];
      for (let i = 0; i < row.length; i++) row[i] = a[i] * wa + b[i] * wb;
    } else {
      acc.fill(0);
      for (let k = k0; k < k1; k++) {
        const r = ring[yt.idx[k] % cap], wk = yt.w[k];
        for (let i = 0; i < acc.length; i++) acc[i] += r[i] * wk;
      }
      row.set(acc);
    }
    onRow(y, row);
  }
}

/**
 * Resize an interleaved float image (any channel count) with bilinear interpolation.
 *
 * Default: half-pixel centres with edge clamping, identical (to float rounding) to
 * `tf.image.resizeBilinear(x, size, false, true)` (halfPixelCenters) and `cv2.INTER_LINEAR`.
 * `alignCorners: true` matches `tf.image.resizeBilinear(x, size, true)`. `antialias: true`
 * averages pixel areas on shrinking axes (see {@linkcode ResizeOptions.antialias}).
 *
 * @example 2x2 -> 4x4, half-pixel centres
 * ```ts
 * import { resizeBilinear } from "./resample.ts";
 * const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 4, 4);
 * console.log(Array.from(out.subarray(0, 4))); // [0, 0.25, 0.75, 1]
 * ```
 *
 * @param src source pixels, `srcW * srcH * channels` floats
 * @param srcW source width
 * @param srcH source height
 * @param channels interleaved channels per pixel
 * @param dstW output width
 * @param dstH output height
 * @param opts alignCorners / antialias
 * @returns a new `dstW * dstH * channels` array
 */
export function resizeBilinear(
  src: Float32Array,
  srcW: number,
  srcH: number,
  channels: number,
  dstW: number,
  dstH: number,
  opts: ResizeOptions = {},
): Float32Array {
  checkLength(src.length, srcW * srcH * channels, "source");
  const out = new Float32Array(dstW * dstH * channels);
  const rowLen = srcW * channels;
  resampleRows(
    srcW,
    srcH,
    channels,
    (y) => src.subarray(y * rowLen, (y + 1) * rowLen),
    dstW,
    dstH,
    (y, row) => out.set(row, y * dstW * channels),
    opts,
  );
  return out;
}

/**
 * Resize an 8-bit RGBA image straight to float RGB in [0, 1] (the model-input path: no
 * full-size float copy is made). Antialiasing is on by default here, since this is used to
 * shrink photos.
 *
 * @param img source RGBA pixels
 * @param dstW output width
 * @param dstH output height
 * @param opts resize options (antialias defaults to true) and alpha handling
 * @returns `dstW * dstH * 3` floats in [0, 1]
 */
export function resizeRgba8ToRgb(
  img: Rgba8Source,
  dstW: number,
  dstH: number,
  opts: ResizeOptions & { alpha?: AlphaMode } = {},
): Float32Array {
  const { width: W, height: H, data } = img;
  checkLength(data.length, W * H * 4, "RGBA data");
  const white = opts.alpha === "white";
  const scratch = new Float32Array(W * 3);
  const out = new Float32Array(dstW * dstH * 3);
  resampleRows(
    W,
    H,
    3,
    (y) => {
      rgba8RowToRgb(data, y * W, W, scratch, white);
      return scratch;
    },
    dstW,
    dstH,
    (y, row) => out.set(row, y * dstW * 3),
    { alignCorners: opts.alignCorners, antialias: opts.antialias ?? true },
  );
  return out;
}

/**
 * Resize an 8-bit RGBA image to another 8-bit RGBA image (straight alpha, rounded).
 * Antialiasing (area averaging when shrinking) is on by default.
 *
 * @param img source RGBA pixels
 * @param dstW output width
 * @param dstH output height
 * @param opts resize options (antialias defaults to true)
 * @returns the resized image
 */
export function resizeRgba8(
  img: Rgba8Source,
  dstW: number,
  dstH: number,
  opts: ResizeOptions = {},
): Rgba8Image {
  const { width: W, height: H, data } = img;
  checkLength(data.length, W * H * 4, "RGBA data");
  const out = new Uint8ClampedArray(dstW * dstH * 4);
  resampleRows(
    W,
    H,
    4,
    (y) => data.subarray(y * W * 4, (y + 1) * W * 4),
    dstW,
    dstH,
    (y, row) => out.set(row, y * dstW * 4), // Uint8ClampedArray rounds half to even and clamps
    { alignCorners: opts.alignCorners, antialias: opts.antialias ?? true },
  );
  return { width: dstW, height: dstH, data: out };
}
