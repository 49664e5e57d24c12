/**
 * PNG, decoded and encoded by gradual's own code. The decoder reads every standard variant
 * (grayscale 1/2/4/8/16-bit, RGB 8/16, palette with tRNS, gray+alpha, RGBA, Adam7 interlaced),
 * inflating and unfiltering row by row; {@linkcode decodeImage} and
 * {@linkcode decodeImageRgba8} (`decode.ts`) are its entry points. The encoder
 * ({@linkcode encodePng}) writes 8-bit RGBA, or RGB when fully opaque, with adaptive filtering.
 *
 * @module
 */
import { ImageError } from "./image_types.ts";
import { checkLength, fail, MAX_PIXELS } from "./_pixels.ts";

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  palette: Uint8Array | null; // RGB triples
  trns: Uint8Array | null;
  idat: Uint8Array[];
}

export type PngSink =
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

/** Reads a PNG's chunks (size, format, palette, compressed data); throws on corrupt data. */
export function parsePng(bytes: Uint8Array, name: string | undefined): PngInfo {
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

/** Inflates, unfilters and de-interlaces the pixels of a parsed PNG into `sink`. */
export async function decodePngPixels(
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
 * import { encodePng } from "./png.ts";
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
