/**
 * Private: what the image codecs share: error messages prefixed with the file name, the pixel
 * limit checked from a header before decoding, allocation that fails with a clear message,
 * length checks and RGBA-to-RGB row conversion.
 *
 * @module
 */
import { DEFAULT_MAX_PIXELS, ImageError } from "./image_types.ts";

/** Throws an {@linkcode ImageError}, its message prefixed with the file name when known. */
export function fail(name: string | undefined, message: string): never {
  throw new ImageError(name ? `${name}: ${message}` : message);
}

// Largest pixel count we try to allocate for: 4 bytes/pixel must stay below 2^32 bytes.
export const MAX_PIXELS = 0x3fffffff;

/** Throws when a `width` x `height` image is over the limit (checked before decoding). */
export function checkPixels(
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

/** Converts `count` RGBA pixels from `src` (pixel `start` on) to float RGB in `out`. */
export function rgba8RowToRgb(
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

/** Throws a RangeError naming `what` when a buffer does not have the expected length. */
export function checkLength(actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new RangeError(`${what} has length ${actual}, expected ${expected}`);
  }
}

/** A new `ctor(length)` buffer, or an {@linkcode ImageError} naming the image size when it cannot be had. */
export function allocate<T>(
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
