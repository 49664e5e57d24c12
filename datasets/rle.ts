/**
 * COCO run-length encoded masks, decoded here (no pycocotools): `counts` alternate runs of
 * 0s and 1s, starting with 0s, over the pixels in **column-major** order (down the first
 * column, then the next), as the COCO format defines. Both forms are read: the plain list
 * of numbers (used for `iscrowd` annotations in the instances files) and the compressed
 * string (pycocotools' `rleToString`: each count, from the third on as the difference to
 * the count two before, written as 5-bit groups, low group first, in characters from
 * `'0'` (48) upwards; bit 0x20 means "more groups follow", bit 0x10 of the last group is
 * the sign).
 *
 * @module
 */

/**
 * Decodes the compressed string form of COCO RLE counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRleString, parseRleString } from "./rle.ts";
 * assert.deepEqual(parseRleString(encodeRleString([3, 4, 100, 2])), [3, 4, 100, 2]);
 * ```
 *
 * @param s the `counts` string
 * @returns the run lengths
 * @throws {RangeError} for characters outside the alphabet or a truncated last count
 */
export function parseRleString(s: string): number[] {
  const out: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let scale = 1;
    let more = true;
    let c = 0;
    while (more) {
      if (p >= s.length) throw new RangeError("truncated RLE string");
      c = s.charCodeAt(p++) - 48;
      if (c < 0 || c > 63) throw new RangeError(`invalid RLE character '${s[p - 1]}'`);
      x += (c & 0x1f) * scale;
      scale *= 32;
      more = (c & 0x20) !== 0;
    }
    if (c & 0x10) x -= scale; // sign-extend the last 5-bit group
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

/**
 * Encodes run lengths as a COCO compressed RLE string (the inverse of
 * {@linkcode parseRleString}).
 *
 * @param counts run lengths (0s first)
 * @returns the `counts` string
 */
export function encodeRleString(counts: readonly number[]): string {
  let s = "";
  for (let i = 0; i < counts.length; i++) {
    let x = i > 2 ? counts[i] - counts[i - 2] : counts[i];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32;
      x = Math.floor(x / 32);
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/**
 * Decodes COCO RLE counts into a row-major 0/1 bitmap of `height × width`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRle } from "./rle.ts";
 * // 2 × 3 image, column-major runs: 1 zero, 2 ones, 3 zeros -> pixels (x0,y1), (x1,y0)
 * assert.deepEqual(Array.from(decodeRle([1, 2, 3], 2, 3)), [0, 1, 0, 1, 0, 0]);
 * ```
 *
 * @param counts run lengths (list) or the compressed string
 * @param height image height (`size[0]` of the RLE)
 * @param width image width (`size[1]`)
 * @returns the bitmap, 1 = object
 * @throws {RangeError} when the runs are negative, not integers, or do not add up to
 *   `height · width`
 */
export function decodeRle(
  counts: readonly number[] | string,
  height: number,
  width: number,
): Uint8Array {
  const runs = typeof counts === "string" ? parseRleString(counts) : counts;
  const n = height * width;
  const out = new Uint8Array(n);
  let i = 0;
  for (let k = 0; k < runs.length; k++) {
    const r = runs[k];
    if (!Number.isInteger(r) || r < 0) {
      throw new RangeError(`RLE count ${k} is ${r}, counts must be non-negative integers`);
    }
    if (i + r > n) {
      throw new RangeError(`RLE counts cover more than the ${height}×${width} pixels`);
    }
    if (k % 2 === 1) {
      for (let j = i; j < i + r; j++) {
        const x = Math.floor(j / height), y = j - x * height;
        out[y * width + x] = 1;
      }
    }
    i += r;
  }
  if (i !== n) {
    throw new RangeError(`RLE counts cover ${i} pixels, the mask has ${height}×${width} = ${n}`);
  }
  return out;
}
