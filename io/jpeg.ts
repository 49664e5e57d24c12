/**
 * JPEG: the header (size, colour transform, EXIF orientation) read by gradual, the pixels by
 * imagescript's WebAssembly decoder, scaled down by the DCT where a big photo allows it, or by
 * `createImageBitmap` + `OffscreenCanvas` in browsers.
 *
 * @module
 */
import { type DecodeLimits, DEFAULT_MAX_PIXELS, type Rgba8Image } from "./image_types.ts";
import { allocate, checkPixels, fail } from "./_pixels.ts";

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

export async function decodeJpeg(
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
