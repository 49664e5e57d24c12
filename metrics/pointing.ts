/**
 * Pointing game and energy-based pointing game: does a saliency map point at the object?
 *
 * - {@linkcode pointingGame} follows the protocol of TorchRay's benchmark (Fong et al.):
 *   a hit when the map's maximum lies within `tolerance` pixels of the object mask, i.e.
 *   inside the mask dilated by an open disc of that radius (`dx² + dy² < tolerance²`).
 *   The tolerance is 15 px at 224 × 224 and scales with the input:
 *   `tolerance = 15 · min(H, W) / 224` ({@linkcode pointingTolerance}).
 * - {@linkcode energyPointing} (Score-CAM's "energy-based pointing game"): the fraction of
 *   the map's mass (the map clamped to `>= 0`) that falls inside the object's box.
 *
 * Everything here is a pure function over typed arrays (no tensors, no I/O), so it runs
 * unchanged in browsers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { energyPointing, pointingGame } from "./pointing.ts";
 * const h = 4, w = 4;
 * const mask = new Uint8Array(16);
 * mask[5] = 1; // pixel (x 1, y 1)
 * const map = new Float32Array(16);
 * map[5] = 1;
 * assert.equal(pointingGame(map, mask, h, w, { tolerance: 0.5 }), 1);
 * assert.equal(energyPointing(map, [1, 1, 2, 2], h, w), 1);
 * ```
 *
 * @module
 */

/**
 * How a plateau of equal maxima is scored:
 * - `"average"` (default): the hit score is the fraction of the tied maxima that lie inside
 *   the dilated mask (a number in [0, 1]; equal to 0 or 1 when the maximum is unique);
 * - `"first"`: only the first maximum in row-major order counts (what `argmax` returns in
 *   TorchRay / PyTorch / NumPy), so the score is 0 or 1.
 *
 * Why `"average"` is the default: maps post-processed by gradual extrapolation (and any map
 * normalised with clipping) often have a plateau of values exactly 1.0. With `"first"` the
 * top-left pixel of that plateau decides the hit, an artefact of scan order that rewards or
 * punishes a method by where the plateau starts, not by where it lies. Averaging over the
 * plateau is the expected hit of a uniformly random tie-break and does not depend on the
 * pixel order.
 */
export type TieRule = "average" | "first";

/** Options of {@linkcode pointingGame}. */
export interface PointingOptions {
  /**
   * Acceptance radius in pixels: a maximum within this (strict) Euclidean distance of a
   * mask pixel is a hit. Default {@linkcode pointingTolerance}`(height, width)`.
   */
  tolerance?: number;
  /** Tie rule for plateaus of equal maxima (default `"average"`, see {@linkcode TieRule}). */
  ties?: TieRule;
}

/** An object's box `[x0, y0, x1, y1]` in pixels: x0 / y0 inclusive, x1 / y1 exclusive. */
export type Box = readonly [number, number, number, number];

/** TorchRay's pointing tolerance: 15 px at 224 × 224. */
export const POINTING_TOLERANCE_224 = 15;

/**
 * The default pointing tolerance for an input of `height × width`:
 * `15 · min(height, width) / 224` pixels (TorchRay's 15 px at 224 × 224, scaled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pointingTolerance } from "./pointing.ts";
 * assert.equal(pointingTolerance(224, 224), 15);
 * assert.equal(pointingTolerance(128, 128), 15 * 128 / 224); // 8.571...
 * ```
 *
 * @param height map height in pixels
 * @param width map width in pixels
 * @returns the tolerance in pixels
 */
export function pointingTolerance(height: number, width: number): number {
  return (POINTING_TOLERANCE_224 * Math.min(height, width)) / 224;
}

function checkSize(n: number, height: number, width: number, what: string): void {
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new RangeError(`${what}: height and width must be positive integers`);
  }
  if (n !== height * width) {
    throw new RangeError(`${what}: expected ${height * width} values, got ${n}`);
  }
}

/**
 * Dilates a binary mask by an open disc: the result is 1 at every pixel whose Euclidean
 * distance to some mask pixel is `< radius` (a mask pixel itself is always kept, even for
 * `radius <= 0`). Runs in `O(H · W · radius)`.
 *
 * @param mask row-major `height * width`, nonzero = object
 * @param height mask height
 * @param width mask width
 * @param radius disc radius in pixels (strict inequality, as TorchRay)
 * @returns a new 0/1 mask
 */
export function dilateMask(
  mask: ArrayLike<number>,
  height: number,
  width: number,
  radius: number,
): Uint8Array {
  checkSize(mask.length, height, width, "dilateMask");
  const out = new Uint8Array(height * width);
  // Per row, the horizontal distance from each pixel to the nearest mask pixel in that row.
  const rowDist = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    const o = y * width;
    let last = -Infinity;
    for (let x = 0; x < width; x++) {
      if (mask[o + x]) last = x;
      rowDist[o + x] = x - last;
    }
    last = Infinity;
    for (let x = width - 1; x >= 0; x--) {
      if (mask[o + x]) last = x;
      rowDist[o + x] = Math.min(rowDist[o + x], last - x);
    }
  }
  const r = Math.max(0, radius);
  const reach = Math.ceil(r);
  for (let y = 0; y < height; y++) {
    for (let dy = -reach; dy <= reach; dy++) {
      const yy = y + dy;
      if (yy < 0 || yy >= height) continue;
      const d2 = r * r - dy * dy; // need dx² < d2
      const self = dy === 0;
      if (d2 <= 0 && !self) continue;
      const o = yy * width;
      const t = y * width;
      for (let x = 0; x < width; x++) {
        const dx = rowDist[o + x];
        if (dx === 0 ? (self || d2 > 0) : dx * dx < d2) out[t + x] = 1;
      }
    }
  }
  return out;
}

/**
 * Indices of the map's maxima (all pixels equal to the maximum), in row-major order. NaN
 * values are ignored; an empty or all-NaN map has none.
 *
 * @param map row-major saliency values
 * @returns the indices of the maximum value(s)
 */
export function argmaxAll(map: ArrayLike<number>): number[] {
  let best = -Infinity;
  let idx: number[] = [];
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (v > best) {
      best = v;
      idx = [i];
    } else if (v === best) idx.push(i);
  }
  return idx;
}

/**
 * Pointing game score of one map against one object mask, with a precomputed dilated mask
 * (see {@linkcode dilateMask}); {@linkcode pointingGame} computes it for you.
 *
 * @param map row-major saliency values
 * @param accept the dilated object mask (nonzero = acceptance region)
 * @param ties tie rule (default `"average"`)
 * @returns 1 hit, 0 miss, or with `"average"` the fraction of tied maxima that hit; 0 for a
 * map without any finite-or-infinite value (all NaN)
 */
export function pointingScore(
  map: ArrayLike<number>,
  accept: ArrayLike<number>,
  ties: TieRule = "average",
): number {
  if (map.length !== accept.length) {
    throw new RangeError(`pointingScore: map has ${map.length} values, mask ${accept.length}`);
  }
  const idx = argmaxAll(map);
  if (idx.length === 0) return 0;
  if (ties === "first") return accept[idx[0]] ? 1 : 0;
  let hits = 0;
  for (const i of idx) if (accept[i]) hits++;
  return hits / idx.length;
}

/**
 * TorchRay's pointing game for one map and one object: 1 when the map's maximum lies within
 * `tolerance` pixels of the mask, else 0; with the default tie rule `"average"`, a plateau
 * of equal maxima scores the fraction of its pixels that hit (see {@linkcode TieRule}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pointingGame } from "./pointing.ts";
 * const mask = new Uint8Array([0, 0, 0, 1]); // 2 × 2, object at bottom right
 * const flat = new Float32Array(4).fill(1); // a plateau: every pixel is a maximum
 * assert.equal(pointingGame(flat, mask, 2, 2, { tolerance: 0.5 }), 0.25);
 * assert.equal(pointingGame(flat, mask, 2, 2, { tolerance: 0.5, ties: "first" }), 0);
 * ```
 *
 * @param map row-major `height * width` saliency values (any scale; only the argmax matters)
 * @param mask row-major `height * width`, nonzero = object
 * @param height map height
 * @param width map width
 * @param opts tolerance and tie rule
 * @returns the hit score in [0, 1]
 */
export function pointingGame(
  map: ArrayLike<number>,
  mask: ArrayLike<number>,
  height: number,
  width: number,
  opts: PointingOptions = {},
): number {
  checkSize(map.length, height, width, "pointingGame map");
  checkSize(mask.length, height, width, "pointingGame mask");
  const tol = opts.tolerance ?? pointingTolerance(height, width);
  return pointingScore(map, dilateMask(mask, height, width, tol), opts.ties ?? "average");
}

/**
 * Energy-based pointing game (Score-CAM): the fraction of the map's mass inside the box,
 * `Σ_box max(map, 0) / Σ_all max(map, 0)`. A map with no positive mass (all zero or
 * negative) carries no information and scores like a constant map: the box's area
 * fraction. The box is clipped to the image.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { energyPointing } from "./pointing.ts";
 * const map = new Float32Array([1, 1, 1, 1]); // 2 × 2, constant
 * assert.equal(energyPointing(map, [0, 0, 1, 2], 2, 2), 0.5); // the box's area fraction
 * ```
 *
 * @param map row-major `height * width` saliency values
 * @param box `[x0, y0, x1, y1]`, x0 / y0 inclusive, x1 / y1 exclusive
 * @param height map height
 * @param width map width
 * @returns the energy fraction in [0, 1]
 */
export function energyPointing(
  map: ArrayLike<number>,
  box: Box,
  height: number,
  width: number,
): number {
  checkSize(map.length, height, width, "energyPointing map");
  const x0 = Math.max(0, Math.floor(box[0])), y0 = Math.max(0, Math.floor(box[1]));
  const x1 = Math.min(width, Math.ceil(box[2])), y1 = Math.min(height, Math.ceil(box[3]));
  let total = 0;
  let inside = 0;
  for (let y = 0; y < height; y++) {
    const inRow = y >= y0 && y < y1;
    for (let x = 0; x < width; x++) {
      const v = map[y * width + x];
      if (!(v > 0)) continue; // also skips NaN
      total += v;
      if (inRow && x >= x0 && x < x1) inside += v;
    }
  }
  if (total === 0) {
    return Math.max(0, x1 - x0) * Math.max(0, y1 - y0) / (height * width);
  }
  return inside / total;
}
