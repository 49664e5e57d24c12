/**
 * Image input/output for the saliency pipeline: PNG/JPEG decoding, bilinear / area resizing,
 * model-input preprocessing and PNG encoding.
 *
 * Everything here works on bytes and typed arrays only (no file system, no Deno APIs), so it
 * runs in Deno and in browsers alike.
 *
 * Memory: a 10000x10000 photo is 400 MB as 8-bit RGBA but 1.2 GB as float RGB. The pipeline
 * {@linkcode prepareInput} therefore decodes to 8-bit RGBA ({@linkcode decodeImageRgba8}) and
 * resizes straight to float model input ({@linkcode resizeRgba8ToRgb}), so no full-size float
 * copy is ever held. {@linkcode decodeImage} (full-size float) is for small images and tests.
 *
 * @example Decode, resize and normalise a photo for a 224x224 ImageNet model
 * ```ts
 * import { prepareInput } from "./image.ts";
 * const png = new Uint8Array(0); // e.g. await Deno.readFile("fox.png") in the CLI
 * if (png.length > 0) {
 *   const { input, original } = await prepareInput(png, 224, 224, "imagenet");
 *   console.log(input.length === 224 * 224 * 3, original.width, original.height);
 * }
 * ```
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Types and errors
// ---------------------------------------------------------------------------------------------

/** An RGB image: HWC interleaved float values in [0, 1], `data.length === width * height * 3`. */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Row-major RGB triples, values in [0, 1]. */
  data: Float32Array;
}

/** An 8-bit RGBA image (straight, not premultiplied alpha), `data.length === width * height * 4`. */
export interface Rgba8Image {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Row-major RGBA quadruples, 0..255. */
  data: Uint8ClampedArray;
}

/** Any 8-bit RGBA pixel buffer accepted as input (e.g. a canvas `ImageData`). */
export interface Rgba8Source {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Row-major RGBA quadruples, 0..255. */
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * Thrown for data that is not a decodable PNG or JPEG image. The message is one line, e.g.
 * `"not a PNG or JPEG image"` or `"photo.png: truncated or corrupt PNG: CRC mismatch in IDAT"`.
 */
export class ImageError extends Error {
  /**
   * Create an image error.
   *
   * @param message one-line, human-readable reason
   */
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

/**
 * How transparency is turned into RGB: `"drop"` ignores alpha and keeps the stored colour
 * (what PIL's `convert("RGB")` and `tf.decodePng(…, 3)` do, the default); `"white"` composites
 * the pixel over a white background.
 */
export type AlphaMode = "drop" | "white";

/**
 * Default largest image, in pixels, that the decoders accept (100 megapixels: 400 MB as
 * 8-bit RGBA). The size is read from the header (PNG IHDR, JPEG SOF) before anything is
 * allocated, so a small file claiming a huge size (a decompression bomb) fails at once.
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** Limits and scaling of the 8-bit decoder ({@linkcode decodeImageRgba8}). */
export interface DecodeLimits {
  /** Largest accepted width x height (default {@linkcode DEFAULT_MAX_PIXELS}). */
  maxPixels?: number;
  /**
   * Decode a JPEG at the smallest of 1/1, 1/2, 1/4, 1/8 scale (DCT scaling: cheaper in time
   * and memory) whose result is still at least this size; PNGs are always decoded at full size.
   */
  atLeast?: { width: number; height: number };
}

/** Options of {@linkcode decodeImage}. */
export interface DecodeOptions extends DecodeLimits {
  /** Alpha handling; default `"drop"`. */
  alpha?: AlphaMode;
}

/** Image container formats recognised by their magic bytes. */
export type ImageFormat = "png" | "jpeg";

/**
 * Recognise PNG / JPEG by magic bytes (never by file name).
 *
 * @param bytes the file contents
 * @returns the format, or `null` for anything else
 */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (
    bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47 && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a &&
    bytes[7] === 0x0a
  ) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return null;
}

function fail(name: string | undefined, message: string): never {
  throw new ImageError(name ? `${name}: ${message}` : message);
}

// Largest pixel count we try to allocate for: 4 bytes/pixel must stay below 2^32 bytes.
const MAX_PIXELS = 0x3fffffff;

/** Throws when a `width` x `height` image is over the limit (checked before decoding). */
function checkPixels(
  width: number,
  height: number,
  limit: number | undefined,
  name: string | undefined,
): void {
  const max = Math.min(limit ?? DEFAULT_MAX_PIXELS, MAX_PIXELS);
  if (width * height > max) {
    const mp = (v: number): string =>
      v >= 1e6 ? `${+(v / 1e6).toFixed(1)} megapixels` : `${v} pixels`;
    fail(
      name,
      `image is ${width}x${height} (${mp(width * height)}), over the limit of ${mp(max)}` +
        (max < MAX_PIXELS ? " (raise it with --max-pixels / the maxPixels option)" : ""),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding: public entry points
// ---------------------------------------------------------------------------------------------

/**
 * Decode a PNG or JPEG (detected by magic bytes) to a float RGB image in [0, 1].
 *
 * PNG: every standard variant (grayscale 1/2/4/8/16-bit, RGB 8/16, palette 1/2/4/8 with tRNS,
 * gray+alpha, RGBA, Adam7 interlaced) is decoded by the built-in decoder; 16-bit samples keep
 * their full precision (`v / 65535`). JPEG is decoded by imagescript's WebAssembly decoder
 * (baseline/progressive, gray/RGB/CMYK/YCCK with the colours browsers show), or by
 * `createImageBitmap` + `OffscreenCanvas` where those exist (browsers); EXIF orientation is
 * applied, and a JPEG whose data ends early is refused. Images over `opts.maxPixels`
 * ({@linkcode DEFAULT_MAX_PIXELS}) are refused from their header.
 *
 * Alpha is dropped by default (see {@linkcode AlphaMode}). This holds a full-size float copy
 * (12 bytes/pixel); for big photos use {@linkcode prepareInput} / {@linkcode decodeImageRgba8}.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = await encodePng(1, 1, new Uint8Array([255, 0, 0, 255]));
 * const img = await decodeImage(png);
 * console.log(img.width, img.height, img.data); // 1 1 Float32Array [1, 0, 0]
 * ```
 *
 * @param bytes encoded PNG or JPEG file contents
 * @param name optional file name, used only to prefix error messages
 * @param opts alpha handling, pixel limit, JPEG scaling
 * @returns the decoded image
 * @throws {ImageError} for unknown, truncated or corrupt data
 */
export async function decodeImage(
  bytes: Uint8Array,
  name?: string,
  opts: DecodeOptions = {},
): Promise<RgbImage> {
  const white = (opts.alpha ?? "drop") === "white";
  const format = detectImageFormat(bytes);
  if (format === "png") {
    const png = parsePng(bytes, name);
    checkPixels(png.width, png.height, opts.maxPixels, name);
    const data = allocate(png.width * png.height * 3, Float32Array, name, png);
    await decodePngPixels(png, { kind: "rgbf", out: data, white }, name);
    return { width: png.width, height: png.height, data };
  }
  if (format === "jpeg") {
    const rgba = await decodeJpeg(bytes, name, opts);
    return rgba8ToRgb(rgba, opts.alpha);
  }
  return fail(name, "not a PNG or JPEG image");
}

/**
 * Decode a PNG or JPEG to 8-bit RGBA (alpha preserved; opaque formats get alpha 255).
 * 16-bit PNG samples are rounded to 8 bits (`round(v / 257)`). This is the memory-friendly
 * entry point for big photos: 4 bytes per pixel, and PNG rows are inflated and unfiltered in
 * a streaming fashion (only two scanlines of raw data are held).
 *
 * @example
 * ```ts
 * import { decodeImageRgba8, encodePng } from "./image.ts";
 * const png = await encodePng(2, 1, new Uint8Array([0, 0, 0, 255, 255, 255, 255, 128]));
 * const img = await decodeImageRgba8(png);
 * console.log(img.data); // Uint8ClampedArray [0, 0, 0, 255, 255, 255, 255, 128]
 * ```
 *
 * JPEGs get the colours browsers show (CMYK and YCCK too) and their EXIF orientation; a JPEG
 * whose data ends early is refused rather than padded. `limits.maxPixels` bounds the size
 * (read from the header first) and `limits.atLeast` lets a big JPEG decode at reduced scale.
 *
 * @param bytes encoded PNG or JPEG file contents
 * @param name optional file name, used only to prefix error messages
 * @param limits pixel limit and JPEG scaling
 * @returns the decoded image
 * @throws {ImageError} for unknown, truncated, corrupt or too large data
 */
export async function decodeImageRgba8(
  bytes: Uint8Array,
  name?: string,
  limits: DecodeLimits = {},
): Promise<Rgba8Image> {
  const format = detectImageFormat(bytes);
  if (format === "png") {
    const png = parsePng(bytes, name);
    checkPixels(png.width, png.height, limits.maxPixels, name);
    const data = allocate(png.width * png.height * 4, Uint8ClampedArray, name, png);
    await decodePngPixels(png, { kind: "rgba8", out: data }, name);
    return { width: png.width, height: png.height, data };
  }
  if (format === "jpeg") return await decodeJpeg(bytes, name, limits);
  return fail(name, "not a PNG or JPEG image");
}

/**
 * Convert an 8-bit RGBA image to float RGB in [0, 1].
 *
 * @param img the RGBA pixels
 * @param alpha `"drop"` (default) or `"white"` (composite over white)
 * @returns a new float image
 */
export function rgba8ToRgb(img: Rgba8Source, alpha: AlphaMode = "drop"): RgbImage {
  const n = img.width * img.height;
  checkLength(img.data.length, n * 4, "RGBA data");
  const out = new Float32Array(n * 3);
  rgba8RowToRgb(img.data, 0, n, out, alpha === "white");
  return { width: img.width, height: img.height, data: out };
}

function rgba8RowToRgb(
  src: Uint8Array | Uint8ClampedArray,
  start: number,
  count: number,
  out: Float32Array,
  white: boolean,
): void {
  for (let i = 0, s = start * 4, o = 0; i < count; i++, s += 4, o += 3) {
    if (white) {
      const a = src[s + 3] / 255;
      out[o] = (src[s] / 255) * a + (1 - a);
      out[o + 1] = (src[s + 1] / 255) * a + (1 - a);
      out[o + 2] = (src[s + 2] / 255) * a + (1 - a);
    } else {
      out[o] = src[s] / 255;
      out[o + 1] = src[s + 1] / 255;
      out[o + 2] = src[s + 2] / 255;
    }
  }
}

function checkLength(actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new RangeError(`${what} has length ${actual}, expected ${expected}`);
  }
}

function allocate<T>(
  length: number,
  ctor: new (n: number) => T,
  name: string | undefined,
  size: { width: number; height: number },
): T {
  try {
    return new ctor(length);
  } catch {
    return fail(name, `image too large to decode (${size.width}x${size.height})`);
  }
}

// ---------------------------------------------------------------------------------------------
// PNG decoder (own implementation: chunk parsing, streaming inflate, unfilter, Adam7, palette)
// ---------------------------------------------------------------------------------------------

interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  palette: Uint8Array | null; // RGB triples
  trns: Uint8Array | null;
  idat: Uint8Array[];
}

type PngSink =
  | { kind: "rgba8"; out: Uint8ClampedArray }
  | { kind: "rgbf"; out: Float32Array; white: boolean };

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number, crc = 0): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

function parsePng(bytes: Uint8Array, name: string | undefined): PngInfo {
  const corrupt = (why: string): never => fail(name, `truncated or corrupt PNG: ${why}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let info: PngInfo | null = null;
  let sawEnd = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) corrupt("unexpected end of file");
    const len = view.getUint32(pos);
    const type = String.fromCharCode(
      bytes[pos + 4],
      bytes[pos + 5],
      bytes[pos + 6],
      bytes[pos + 7],
    );
    if (!/^[A-Za-z]{4}$/.test(type)) corrupt("invalid chunk type");
    const dataStart = pos + 8;
    const dataEnd = dataStart + len;
    if (len > 0x7fffffff || dataEnd + 4 > bytes.length) corrupt("unexpected end of file");
    const critical = type.charCodeAt(0) < 97; // upper-case first letter
    const crcOk = crc32(bytes, pos + 4, dataEnd) === view.getUint32(dataEnd);
    pos = dataEnd + 4;
    if (!crcOk) {
      if (critical) corrupt(`CRC mismatch in ${type}`);
      continue; // like libpng: ancillary chunks with a bad CRC are skipped
    }
    const data = bytes.subarray(dataStart, dataEnd);
    if (info === null) {
      if (type !== "IHDR" || len !== 13) corrupt("missing IHDR");
      const width = view.getUint32(dataStart);
      const height = view.getUint32(dataStart + 4);
      const bitDepth = data[8], colorType = data[9], interlace = data[12];
      if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
        corrupt(`invalid size ${width}x${height}`);
      }
      if (!(colorType in DEPTHS) || !DEPTHS[colorType].includes(bitDepth)) {
        fail(name, `unsupported PNG: color type ${colorType} with bit depth ${bitDepth}`);
      }
      if (data[10] !== 0 || data[11] !== 0 || interlace > 1) {
        fail(name, "unsupported PNG: unknown compression, filter or interlace method");
      }
      if (width * height > MAX_PIXELS) {
        fail(name, `image too large to decode (${width}x${height})`);
      }
      info = {
        width,
        height,
        bitDepth,
        colorType,
        interlace,
        palette: null,
        trns: null,
        idat: [],
      };
      continue;
    }
    if (type === "IDAT") info.idat.push(data);
    else if (type === "PLTE") {
      if (len % 3 !== 0 || len === 0 || len > 768) corrupt("invalid PLTE chunk");
      info.palette = data;
    } else if (type === "tRNS") info.trns = data;
    else if (type === "IEND") {
      sawEnd = true;
      break;
    } else if (type === "IHDR") corrupt("duplicate IHDR");
    else if (critical) fail(name, `unsupported PNG: unknown critical chunk ${type}`);
  }
  if (info === null) return corrupt("missing IHDR");
  if (info.idat.length === 0) corrupt(sawEnd ? "no image data" : "unexpected end of file");
  if (info.colorType === 3 && info.palette === null) corrupt("palette image without PLTE");
  return info;
}

const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  w: number;
  h: number;
}

function pngPasses(info: PngInfo): Pass[] {
  if (info.interlace === 0) {
    return [{ x0: 0, y0: 0, dx: 1, dy: 1, w: info.width, h: info.height }];
  }
  const passes: Pass[] = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = info.width > x0 ? Math.ceil((info.width - x0) / dx) : 0;
    const h = info.height > y0 ? Math.ceil((info.height - y0) / dy) : 0;
    if (w > 0 && h > 0) passes.push({ x0, y0, dx, dy, w, h });
  }
  return passes;
}

function unfilter(ft: number, cur: Uint8Array, prev: Uint8Array, bpp: number): boolean {
  const n = cur.length;
  switch (ft) {
    case 0:
      return true;
    case 1:
      for (let i = bpp; i < n; i++) cur[i] = (cur[i] + cur[i - bpp]) & 0xff;
      return true;
    case 2:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + prev[i]) & 0xff;
      return true;
    case 3:
      for (let i = 0; i < bpp; i++) cur[i] = (cur[i] + (prev[i] >> 1)) & 0xff;
      for (let i = bpp; i < n; i++) cur[i] = (cur[i] + ((cur[i - bpp] + prev[i]) >> 1)) & 0xff;
      return true;
    case 4:
      for (let i = 0; i < bpp; i++) cur[i] = (cur[i] + prev[i]) & 0xff;
      for (let i = bpp; i < n; i++) {
        const a = cur[i - bpp], b = prev[i], c = prev[i - bpp];
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        cur[i] = (cur[i] + pred) & 0xff;
      }
      return true;
    default:
      return false;
  }
}

/** Expands one unfiltered scanline to RGBA samples in [0, max] (max = 255 or 65535). */
function expandRow(info: PngInfo, raw: Uint8Array, w: number, out: Uint16Array): void {
  const { bitDepth: d, colorType: ct, trns, palette } = info;
  const max = d === 16 ? 65535 : 255;
  if (ct === 0 || ct === 3) {
    const key = ct === 0 && trns && trns.length >= 2 ? (trns[0] << 8) | trns[1] : -1;
    const mask = (1 << Math.min(d, 8)) - 1;
    const scale = d < 8 ? 255 / mask : 1;
    const pal = palette!;
    const palN = ct === 3 ? pal.length / 3 : 0;
    for (let x = 0, o = 0; x < w; x++, o += 4) {
      let s: number;
      if (d === 16) s = (raw[2 * x] << 8) | raw[2 * x + 1];
      else if (d === 8) s = raw[x];
      else {
        const bit = x * d;
        s = (raw[bit >> 3] >> (8 - d - (bit & 7))) & mask;
      }
      if (ct === 0) {
        const v = s * scale;
        out[o] = out[o + 1] = out[o + 2] = v;
        out[o + 3] = s === key ? 0 : max;
      } else if (s < palN) {
        out[o] = pal[3 * s];
        out[o + 1] = pal[3 * s + 1];
        out[o + 2] = pal[3 * s + 2];
        out[o + 3] = trns && s < trns.length ? trns[s] : 255;
      } else { // out-of-range index: opaque black, as browsers show it
        out[o] = out[o + 1] = out[o + 2] = 0;
        out[o + 3] = 255;
      }
    }
    return;
  }
  const ch = CHANNELS[ct];
  const wide = d === 16;
  const sample = (i: number): number => wide ? (raw[2 * i] << 8) | raw[2 * i + 1] : raw[i];
  if (ct === 4) {
    for (let x = 0, o = 0; x < w; x++, o += 4) {
      const g = sample(x * 2);
      out[o] = out[o + 1] = out[o + 2] = g;
      out[o + 3] = sample(x * 2 + 1);
    }
    return;
  }
  const keyed = ct === 2 && trns !== null && trns.length >= 6;
  for (let x = 0, o = 0; x < w; x++, o += 4) {
    const i = x * ch;
    const r = sample(i), g = sample(i + 1), b = sample(i + 2);
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = b;
    if (ct === 6) out[o + 3] = sample(i + 3);
    else {
      out[o + 3] = keyed && r === ((trns![0] << 8) | trns![1]) &&
          g === ((trns![2] << 8) | trns![3]) && b === ((trns![4] << 8) | trns![5])
        ? 0
        : max;
    }
  }
}

function writeRow(
  sink: PngSink,
  info: PngInfo,
  pass: Pass,
  py: number,
  px: Uint16Array,
): void {
  const max = info.bitDepth === 16 ? 65535 : 255;
  const y = pass.y0 + py * pass.dy;
  const W = info.width;
  if (sink.kind === "rgba8") {
    const out = sink.out;
    for (let x = 0; x < pass.w; x++) {
      const o = (y * W + pass.x0 + x * pass.dx) * 4, s = x * 4;
      if (max === 255) {
        out[o] = px[s];
        out[o + 1] = px[s + 1];
        out[o + 2] = px[s + 2];
        out[o + 3] = px[s + 3];
      } else {
        out[o] = ((px[s] + 128) / 257) | 0;
        out[o + 1] = ((px[s + 1] + 128) / 257) | 0;
        out[o + 2] = ((px[s + 2] + 128) / 257) | 0;
        out[o + 3] = ((px[s + 3] + 128) / 257) | 0;
      }
    }
    return;
  }
  const out = sink.out;
  for (let x = 0; x < pass.w; x++) {
    const o = (y * W + pass.x0 + x * pass.dx) * 3, s = x * 4;
    if (sink.white) {
      const a = px[s + 3] / max;
      out[o] = (px[s] / max) * a + (1 - a);
      out[o + 1] = (px[s + 1] / max) * a + (1 - a);
      out[o + 2] = (px[s + 2] / max) * a + (1 - a);
    } else {
      out[o] = px[s] / max;
      out[o + 1] = px[s + 1] / max;
      out[o + 2] = px[s + 2] / max;
    }
  }
}

async function decodePngPixels(
  info: PngInfo,
  sink: PngSink,
  name: string | undefined,
): Promise<void> {
  const corrupt = (why: string): never => fail(name, `truncated or corrupt PNG: ${why}`);
  const bitsPerPixel = CHANNELS[info.colorType] * info.bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = pngPasses(info);
  const maxRowBytes = Math.ceil((info.width * bitsPerPixel) / 8);
  let cur = new Uint8Array(maxRowBytes);
  let prev = new Uint8Array(maxRowBytes);
  const px = new Uint16Array(info.width * 4);

  let passIdx = 0;
  let py = 0;
  let rowBytes = Math.ceil((passes[0].w * bitsPerPixel) / 8);
  let filled = -1; // -1: expecting the filter byte
  let filterType = 0;
  let done = false;
  prev.fill(0, 0, rowBytes);

  const consume = (chunk: Uint8Array): void => {
    let i = 0;
    while (i < chunk.length && !done) {
      if (filled < 0) {
        filterType = chunk[i++];
        filled = 0;
        continue;
      }
      const take = Math.min(rowBytes - filled, chunk.length - i);
      cur.set(chunk.subarray(i, i + take), filled);
      filled += take;
      i += take;
      if (filled < rowBytes) break;
      const pass = passes[passIdx];
      const row = cur.subarray(0, rowBytes);
      if (!unfilter(filterType, row, prev, bpp)) corrupt(`bad filter type ${filterType}`);
      expandRow(info, row, pass.w, px);
      writeRow(sink, info, pass, py, px);
      const t = prev;
      prev = cur;
      cur = t;
      filled = -1;
      if (++py === pass.h) {
        py = 0;
        if (++passIdx === passes.length) {
          done = true;
          break;
        }
        rowBytes = Math.ceil((passes[passIdx].w * bitsPerPixel) / 8);
        prev.fill(0, 0, rowBytes);
      }
    }
  };

  const ds = new DecompressionStream("deflate");
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  const writing = (async () => {
    for (const chunk of info.idat) await writer.write(chunk as Uint8Array<ArrayBuffer>);
    await writer.close();
  })();
  writing.catch(() => {}); // errors surface through the reader (or are moot once done)
  let streamError = false;
  try {
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      consume(value);
    }
  } catch (e) {
    if (e instanceof ImageError) throw e;
    streamError = true;
  } finally {
    reader.cancel().catch(() => {}); // releases the stream (and a writer blocked on it)
  }
  if (!done) corrupt(streamError ? "bad compressed data" : "image data ends early");
}

// ---------------------------------------------------------------------------------------------
// JPEG (imagescript's WebAssembly decoder; canvas in browsers)
// ---------------------------------------------------------------------------------------------

interface JpegFramebuffer {
  width: number;
  height: number;
  format: number; // 0 gray, 1 RGB, 2 CMYK
  buffer: Uint8Array;
}

interface JpegLib {
  init(): Promise<{ decode(data: Uint8Array, width?: number, height?: number): JpegFramebuffer }>;
}

let jpegLib: Promise<JpegLib> | null = null;

/** What the markers of a JPEG say (read before decoding). */
export interface JpegHeader {
  /** Width from the frame header. */
  width: number;
  /** Height from the frame header. */
  height: number;
  /** Number of colour components (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK). */
  components: number;
  /** Adobe APP14 colour transform (0 none, 1 YCbCr, 2 YCCK), or null without that segment. */
  adobeTransform: number | null;
  /** EXIF orientation 1..8 (1 when absent). */
  orientation: number;
}

function u16be(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

/** The EXIF orientation (1..8) in an APP1 segment body, or 1 (malformed EXIF is ignored). */
function exifOrientationOf(body: Uint8Array): number {
  if (body.length < 14 || String.fromCharCode(...body.subarray(0, 4)) !== "Exif") return 1;
  const t = body.subarray(6);
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return 1;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const ifd = view.getUint32(4, le);
  if (ifd + 2 > t.length) return 1;
  const count = view.getUint16(ifd, le);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > t.length) return 1;
    if (view.getUint16(e, le) === 0x0112 && view.getUint16(e + 2, le) === 3) {
      const o = view.getUint16(e + 8, le);
      return o >= 1 && o <= 8 ? o : 1;
    }
  }
  return 1;
}

/**
 * Reads a JPEG's markers without decoding: size, components, Adobe transform and EXIF
 * orientation. Also checks that the data is complete: every scan ends in a marker, the file
 * has its end-of-image marker, and each scan holds at least the bits its blocks need (two per
 * block for sequential Huffman, one per block for a progressive first DC scan), so a file cut
 * short, or claiming a size its data cannot hold, is refused instead of decoded with padding.
 *
 * @param bytes the JPEG file contents
 * @param name optional file name for error messages
 * @param maxPixels refuse a frame over this many pixels, before reading on (default: no limit)
 * @returns the header facts
 * @throws {ImageError} for truncated or corrupt data, or a size over `maxPixels`
 */
export function readJpegHeader(bytes: Uint8Array, name?: string, maxPixels = Infinity): JpegHeader {
  const early = (why: string): never => fail(name, `truncated JPEG: ${why}`);
  const corrupt = (why: string): never => fail(name, `corrupt JPEG: ${why}`);
  let frame: {
    width: number;
    height: number;
    comps: { id: number; h: number; v: number }[];
    progressive: boolean;
    huffman: boolean;
  } | null = null;
  let adobeTransform: number | null = null;
  let orientation = 1;
  let pos = 2;
  for (;;) {
    // stray bytes before a marker are skipped, as libjpeg and browsers do
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++;
    if (pos >= bytes.length) early("the data ends before the end-of-image marker");
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) early("the data ends inside a marker");
    const m = bytes[pos++];
    if (m === 0xd9) break; // EOI
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // TEM, RSTn: no length
    if (pos + 2 > bytes.length) early("the data ends inside a segment");
    const len = u16be(bytes, pos);
    if (len < 2) corrupt(`bad segment length ${len}`);
    const end = pos + len;
    if (end > bytes.length) early("the data ends inside a segment");
    const body = bytes.subarray(pos + 2, end);
    pos = end;
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (body.length < 6) corrupt("short frame header");
      const nc = body[5];
      if (body.length < 6 + 3 * nc || nc === 0) corrupt("short frame header");
      const comps = Array.from({ length: nc }, (_, k) => ({
        id: body[6 + 3 * k],
        h: body[7 + 3 * k] >> 4 || 1,
        v: body[7 + 3 * k] & 15 || 1,
      }));
      frame = {
        width: u16be(body, 3),
        height: u16be(body, 1),
        comps,
        progressive: m === 0xc2 || m === 0xc6 || m === 0xca || m === 0xce,
        huffman: m < 0xc8,
      };
      if (frame.width === 0 || frame.height === 0) {
        fail(name, `unsupported JPEG: size ${frame.width}x${frame.height} in the frame header`);
      }
      if (maxPixels !== Infinity) checkPixels(frame.width, frame.height, maxPixels, name);
    } else if (
      m === 0xee && body.length >= 12 && String.fromCharCode(...body.subarray(0, 5)) === "Adobe"
    ) {
      adobeTransform = body[11];
    } else if (m === 0xe1 && orientation === 1) {
      orientation = exifOrientationOf(body);
    } else if (m === 0xda) {
      if (frame === null) corrupt("scan before the frame header");
      const ns = body[0];
      const ids = Array.from({ length: ns }, (_, k) => body[1 + 2 * k]);
      const ss = body[1 + 2 * ns], ah = body[3 + 2 * ns] >> 4;
      // entropy-coded data up to the next marker (stuffed 0xFF00 is one byte; RSTn skipped)
      let bytesIn = 0;
      let i = pos;
      for (;;) {
        if (i >= bytes.length) early("the image data ends early (no marker after the scan)");
        if (bytes[i] !== 0xff) {
          i++;
          bytesIn++;
          continue;
        }
        const next = bytes[i + 1];
        if (next === undefined) early("the image data ends early");
        if (next === 0x00) {
          i += 2;
          bytesIn++;
        } else if (next >= 0xd0 && next <= 0xd7) i += 2;
        else if (next === 0xff) i++;
        else break;
      }
      pos = i;
      const f = frame!;
      const hMax = Math.max(...f.comps.map((c) => c.h));
      const vMax = Math.max(...f.comps.map((c) => c.v));
      const scanComps = f.comps.filter((c) => ids.includes(c.id));
      let blocks = 0;
      if (scanComps.length === 1) {
        const c = scanComps[0];
        blocks = Math.ceil(Math.ceil((f.width * c.h) / hMax) / 8) *
          Math.ceil(Math.ceil((f.height * c.v) / vMax) / 8);
      } else {
        const mcus = Math.ceil(f.width / (8 * hMax)) * Math.ceil(f.height / (8 * vMax));
        blocks = mcus * scanComps.reduce((a, c) => a + c.h * c.v, 0);
      }
      const bitsPerBlock = !f.huffman ? 0 : !f.progressive ? 2 : ss === 0 && ah === 0 ? 1 : 0;
      if (bytesIn * 8 < blocks * bitsPerBlock) {
        early(
          `the image data ends early (${bytesIn} bytes of scan data for a ` +
            `${f.width}x${f.height} image need at least ${Math.ceil((blocks * bitsPerBlock) / 8)})`,
        );
      }
    }
  }
  if (frame === null) corrupt("no frame header");
  const f = frame!;
  return {
    width: f.width,
    height: f.height,
    components: f.comps.length,
    adobeTransform,
    orientation,
  };
}

/**
 * Turns the 8-bit image to EXIF `orientation` (1..8: 1 as stored, 6 = rotate 90 degrees
 * clockwise, 8 = counter-clockwise, 3 = 180, 2/4 = mirrored, 5/7 = transposed), as
 * browsers and image viewers show it.
 */
export function applyOrientation(img: Rgba8Image, orientation: number): Rgba8Image {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, data } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w, oh = swap ? w : h;
  const aligned = data.byteOffset % 4 === 0 ? data : data.slice();
  const src = new Uint32Array(aligned.buffer, aligned.byteOffset, w * h);
  const outData = new Uint8ClampedArray(ow * oh * 4);
  const out = new Uint32Array(outData.buffer);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number, sy: number;
      switch (orientation) {
        case 2:
          sx = w - 1 - x, sy = y;
          break;
        case 3:
          sx = w - 1 - x, sy = h - 1 - y;
          break;
        case 4:
          sx = x, sy = h - 1 - y;
          break;
        case 5:
          sx = y, sy = x;
          break;
        case 6:
          sx = y, sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y, sy = h - 1 - x;
          break;
        default: // 8
          sx = w - 1 - y, sy = x;
      }
      out[y * ow + x] = src[sy * w + sx];
    }
  }
  return { width: ow, height: oh, data: outData };
}

/** The 1/1, 1/2, 1/4 or 1/8 scale size of a `w` x `h` JPEG that is still at least `min`. */
function jpegScaledSize(
  w: number,
  h: number,
  min: { width: number; height: number } | undefined,
): [number, number] {
  if (min === undefined) return [w, h];
  let f = 1;
  while (f < 8 && Math.ceil(w / (2 * f)) >= min.width && Math.ceil(h / (2 * f)) >= min.height) {
    f *= 2;
  }
  return [Math.ceil(w / f), Math.ceil(h / f)];
}

/** An APP14 "Adobe" segment saying transform 0 (no colour transform), inserted after SOI. */
const ADOBE_NONE = new Uint8Array([
  0xff,
  0xee,
  0,
  14,
  0x41,
  0x64,
  0x6f,
  0x62,
  0x65,
  0,
  100,
  0,
  0,
  0,
  0,
  0,
]);

async function decodeJpeg(
  bytes: Uint8Array,
  name: string | undefined,
  limits: DecodeLimits = {},
): Promise<Rgba8Image> {
  const header = readJpegHeader(bytes, name, limits.maxPixels ?? DEFAULT_MAX_PIXELS);
  let decoder: { decode(data: Uint8Array, w?: number, h?: number): JpegFramebuffer } | null = null;
  try {
    if (jpegLib === null) {
      jpegLib = import("imagescript/wasm/node/jpeg.js").then((m) =>
        ((m as { default?: unknown }).default ?? m) as JpegLib
      );
    }
    decoder = await (await jpegLib).init();
  } catch {
    jpegLib = null; // imagescript's loader needs node:fs (Deno, Node, Bun); not in browsers
  }
  if (decoder === null) {
    const g = globalThis as unknown as Record<string, unknown>;
    if (typeof g.OffscreenCanvas === "function" && typeof g.createImageBitmap === "function") {
      return await decodeWithCanvas(bytes, name); // the browser applies the orientation
    }
    return fail(name, "no JPEG decoder available in this environment");
  }
  // 4 components without an Adobe segment: plain (not inverted) CMYK. The decoder reads only
  // Adobe files, so it gets one saying "no transform" and the inversion is undone below.
  const plainCmyk = header.components === 4 && header.adobeTransform === null;
  const input = plainCmyk
    ? new Uint8Array([0xff, 0xd8, ...ADOBE_NONE, ...bytes.subarray(2)])
    : bytes;
  const swap = header.orientation >= 5;
  const want = limits.atLeast === undefined
    ? undefined
    : swap
    ? { width: limits.atLeast.height, height: limits.atLeast.width }
    : limits.atLeast;
  const [sw, sh] = jpegScaledSize(header.width, header.height, want);
  let fb: JpegFramebuffer;
  try {
    fb = sw === header.width && sh === header.height
      ? decoder.decode(input)
      : decoder.decode(input, sw, sh);
  } catch {
    return fail(name, "truncated or corrupt JPEG");
  }
  const { width, height, format, buffer } = fb;
  const n = width * height;
  if (n === 0 || !(format in JPEG_CHANNELS) || buffer.length < n * JPEG_CHANNELS[format]) {
    return fail(name, "truncated or corrupt JPEG");
  }
  const out = allocate(n * 4, Uint8ClampedArray, name, fb);
  if (format === 0) {
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      out[o] = out[o + 1] = out[o + 2] = buffer[i];
      out[o + 3] = 255;
    }
  } else if (format === 1) {
    for (let i = 0, s = 0, o = 0; i < n; i++, s += 3, o += 4) {
      out[o] = buffer[s];
      out[o + 1] = buffer[s + 1];
      out[o + 2] = buffer[s + 2];
      out[o + 3] = 255;
    }
  } else {
    // The decoder returns ink amounts D = 255 - S of the Adobe-stored (inverted) values S
    // (for YCCK after its YCC-to-RGB step). Browsers show R = S_c * S_k / 255. A plain CMYK
    // file stores the ink itself, so there D is already what an Adobe file would store.
    for (let i = 0, s = 0; i < n; i++, s += 4) {
      const inv = (v: number): number => (plainCmyk ? v : 255 - v);
      const k = inv(buffer[s + 3]);
      out[s] = (inv(buffer[s]) * k) / 255;
      out[s + 1] = (inv(buffer[s + 1]) * k) / 255;
      out[s + 2] = (inv(buffer[s + 2]) * k) / 255;
      out[s + 3] = 255;
    }
  }
  return applyOrientation({ width, height, data: out }, header.orientation);
}

const JPEG_CHANNELS: Record<number, number> = { 0: 1, 1: 3, 2: 4 };

async function decodeWithCanvas(bytes: Uint8Array, name: string | undefined): Promise<Rgba8Image> {
  const g = globalThis as unknown as {
    createImageBitmap(b: Blob, o?: Record<string, string>): Promise<
      { width: number; height: number; close(): void }
    >;
    OffscreenCanvas: new (w: number, h: number) => {
      getContext(t: "2d"): {
        drawImage(b: unknown, x: number, y: number): void;
        getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
      } | null;
    };
  };
  try {
    const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/jpeg" });
    const bmp = await g.createImageBitmap(blob, {
      premultiplyAlpha: "none",
      colorSpaceConversion: "none",
    });
    const canvas = new g.OffscreenCanvas(bmp.width, bmp.height);
    const ctx = canvas.getContext("2d")!;
    ctx.drawImage(bmp, 0, 0);
    const { width, height } = bmp; // read before close(), which zeroes them
    const data = ctx.getImageData(0, 0, width, height).data;
    bmp.close();
    return { width, height, data };
  } catch {
    return fail(name, "truncated or corrupt JPEG");
  }
}

// ---------------------------------------------------------------------------------------------
// Resampling (separable; bilinear with half-pixel centres, or area averaging when shrinking)
// ---------------------------------------------------------------------------------------------

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
 * import { resizeBilinear } from "./image.ts";
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

// ---------------------------------------------------------------------------------------------
// Preprocessing
// ---------------------------------------------------------------------------------------------

/**
 * Named input normalisations (input values are RGB in [0, 1]):
 * - `"imagenet"`: `(x - mean) / std`, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
 *   (torchvision / PyTorch models);
 * - `"unit"`: x in [0, 1];
 * - `"symmetric"`: `2x - 1` in [-1, 1] (Keras MobileNet / Inception "tf" mode);
 * - `"caffe"`: BGR order, `255x - (103.939, 116.779, 123.68)` (Keras VGG16 / ResNet50);
 * - `"raw"`: `255x`, pixel values 0..255 (models that rescale inside, e.g. EfficientNet's
 *   `Rescaling` stem);
 * - `"none"`: values unchanged.
 */
export type PreprocessPreset = "imagenet" | "unit" | "symmetric" | "caffe" | "raw" | "none";

/**
 * A custom normalisation: `out[c] = (x[c'] * scale - mean[c]) / std[c]`, where `c' = 2 - c`
 * when `bgr` is set (channel order swapped before the mean is subtracted, so `mean`/`std` are in
 * output order). Fields left out come from `preset` (default `"none"`). `mean` / `std` take 1
 * (broadcast) or 3 values.
 */
export interface Preprocess {
  /** Base preset whose values the other fields override. */
  preset?: PreprocessPreset;
  /** Per-channel mean subtracted after scaling (output channel order). */
  mean?: number[];
  /** Per-channel divisor (output channel order). */
  std?: number[];
  /** Multiplier applied to the [0, 1] input first (e.g. 255). */
  scale?: number;
  /** Emit channels in BGR order. */
  bgr?: boolean;
}

interface ResolvedPreprocess {
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  bgr: boolean;
}

const PRESETS: Record<PreprocessPreset, ResolvedPreprocess> = {
  imagenet: { scale: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false },
  unit: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
  symmetric: { scale: 2, mean: [1, 1, 1], std: [1, 1, 1], bgr: false },
  caffe: { scale: 255, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true },
  raw: { scale: 255, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
  none: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
};

/** The preset names, in documentation order. */
export const PREPROCESS_PRESETS: readonly PreprocessPreset[] = Object.freeze([
  "imagenet",
  "unit",
  "symmetric",
  "caffe",
  "raw",
  "none",
]);

function triple(v: number[] | undefined, fallback: number[], what: string): [
  number,
  number,
  number,
] {
  const a = v ?? fallback;
  if (a.length === 1) return [a[0], a[0], a[0]];
  if (a.length === 3) return [a[0], a[1], a[2]];
  throw new RangeError(`preprocess ${what} needs 1 or 3 values, got ${a.length}`);
}

function resolvePreprocess(p: Preprocess | PreprocessPreset): ResolvedPreprocess {
  const spec: Preprocess = typeof p === "string" ? { preset: p } : p;
  const presetName = spec.preset ?? "none";
  const base = PRESETS[presetName];
  if (!base) {
    throw new RangeError(
      `unknown preprocess preset "${presetName}" (one of ${PREPROCESS_PRESETS.join(", ")})`,
    );
  }
  const std = triple(spec.std, base.std, "std");
  if (std.some((s) => s === 0 || !Number.isFinite(s))) {
    throw new RangeError("preprocess std values must be finite and non-zero");
  }
  return {
    scale: spec.scale ?? base.scale,
    mean: triple(spec.mean, base.mean, "mean"),
    std,
    bgr: spec.bgr ?? base.bgr,
  };
}

/**
 * Normalise an HWC RGB float buffer in place (see {@linkcode preprocess}).
 *
 * @param data `n * 3` floats, RGB in [0, 1]; overwritten
 * @param p a preset name or custom {@linkcode Preprocess}
 * @returns `data`
 */
export function preprocessInPlace(
  data: Float32Array,
  p: Preprocess | PreprocessPreset,
): Float32Array {
  if (data.length % 3 !== 0) throw new RangeError("preprocess expects RGB data (length % 3 == 0)");
  const { scale, mean, std, bgr } = resolvePreprocess(p);
  const [m0, m1, m2] = mean, [s0, s1, s2] = std;
  if (scale === 1 && !bgr && m0 === 0 && m1 === 0 && m2 === 0 && s0 === 1 && s1 === 1 && s2 === 1) {
    return data;
  }
  for (let i = 0; i < data.length; i += 3) {
    const g = data[i + 1] * scale;
    const r = (bgr ? data[i + 2] : data[i]) * scale;
    const b = (bgr ? data[i] : data[i + 2]) * scale;
    data[i] = (r - m0) / s0;
    data[i + 1] = (g - m1) / s1;
    data[i + 2] = (b - m2) / s2;
  }
  return data;
}

/**
 * Apply a model's input normalisation to an RGB image (values in [0, 1]).
 *
 * @example
 * ```ts
 * import { preprocess } from "./image.ts";
 * const img = { width: 1, height: 1, data: new Float32Array([1, 0.5, 0]) };
 * console.log(preprocess(img, "symmetric")); // Float32Array [1, 0, -1]
 * console.log(preprocess(img, { preset: "imagenet" })[0]); // (1 - 0.485) / 0.229
 * ```
 *
 * @param img RGB image in [0, 1]
 * @param p a preset name or custom {@linkcode Preprocess}
 * @returns a new HWC float array (`width * height * 3`), channel order BGR for `caffe`
 */
export function preprocess(img: RgbImage, p: Preprocess | PreprocessPreset): Float32Array {
  checkLength(img.data.length, img.width * img.height * 3, "RGB data");
  return preprocessInPlace(img.data.slice(), p);
}

/** Options of {@linkcode toModelInput} and {@linkcode prepareInput}. */
export interface PrepareOptions extends ResizeOptions {
  /** Alpha handling of RGBA sources; default `"drop"`. */
  alpha?: AlphaMode;
  /** File name for error messages. */
  name?: string;
}

/**
 * Resize an already-decoded image to the model's input size and normalise it.
 * Antialiasing defaults to true (area averaging when shrinking).
 *
 * @param img an 8-bit RGBA image or a float RGB image
 * @param width model input width
 * @param height model input height
 * @param p preset name or custom normalisation
 * @param opts resize / alpha options
 * @returns HWC float input, `width * height * 3`
 */
export function toModelInput(
  img: Rgba8Source | RgbImage,
  width: number,
  height: number,
  p: Preprocess | PreprocessPreset,
  opts: PrepareOptions = {},
): Float32Array {
  const ropts: ResizeOptions = {
    alignCorners: opts.alignCorners,
    antialias: opts.antialias ?? true,
  };
  const resized = img.data instanceof Float32Array
    ? resizeBilinear(img.data, img.width, img.height, 3, width, height, ropts)
    : resizeRgba8ToRgb(img as Rgba8Source, width, height, { ...ropts, alpha: opts.alpha });
  return preprocessInPlace(resized, p);
}

/** Result of {@linkcode prepareInput}. */
export interface PreparedInput {
  /** Normalised HWC float input, `width * height * 3`. */
  input: Float32Array;
  /** Model input width. */
  width: number;
  /** Model input height. */
  height: number;
  /** Size of the decoded source image. */
  original: { width: number; height: number };
}

/**
 * Decode (if given bytes), resize to the model input size and normalise, never holding a
 * full-size float copy of the photo.
 *
 * @example
 * ```ts
 * import { encodePng, prepareInput } from "./image.ts";
 * const png = await encodePng(2, 2, new Uint8Array(16).fill(255));
 * const { input, original } = await prepareInput(png, 4, 4, "unit");
 * console.log(input.length, original); // 48 { width: 2, height: 2 }
 * ```
 *
 * @param source encoded PNG/JPEG bytes, an 8-bit RGBA image, or a float RGB image
 * @param targetW model input width
 * @param targetH model input height
 * @param p preset name or custom normalisation (default `"imagenet"`)
 * @param opts resize (antialias defaults to true) / alpha options and a name for errors
 * @returns the input tensor data and the original size
 * @throws {ImageError} when the bytes are not a decodable image
 */
export async function prepareInput(
  source: Uint8Array | Rgba8Source | RgbImage,
  targetW: number,
  targetH: number,
  p: Preprocess | PreprocessPreset = "imagenet",
  opts: PrepareOptions = {},
): Promise<PreparedInput> {
  const img = source instanceof Uint8Array
    ? await decodeImageRgba8(source, opts.name)
    : source as Rgba8Source | RgbImage;
  return {
    input: toModelInput(img, targetW, targetH, p, opts),
    width: targetW,
    height: targetH,
    original: { width: img.width, height: img.height },
  };
}

// ---------------------------------------------------------------------------------------------
// PNG encoder (8-bit RGBA, or RGB when fully opaque; adaptive filtering; CompressionStream)
// ---------------------------------------------------------------------------------------------

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function filterRowAdaptive(
  row: Uint8Array,
  prev: Uint8Array | null,
  bpp: number,
  out: Uint8Array,
  scratch: Uint8Array,
): void {
  // tries the 5 filters and keeps the one with the smallest sum of |signed residuals|
  const n = row.length;
  let best = Infinity;
  for (let ft = 0; ft < 5; ft++) {
    if (prev === null && (ft === 2 || ft === 3 || ft === 4)) continue;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= bpp ? prev[i - bpp] : 0;
      let pred = 0;
      if (ft === 1) pred = a;
      else if (ft === 2) pred = b;
      else if (ft === 3) pred = (a + b) >> 1;
      else if (ft === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      const v = (row[i] - pred) & 0xff;
      scratch[i] = v;
      sum += v < 128 ? v : 256 - v;
      if (sum >= best) break;
    }
    if (sum < best) {
      best = sum;
      out[0] = ft;
      out.set(scratch.subarray(0, n), 1);
    }
  }
}

/**
 * Encode 8-bit RGBA pixels as a PNG (colour type 6; type 2 when every alpha is 255).
 *
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 * const png = await encodePng(1, 1, new Uint8Array([255, 0, 0, 255]));
 * console.log(png.subarray(1, 4)); // "PNG"
 * ```
 *
 * @param width image width
 * @param height image height
 * @param rgba `width * height * 4` bytes
 * @returns the PNG file bytes
 */
export async function encodePng(
  width: number,
  height: number,
  rgba: Uint8Array | Uint8ClampedArray,
): Promise<Uint8Array> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid PNG size ${width}x${height}`);
  }
  checkLength(rgba.length, width * height * 4, "RGBA data");
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) {
      opaque = false;
      break;
    }
  }
  const ch = opaque ? 3 : 4;
  const rowLen = width * ch;
  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = opaque ? 2 : 6;

  const cs = new CompressionStream("deflate");
  const writer = cs.writable.getWriter();
  const compressed: Uint8Array[] = [];
  const reading = (async () => {
    const reader = cs.readable.getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      compressed.push(value);
    }
  })();
  let prev: Uint8Array | null = null;
  let cur = new Uint8Array(rowLen);
  let other = new Uint8Array(rowLen);
  const scratch = new Uint8Array(rowLen);
  const batchRows = Math.max(1, Math.floor((1 << 20) / (rowLen + 1)));
  for (let y0 = 0; y0 < height; y0 += batchRows) {
    const rows = Math.min(batchRows, height - y0);
    const batch = new Uint8Array(rows * (rowLen + 1));
    for (let r = 0; r < rows; r++) {
      const y = y0 + r;
      if (ch === 4) cur.set(rgba.subarray(y * rowLen, (y + 1) * rowLen));
      else {
        for (let x = 0, s = y * width * 4, o = 0; x < width; x++, s += 4, o += 3) {
          cur[o] = rgba[s];
          cur[o + 1] = rgba[s + 1];
          cur[o + 2] = rgba[s + 2];
        }
      }
      filterRowAdaptive(
        cur,
        prev,
        ch,
        batch.subarray(r * (rowLen + 1), (r + 1) * (rowLen + 1)),
        scratch,
      );
      prev = cur;
      [cur, other] = [other, cur];
    }
    await writer.write(batch);
  }
  await writer.close();
  await reading;

  const idatLen = compressed.reduce((s, c) => s + c.length, 0);
  const idat = new Uint8Array(idatLen);
  let o = 0;
  for (const c of compressed) {
    idat.set(c, o);
    o += c.length;
  }
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
