/**
 * The centre baseline: a saliency map that ignores the image and the model and just points
 * at the middle. Objects in photographs (and in many datasets) are biased towards the
 * centre, so this map already scores well above chance on the pointing game; it is the
 * floor every explanation method has to beat before it can claim to localise anything.
 *
 * @module
 */

/** Centre-baseline sigma as a fraction of the image side: a quarter. */
export const CENTRE_SIGMA_FRACTION = 0.25;

/**
 * A centre-baseline map: an axis-aligned Gaussian at the image centre,
 * `exp(-((x - cx)² / (2 σx²) + (y - cy)² / (2 σy²)))` with the centre
 * `(cx, cy) = ((W - 1) / 2, (H - 1) / 2)` in pixel-centre coordinates and
 * `σx = W / 4`, `σy = H / 4` (a quarter of each side). Values in (0, 1], peak 1 at the centre
 * (a plateau of 4 maxima on even sides, 1 on odd sides).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { centreBaseline } from "./baseline.ts";
 * const map = centreBaseline(5, 5);
 * assert.equal(map[12], 1); // the centre pixel
 * ```
 *
 * @param height map height in pixels
 * @param width map width in pixels
 * @param sigmaFraction sigma as a fraction of each side (default 0.25)
 * @returns the map, row-major `height * width`
 */
export function centreBaseline(
  height: number,
  width: number,
  sigmaFraction: number = CENTRE_SIGMA_FRACTION,
): Float32Array {
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new RangeError("centreBaseline: height and width must be positive integers");
  }
  if (!(sigmaFraction > 0)) throw new RangeError("centreBaseline: sigmaFraction must be > 0");
  const cy = (height - 1) / 2, cx = (width - 1) / 2;
  const sy = sigmaFraction * height, sx = sigmaFraction * width;
  const gx = new Float64Array(width);
  for (let x = 0; x < width; x++) gx[x] = Math.exp(-((x - cx) ** 2) / (2 * sx * sx));
  const out = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    const gy = Math.exp(-((y - cy) ** 2) / (2 * sy * sy));
    for (let x = 0; x < width; x++) out[y * width + x] = gy * gx[x];
  }
  return out;
}
