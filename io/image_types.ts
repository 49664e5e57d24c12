/**
 * The images gradual reads and writes, as plain typed arrays: float RGB, 8-bit RGBA, the
 * decoding limits and the error every codec throws.
 *
 * @module
 */

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
