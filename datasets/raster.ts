/**
 * Turning annotations into masks and boxes at the model's input size.
 *
 * Geometry: the image is resized to the model input non-uniformly (`sx = w / W`,
 * `sy = h / H`, aspect not kept), and source pixel `j` covers the interval `[j, j + 1)`,
 * which is what the resize in `io/resample.ts` assumes. A model pixel `(x, y)` belongs to
 * an object when its **centre** `(x + 0.5, y + 0.5)`, mapped back to the source image
 * `((x + 0.5) / sx, (y + 0.5) / sy)`, lies inside the object:
 *
 * - boxes `[x0, y0, x1, y1]` (continuous source coordinates, x1 / y1 exclusive): pixels with
 *   centres in `[x0·sx, x1·sx) × [y0·sy, y1·sy)`;
 * - polygons (COCO): vertices scaled by `(sx, sy)` and filled by a scanline at the pixel
 *   centres with the **even-odd** rule; the polygons of one annotation are united;
 * - bitmaps (COCO RLE, PNG masks): nearest-neighbour sampling at the pixel centre, i.e.
 *   source pixel `floor((x + 0.5) / sx)`, which agrees exactly with the box rule.
 *
 * An object of nonzero area whose mask ends up empty at the model's resolution (smaller
 * than a model pixel) gets the one model pixel that contains its box centre, so every
 * object can be pointed at.
 *
 * @module
 */
import type { Box } from "../metrics/pointing.ts";

/** A box `[x0, y0, x1, y1]` in continuous pixel coordinates (x1 / y1 exclusive). */
export type FloatBox = readonly [number, number, number, number];

/** Scale from the source image to the model input. */
export interface Scale {
  /** Model width / image width. */
  sx: number;
  /** Model height / image height. */
  sy: number;
  /** Model input width. */
  width: number;
  /** Model input height. */
  height: number;
}

/**
 * The scale that maps an image of `imageWidth × imageHeight` onto a `width × height` input.
 *
 * @param imageWidth source width
 * @param imageHeight source height
 * @param width model input width
 * @param height model input height
 * @returns the scale
 */
export function scaleOf(
  imageWidth: number,
  imageHeight: number,
  width: number,
  height: number,
): Scale {
  return { sx: width / imageWidth, sy: height / imageHeight, width, height };
}

const first = (v: number): number => Math.ceil(v - 0.5); // first pixel whose centre is >= v

/**
 * Model pixels whose centres lie in a source box: integer `[x0, y0, x1, y1]`, x1 / y1
 * exclusive, clamped to the input, possibly empty.
 *
 * @param b box in source pixels
 * @param s scale
 * @returns the pixel range
 */
export function pixelBox(b: FloatBox, s: Scale): Box {
  const c = (v: number, hi: number): number => Math.min(hi, Math.max(0, v));
  return [
    c(first(b[0] * s.sx), s.width),
    c(first(b[1] * s.sy), s.height),
    c(first(b[2] * s.sx), s.width),
    c(first(b[3] * s.sy), s.height),
  ];
}

/** The model pixel containing the centre of source box `b`. */
function centrePixel(b: FloatBox, s: Scale): [number, number] {
  const x = Math.floor(((b[0] + b[2]) / 2) * s.sx);
  const y = Math.floor(((b[1] + b[3]) / 2) * s.sy);
  return [Math.min(s.width - 1, Math.max(0, x)), Math.min(s.height - 1, Math.max(0, y))];
}

/**
 * The model-resolution pixel box of an object, never empty: the pixels whose centres lie
 * in the source box, or the pixel containing the box centre when there are none.
 *
 * @param b box in source pixels
 * @param s scale
 * @returns integer box, x1 / y1 exclusive
 */
export function objectPixelBox(b: FloatBox, s: Scale): Box {
  const p = pixelBox(b, s);
  if (p[2] > p[0] && p[3] > p[1]) return p;
  const [x, y] = centrePixel(b, s);
  return [x, y, x + 1, y + 1];
}

/**
 * Sets (to 1) the model pixels of a source box in `out` (`height · width`, row-major).
 *
 * @param out the mask to add to
 * @param b box in source pixels
 * @param s scale
 * @returns the number of pixels set by this box (0 if it covers no pixel centre)
 */
export function fillBox(out: Uint8Array, b: FloatBox, s: Scale): number {
  const [x0, y0, x1, y1] = pixelBox(b, s);
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      out[y * s.width + x] = 1;
      n++;
    }
  }
  return n;
}

/**
 * Fills polygons (flat `[x0, y0, x1, y1, ...]` lists in source pixels) into `out` at the
 * model's resolution: even-odd rule at pixel centres within each polygon, union across
 * polygons.
 *
 * @example
 * ```ts
 * import { fillPolygons, scaleOf } from "./raster.ts";
 * const s = scaleOf(4, 4, 4, 4), m = new Uint8Array(16);
 * fillPolygons(m, [[1, 1, 3, 1, 3, 3, 1, 3]], s); // the 2 × 2 square x, y in 1..2
 * ```
 *
 * @param out the mask to add to (`height · width`)
 * @param polygons polygons in source pixel coordinates
 * @param s scale
 * @returns the number of pixels inside (counting a pixel once per polygon)
 */
export function fillPolygons(out: Uint8Array, polygons: readonly number[][], s: Scale): number {
  let n = 0;
  const xs: number[] = [];
  for (const poly of polygons) {
    const k = Math.floor(poly.length / 2);
    for (let y = 0; y < s.height; y++) {
      const yc = y + 0.5;
      xs.length = 0;
      for (let i = 0; i < k; i++) {
        const j = (i + 1) % k;
        const ax = poly[2 * i] * s.sx, ay = poly[2 * i + 1] * s.sy;
        const bx = poly[2 * j] * s.sx, by = poly[2 * j + 1] * s.sy;
        // half-open in y so that a vertex on the scanline is counted once
        if ((ay <= yc && yc < by) || (by <= yc && yc < ay)) {
          xs.push(ax + ((yc - ay) / (by - ay)) * (bx - ax));
        }
      }
      xs.sort((a, b) => a - b);
      for (let i = 0; i + 1 < xs.length; i += 2) {
        const x0 = Math.max(0, first(xs[i])), x1 = Math.min(s.width, first(xs[i + 1]));
        for (let x = x0; x < x1; x++) {
          out[y * s.width + x] = 1;
          n++;
        }
      }
    }
  }
  return n;
}

/**
 * Adds a source-resolution bitmap to `out` at the model's resolution by nearest-neighbour
 * sampling at the model pixel centres.
 *
 * @param out the mask to add to (`height · width`)
 * @param bitmap row-major `imageHeight · imageWidth`, nonzero = object
 * @param imageWidth source width
 * @param imageHeight source height
 * @param s scale
 * @returns the number of model pixels set
 */
export function fillBitmap(
  out: Uint8Array,
  bitmap: ArrayLike<number>,
  imageWidth: number,
  imageHeight: number,
  s: Scale,
): number {
  const col = new Int32Array(s.width);
  for (let x = 0; x < s.width; x++) {
    col[x] = Math.min(imageWidth - 1, Math.floor((x + 0.5) / s.sx));
  }
  let n = 0;
  for (let y = 0; y < s.height; y++) {
    const row = Math.min(imageHeight - 1, Math.floor((y + 0.5) / s.sy)) * imageWidth;
    for (let x = 0; x < s.width; x++) {
      if (bitmap[row + col[x]]) {
        out[y * s.width + x] = 1;
        n++;
      }
    }
  }
  return n;
}

/**
 * Sets the model pixel containing the centre of `b` (for objects too small to cover a
 * model pixel centre).
 *
 * @param out the mask
 * @param b box in source pixels
 * @param s scale
 */
export function markCentre(out: Uint8Array, b: FloatBox, s: Scale): void {
  const [x, y] = centrePixel(b, s);
  out[y * s.width + x] = 1;
}

/**
 * The tight box of the nonzero pixels of a bitmap, in continuous coordinates
 * (`[x0, y0, x1 + 1, y1 + 1]` of the extreme pixels), or undefined when it is empty.
 *
 * @param bitmap row-major `height · width`
 * @param width bitmap width
 * @param height bitmap height
 * @returns the box or undefined
 */
export function bitmapBox(
  bitmap: ArrayLike<number>,
  width: number,
  height: number,
): FloatBox | undefined {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!bitmap[y * width + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? undefined : [x0, y0, x1 + 1, y1 + 1];
}

/**
 * The smallest box containing all boxes.
 *
 * @param boxes at least one box
 * @returns their bounding box
 */
export function unionBox<T extends FloatBox>(boxes: readonly T[]): FloatBox {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const b of boxes) {
    x0 = Math.min(x0, b[0]);
    y0 = Math.min(y0, b[1]);
    x1 = Math.max(x1, b[2]);
    y1 = Math.max(y1, b[3]);
  }
  return [x0, y0, x1, y1];
}

/**
 * The area covered by the union of boxes (overlaps counted once), exactly, by coordinate
 * compression.
 *
 * @example
 * ```ts
 * import { unionArea } from "./raster.ts";
 * console.log(unionArea([[0, 0, 2, 2], [1, 1, 3, 3]])); // 7
 * ```
 *
 * @param boxes the boxes
 * @returns the covered area in square pixels
 */
export function unionArea(boxes: readonly FloatBox[]): number {
  const xs = [...new Set(boxes.flatMap((b) => [b[0], b[2]]))].sort((a, b) => a - b);
  let area = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    const a = xs[i], b = xs[i + 1];
    const spans = boxes.filter((bx) => bx[0] <= a && bx[2] >= b && bx[3] > bx[1])
      .map((bx) => [bx[1], bx[3]] as const)
      .sort((p, q) => p[0] - q[0]);
    let covered = 0, lo = -Infinity, hi = -Infinity;
    for (const [s0, s1] of spans) {
      if (s0 > hi) {
        covered += hi - lo > 0 ? hi - lo : 0;
        lo = s0;
        hi = s1;
      } else hi = Math.max(hi, s1);
    }
    covered += hi - lo > 0 ? hi - lo : 0;
    area += covered * (b - a);
  }
  return area;
}
