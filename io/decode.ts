/**
 * Decoding PNG and JPEG files, recognised by their magic bytes, to float RGB
 * ({@linkcode decodeImage}) or 8-bit RGBA ({@linkcode decodeImageRgba8}).
 *
 * @module
 */
import type {
  AlphaMode,
  DecodeLimits,
  DecodeOptions,
  ImageFormat,
  Rgba8Image,
  Rgba8Source,
  RgbImage,
} from "./image_types.ts";
import { allocate, checkLength, checkPixels, fail, rgba8RowToRgb } from "./_pixels.ts";
import { decodeJpeg } from "./jpeg.ts";
import { decodePngPixels, parsePng } from "./png.ts";

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
 * import { decodeImage } from "./decode.ts";
 * import { encodePng } from "./png.ts";
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
 * import { decodeImageRgba8 } from "./decode.ts";
 * import { encodePng } from "./png.ts";
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
