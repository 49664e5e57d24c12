/**
 * Colormaps for saliency heatmaps: 256-entry RGB lookup tables.
 *
 * - `jet`: matplotlib's piecewise-linear `jet` segment data, evaluated at 256 points and
 *   converted to bytes the way `cmap(x, bytes=True)` does (`floor(255 * v)`).
 * - `turbo`, `viridis`, `inferno`: piecewise-linear interpolation through 52 anchor colours
 *   (every 5th entry of the reference 256-entry tables, `t = k / 51`); at most 1/255 off the
 *   references (turbo: Google AI, Apache-2.0; viridis / inferno: matplotlib, CC0).
 * - `gray`: identity ramp.
 *
 * A value `v` in [0, 1] picks entry `min(255, floor(256 * v))` (matplotlib's rule); values
 * outside are clamped and NaN maps to entry 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyColormap } from "./colormap.ts";
 * const rgb = applyColormap(new Float32Array([0, 1]), "gray");
 * assert.deepEqual(Array.from(rgb), [0, 0, 0, 255, 255, 255]);
 * ```
 *
 * @module
 */

/** Names of the available colormaps. */
export type ColormapName = "jet" | "turbo" | "viridis" | "inferno" | "gray";

/** All colormap names, e.g. for CLI validation and help text. */
export const COLORMAPS: readonly ColormapName[] = Object.freeze([
  "jet",
  "turbo",
  "viridis",
  "inferno",
  "gray",
]);

// 52 anchors each, RGB hex, at t = 0, 1/51, ..., 1.
const ANCHORS: Record<"turbo" | "viridis" | "inferno", string> = {
  turbo: "30123b36215f3b2f803f3e9c424bb54559cb4666dd4773eb4680f6458cfd4099ff38a5fb2fb2f427bee9" +
    "1fc9dd1ad4d018ddc21ae4b622ebaa2ff19b3ff68a52fa7a65fd6979fe598bff4b9cfe40a9fb39b7f735c3f1" +
    "34d0ea34dbe236e5d938eecf3af5c53afaba39fdae35fea130fe932afc8423f9751df46617ef5811e84b0ce1" +
    "4109d83706ce2d04c32503b71d02a916019b0f018b09027a0403",
  viridis: "44015446085c471063481769481d6f482475472a7a46307e453781433d844142873f48893d4e8a3a538b" +
    "38598c355e8d33638d31688e2e6d8e2c718e2a768e297b8e27808e25848e23898e218e8d20928c1f978b1e9c" +
    "891fa18821a58524aa8328ae802eb37c35b7793dbc7446c06f50c46a5ac86465cb5e70cf577cd25089d54895" +
    "d840a2da37b0dd2fbddf26cae11fd8e219e5e419f1e51dfde725",
  inferno: "00000402020c0504170a072210092d160b391e0c45260c512f0a5b380962400a67490b6a510e6c59106e" +
    "61136e69166e71196e781c6d801f6c88226a902568982766a02a63a82e5fb0315bb73557bf3952c63d4dcc42" +
    "48d34743d94d3ddf5337e45a31e9612bed6925f1711ff47918f78212f98b0bfa9407fb9d07fca60cfcb014fb" +
    "ba1ffac42af8cd37f6d746f4e156f2ea69f2f27df5f992fcffa4",
};

// matplotlib's _jet_data: (x, y0, y1) anchors per channel (y0 === y1 here).
const JET: readonly (readonly (readonly [number, number])[])[] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];

/**
 * matplotlib's `_create_lookup_table` for one channel at N = 256, with the same floating-point
 * operation order (anchors scaled by 255, `xind = 255 * (i * (1 / 255))`, searchsorted-left),
 * then `cmap(x, bytes=True)`'s truncating `(v * 255).astype(uint8)`.
 */
function jetChannel(points: readonly (readonly [number, number])[], i: number): number {
  if (i === 0) return Math.floor(points[0][1] * 255);
  if (i === 255) return Math.floor(points[points.length - 1][1] * 255);
  const xind = 255 * (i * (1 / 255));
  let k = 1;
  while (points[k][0] * 255 < xind) k++;
  const x0 = points[k - 1][0] * 255, x1 = points[k][0] * 255;
  const distance = (xind - x0) / (x1 - x0);
  const v = distance * (points[k][1] - points[k - 1][1]) + points[k - 1][1];
  return Math.floor(Math.min(1, Math.max(0, v)) * 255);
}

function buildLut(name: ColormapName): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 3);
  if (name === "gray") {
    for (let i = 0; i < 256; i++) lut[3 * i] = lut[3 * i + 1] = lut[3 * i + 2] = i;
  } else if (name === "jet") {
    for (let i = 0; i < 256; i++) {
      for (let c = 0; c < 3; c++) lut[3 * i + c] = jetChannel(JET[c], i);
    }
  } else {
    const hex = ANCHORS[name];
    const k = hex.length / 6; // anchors
    const anchor = (j: number, c: number): number =>
      parseInt(hex.substring(6 * j + 2 * c, 6 * j + 2 * c + 2), 16);
    for (let i = 0; i < 256; i++) {
      const t = (i * (k - 1)) / 255;
      const j = Math.min(Math.floor(t), k - 2);
      const f = t - j;
      for (let c = 0; c < 3; c++) {
        lut[3 * i + c] = Math.round(anchor(j, c) + (anchor(j + 1, c) - anchor(j, c)) * f);
      }
    }
  }
  return lut;
}

const LUTS = new Map<ColormapName, Uint8ClampedArray>();

/**
 * The 256-entry lookup table of a colormap (RGB triples; a copy, safe to modify).
 *
 * @param name one of {@linkcode COLORMAPS}
 * @returns `768` bytes: entry i is `[3i, 3i + 1, 3i + 2]`
 * @throws {RangeError} for an unknown name
 */
export function colormapLut(name: ColormapName | string): Uint8ClampedArray {
  return lutOf(name).slice();
}

function lutOf(name: string): Uint8ClampedArray {
  if (!(COLORMAPS as readonly string[]).includes(name)) {
    throw new RangeError(`unknown colormap "${name}" (one of ${COLORMAPS.join(", ")})`);
  }
  let lut = LUTS.get(name as ColormapName);
  if (!lut) {
    lut = buildLut(name as ColormapName);
    LUTS.set(name as ColormapName, lut);
  }
  return lut;
}

/**
 * The LUT index of a value: `min(255, floor(256 * v))`, clamped, NaN -> 0.
 *
 * @param v a map value, nominally in [0, 1]
 * @returns an integer in 0..255
 */
export function colormapIndex(v: number): number {
  if (!(v > 0)) return 0;
  return v >= 1 ? 255 : Math.floor(v * 256);
}

/**
 * Colour a map of values in [0, 1].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyColormap } from "./colormap.ts";
 * const rgb = applyColormap(new Float32Array([0, 0.5, 1]), "jet");
 * assert.deepEqual(Array.from(rgb), [0, 0, 127, 124, 255, 121, 127, 0, 0]); // dark blue, green, dark red
 * ```
 *
 * @param map values in [0, 1] (clamped; NaN counts as 0)
 * @param name colormap name (default `"jet"`)
 * @returns interleaved RGB bytes, `3 * map.length`
 * @throws {RangeError} for an unknown colormap name
 */
export function applyColormap(
  map: Float32Array | ArrayLike<number>,
  name: ColormapName | string = "jet",
): Uint8ClampedArray {
  const lut = lutOf(name);
  const out = new Uint8ClampedArray(map.length * 3);
  for (let i = 0; i < map.length; i++) {
    const k = 3 * colormapIndex(map[i]);
    out[3 * i] = lut[k];
    out[3 * i + 1] = lut[k + 1];
    out[3 * i + 2] = lut[k + 2];
  }
  return out;
}
