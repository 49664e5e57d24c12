/**
 * Test helpers for comparing maps and arrays.
 *
 * @module
 */
import { assertEquals } from "./_assert.ts";

/**
 * Largest absolute difference relative to the reference's largest magnitude (the plain
 * largest difference when the reference is all zero); a non-finite value gives NaN, which
 * fails every tolerance.
 */
export function maxRel(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assertEquals(got.length, ref.length, "length");
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i])) return NaN;
    d = Math.max(d, Math.abs(got[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return m > 0 ? d / m : d;
}

/** A sane map: every value finite and not all equal. */
export function sane(map: ArrayLike<number>): boolean {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v)) return false;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi > lo;
}

/**
 * The largest difference between two horizontally or vertically adjacent pixels of a
 * row-major `height * width` map. A bilinear upsampling of a map in [0, 1] from `n` to `N`
 * pixels per side never steps more than `n / N`: a larger step is detail finer than the
 * coarse grid.
 */
export function maxStep(map: ArrayLike<number>, height: number, width: number): number {
  assertEquals(map.length, height * width, "length");
  let step = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = map[y * width + x];
      if (x + 1 < width) step = Math.max(step, Math.abs(map[y * width + x + 1] - v));
      if (y + 1 < height) step = Math.max(step, Math.abs(map[(y + 1) * width + x] - v));
    }
  }
  return step;
}
