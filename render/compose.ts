/**
 * Turning saliency maps into pictures: coloured heatmaps, heatmap-over-photo overlays at the
 * photo's original size, and the side-by-side comparison figure with titles.
 * All functions take and return 8-bit RGBA buffers (encode them with `encodePng`).
 *
 * @example Overlay a 7x7 Grad-CAM map on a photo and build a figure
 * ```ts
 * import { figure, heatmapRgba, overlay } from "./compose.ts";
 * const photo = { width: 64, height: 48, data: new Uint8ClampedArray(64 * 48 * 4).fill(200) };
 * const cam = new Float32Array(49).map((_, i) => i / 48);
 * const over = overlay(photo, cam, 7, 7, "jet", 0.5); // 64x48
 * const fig = figure([
 *   { image: photo, title: "input" },
 *   { image: heatmapRgba(cam, 7, 7, "jet"), title: "Grad-CAM" },
 *   { image: over, title: "Grad-CAM for fox" },
 * ]);
 * console.log(fig.width, fig.height);
 * ```
 *
 * @module
 */

import { resampleRows, resizeRgba8, type Rgba8Image, type Rgba8Source } from "../io/mod.ts";
import { colormapIndex, colormapLut, type ColormapName } from "./colormap.ts";
import { drawText, GLYPH_H, textWidth } from "./_font.ts";

function checkMap(map: ArrayLike<number>, w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) {
    throw new RangeError(`invalid map size ${w}x${h}`);
  }
  if (map.length !== w * h) {
    throw new RangeError(`map has ${map.length} values, expected ${w}x${h} = ${w * h}`);
  }
}

/**
 * Colour a saliency map (values in [0, 1], clamped) as an opaque RGBA image of the same size.
 *
 * @example
 * ```ts
 * import { heatmapRgba } from "./compose.ts";
 * const img = heatmapRgba(new Float32Array([0, 0.5, 1, 0.25]), 2, 2, "turbo");
 * console.log(img.width, img.height, img.data.length); // 2 2 16
 * ```
 *
 * @param map `width * height` values in [0, 1]
 * @param width map width
 * @param height map height
 * @param colormap colormap name (default `"jet"`)
 * @returns the coloured map
 */
export function heatmapRgba(
  map: Float32Array | ArrayLike<number>,
  width: number,
  height: number,
  colormap: ColormapName | string = "jet",
): Rgba8Image {
  checkMap(map, width, height);
  const lut = colormapLut(colormap);
  const out = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < map.length; i++) {
    const k = 3 * colormapIndex(map[i]);
    out[4 * i] = lut[k];
    out[4 * i + 1] = lut[k + 1];
    out[4 * i + 2] = lut[k + 2];
    out[4 * i + 3] = 255;
  }
  return { width, height, data: out };
}

/**
 * Blend a coloured saliency map over a photo at the photo's original size:
 * the map (mapWidth x mapHeight, values in [0, 1]) is bilinearly resized (half-pixel centres,
 * stretched to the photo's size and aspect), coloured, and mixed as
 * `out = (1 - alpha) * photo + alpha * heat`. The result is opaque. Works row by row, so a
 * 10000x10000 photo needs no full-size float copy of the map.
 *
 * @example
 * ```ts
 * import { overlay } from "./compose.ts";
 * const photo = { width: 4, height: 4, data: new Uint8ClampedArray(64).fill(255) };
 * const out = overlay(photo, new Float32Array([0, 1, 1, 0]), 2, 2, "jet", 0.4);
 * console.log(out.width, out.height); // 4 4
 * ```
 *
 * @param original the photo, 8-bit RGBA at its original size
 * @param map the saliency map, `mapWidth * mapHeight` values in [0, 1]
 * @param mapWidth map width
 * @param mapHeight map height
 * @param colormap colormap name (default `"jet"`)
 * @param alpha weight of the heatmap, 0..1 (default 0.5)
 * @returns a new opaque RGBA image of the photo's size
 */
export function overlay(
  original: Rgba8Source,
  map: Float32Array | ArrayLike<number>,
  mapWidth: number,
  mapHeight: number,
  colormap: ColormapName | string = "jet",
  alpha = 0.5,
): Rgba8Image {
  checkMap(map, mapWidth, mapHeight);
  const { width: W, height: H, data: photo } = original;
  if (photo.length !== W * H * 4) {
    throw new RangeError(`photo has ${photo.length} bytes, expected ${W}x${H}x4`);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  const lut = colormapLut(colormap);
  const out = new Uint8ClampedArray(W * H * 4);
  const src = map instanceof Float32Array ? map : Float32Array.from(map);
  resampleRows(
    mapWidth,
    mapHeight,
    1,
    (y) => src.subarray(y * mapWidth, (y + 1) * mapWidth),
    W,
    H,
    (y, row) => {
      for (let x = 0, o = y * W * 4; x < W; x++, o += 4) {
        const k = 3 * colormapIndex(row[x]);
        out[o] = (1 - alpha) * photo[o] + alpha * lut[k];
        out[o + 1] = (1 - alpha) * photo[o + 1] + alpha * lut[k + 1];
        out[o + 2] = (1 - alpha) * photo[o + 2] + alpha * lut[k + 2];
        out[o + 3] = 255;
      }
    },
    { antialias: true },
  );
  return { width: W, height: H, data: out };
}

/** One panel of a {@linkcode figure}. */
export interface FigurePanel {
  /** The picture (any size; scaled to the panel height keeping its aspect). */
  image: Rgba8Source;
  /** Caption drawn above the panel, e.g. "Grad-CAM for fox". */
  title: string;
}

/** Layout options of {@linkcode figure}. */
export interface FigureOptions {
  /** Height every panel is scaled to, px (default 224). */
  panelHeight?: number;
  /** Outer margin, px (default 12). */
  margin?: number;
  /** Space between panels, px (default 12). */
  gap?: number;
  /** Pixel multiplier of the 5x9 font (default 2, i.e. 18 px tall glyph cells). */
  titleScale?: number;
  /** Panel scaling: `"bilinear"` (area-averaged when shrinking; default) or `"nearest"`. */
  resample?: "bilinear" | "nearest";
  /** Background colour (default white). */
  background?: readonly [number, number, number];
  /** Title colour (default black). */
  textColor?: readonly [number, number, number];
}

function scaleNearest(img: Rgba8Source, w: number, h: number): Rgba8Image {
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(img.height - 1, Math.floor(((y + 0.5) * img.height) / h));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(img.width - 1, Math.floor(((x + 0.5) * img.width) / w));
      const s = (sy * img.width + sx) * 4, o = (y * w + x) * 4;
      out[o] = img.data[s];
      out[o + 1] = img.data[s + 1];
      out[o + 2] = img.data[s + 2];
      out[o + 3] = img.data[s + 3];
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * Fit a title into `maxWidth` pixels: the largest scale <= `scale` at which it fits whole,
 * else truncated with "…" at scale 1.
 *
 * @param title the caption
 * @param maxWidth available width, px
 * @param scale preferred font scale
 * @returns the text to draw and its scale
 */
export function fitTitle(
  title: string,
  maxWidth: number,
  scale: number,
): { text: string; scale: number } {
  for (let s = scale; s >= 1; s--) {
    if (textWidth(title, s) <= maxWidth) return { text: title, scale: s };
  }
  const chars = [...title];
  for (let k = chars.length - 1; k >= 0; k--) {
    const t = chars.slice(0, k).join("").trimEnd() + "\u2026";
    if (textWidth(t, 1) <= maxWidth) return { text: t, scale: 1 };
  }
  return { text: "", scale: 1 };
}

/**
 * Lays a title out on at most `maxLines` lines (greedy word wrap) at the largest scale from
 * `scale` down to 1 at which it fits `maxWidth`; falls back to one truncated line.
 *
 * @param title the text
 * @param maxWidth available width in pixels
 * @param scale preferred glyph scale
 * @param maxLines most lines allowed
 * @returns the lines and the scale used
 */
export function wrapTitle(
  title: string,
  maxWidth: number,
  scale: number,
  maxLines = 2,
): { lines: string[]; scale: number } {
  const words = title.split(/\s+/).filter((w) => w.length > 0);
  for (let s = scale; s >= 1; s--) {
    const lines: string[] = [];
    let ok = true;
    for (const w of words) {
      const last = lines.length ? lines[lines.length - 1] : undefined;
      if (last !== undefined && textWidth(`${last} ${w}`, s) <= maxWidth) {
        lines[lines.length - 1] = `${last} ${w}`;
      } else if (textWidth(w, s) <= maxWidth && lines.length < maxLines) {
        lines.push(w);
      } else {
        ok = false;
        break;
      }
    }
    if (ok) return { lines, scale: s };
  }
  const one = fitTitle(title, maxWidth, 1);
  return { lines: [one.text], scale: one.scale };
}

/**
 * The comparison figure of the paper: panels side by side on a white background, each scaled
 * to a common height and captioned above with a bitmap-font title (wrapped onto two lines, then
 * shrunk, then truncated with "…", when wider than its panel).
 *
 * @example
 * ```ts
 * import { figure } from "./compose.ts";
 * const img = { width: 10, height: 10, data: new Uint8ClampedArray(400).fill(128) };
 * const fig = figure([{ image: img, title: "input" }, { image: img, title: "Grad-CAM for fox" }]);
 * console.log(fig.width, fig.height); // 2*12 + 224 + 12 + 224 = 484, 12 + 18 + 6 + 224 + 12 = 272
 * ```
 *
 * @param panels the pictures and their titles, left to right (at least one)
 * @param opts layout options
 * @returns the figure as an opaque RGBA image
 */
export function figure(panels: FigurePanel[], opts: FigureOptions = {}): Rgba8Image {
  if (panels.length === 0) throw new RangeError("figure needs at least one panel");
  const ph = opts.panelHeight ?? 224;
  const margin = opts.margin ?? 12;
  const gap = opts.gap ?? 12;
  const titleScale = Math.max(1, Math.round(opts.titleScale ?? 2));
  const bg = opts.background ?? [255, 255, 255];
  const ink = opts.textColor ?? [0, 0, 0];
  for (const v of [ph, margin, gap]) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`invalid figure size option ${v}`);
  }
  if (ph < 1) throw new RangeError("panelHeight must be at least 1");
  const titleGap = 6;
  const lineGap = 2 * titleScale;
  const panelWidths = panels.map(({ image }) =>
    Math.max(1, Math.round((image.width * ph) / Math.max(1, image.height)))
  );
  const titles = panels.map((p, i) => wrapTitle(p.title, panelWidths[i], titleScale));
  const maxLines = Math.max(...titles.map((t) => t.lines.length));
  const titleH = maxLines * GLYPH_H * titleScale + (maxLines - 1) * lineGap;

  const scaled = panels.map(({ image }) => {
    if (
      image.width < 1 || image.height < 1 || image.data.length !== image.width * image.height * 4
    ) {
      throw new RangeError(`invalid panel image ${image.width}x${image.height}`);
    }
    const pw = Math.max(1, Math.round((image.width * ph) / image.height));
    if (pw === image.width && ph === image.height) return image;
    return opts.resample === "nearest"
      ? scaleNearest(image, pw, ph)
      : resizeRgba8(image, pw, ph, { antialias: true });
  });

  const W = 2 * margin + scaled.reduce((s, p) => s + p.width, 0) + gap * (panels.length - 1);
  const H = margin + titleH + titleGap + ph + margin;
  const out = new Uint8ClampedArray(W * H * 4);
  for (let i = 0; i < W * H; i++) {
    out[4 * i] = bg[0];
    out[4 * i + 1] = bg[1];
    out[4 * i + 2] = bg[2];
    out[4 * i + 3] = 255;
  }

  let x0 = margin;
  const top = margin + titleH + titleGap;
  scaled.forEach((img, i) => {
    // panel, composited over the background
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const s = (y * img.width + x) * 4, o = ((top + y) * W + x0 + x) * 4;
        const a = img.data[s + 3] / 255;
        out[o] = img.data[s] * a + bg[0] * (1 - a);
        out[o + 1] = img.data[s + 1] * a + bg[1] * (1 - a);
        out[o + 2] = img.data[s + 2] * a + bg[2] * (1 - a);
      }
    }
    // title: centred over the panel, bottom-aligned in the title band
    const { lines, scale } = titles[i];
    const lineH = GLYPH_H * scale + lineGap;
    lines.forEach((text, k) => {
      const tw = textWidth(text, scale);
      const tx = x0 + Math.floor((img.width - tw) / 2);
      const ty = margin + titleH - (lines.length - k) * lineH + lineGap;
      drawText(out, W, H, text, tx, ty, scale, ink);
    });
    x0 += img.width + gap;
  });
  return { width: W, height: H, data: out };
}
