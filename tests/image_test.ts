// Tests of io/ (codecs, resampling, preprocessing, NPY), render/colormap.ts and render/compose.ts.
// Every input is built in code: PNGs by the small reference encoder below (all colour types,
// bit depths, filters, Adam7, split IDAT) and JPEGs by imagescript's WebAssembly encoder.

import { assert, assertAlmostEquals, assertEquals } from "./_assert.ts";
import { chunk, concat, deflate } from "./_png.ts";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";
import {
  decodeImage,
  decodeImageRgba8,
  detectImageFormat,
  encodePng,
  ImageError,
  prepareInput,
  preprocess,
  resizeBilinear,
  resizeRgba8,
  resizeRgba8ToRgb,
  rgba8ToRgb,
  toModelInput,
} from "../io/mod.ts";
import { decodeNpy, encodeNpy, NpyError } from "../io/npy.ts";
import { applyColormap, colormapLut, COLORMAPS } from "../render/colormap.ts";
import { figure, fitTitle, heatmapRgba, overlay } from "../render/compose.ts";

/** Awaits `fn`, asserts it rejects with an instance of `cls`, and returns the error. */
async function rejectsErr<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
  msg?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof cls, `${msg ?? ""}: expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new Error(`${msg ?? ""}: expected a rejection with ${cls.name}`);
}

/** Asserts `fn` throws an instance of `cls` and returns the error. */
function throwsErr<E extends Error>(
  fn: () => unknown,
  cls: new (...args: never[]) => E,
  msg?: string,
): E {
  try {
    fn();
  } catch (e) {
    assert(e instanceof cls, `${msg ?? ""}: expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new Error(`${msg ?? ""}: expected a throw of ${cls.name}`);
}

// ------------------------------------------------------------------------------------------
// Reference PNG encoder (test-only): raw samples -> PNG with a chosen colour type / depth.
// ------------------------------------------------------------------------------------------

interface RawPng {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  samples: number[]; // width*height*channels raw sample values (palette: indices)
  palette?: number[]; // RGB triples
  trns?: number[]; // raw tRNS bytes
  interlace?: boolean;
  idatPieces?: number; // split IDAT into this many chunks
}
const CH = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function packRow(px: number[], d: number): Uint8Array {
  if (d === 16) {
    const out = new Uint8Array(px.length * 2);
    px.forEach((v, i) => {
      out[2 * i] = v >> 8;
      out[2 * i + 1] = v & 255;
    });
    return out;
  }
  const out = new Uint8Array(Math.ceil((px.length * d) / 8));
  px.forEach((v, i) => {
    const bit = i * d;
    out[bit >> 3] |= v << (8 - d - (bit & 7));
  });
  return out;
}

async function makePng(p: RawPng): Promise<Uint8Array> {
  const ch = CH[p.colorType];
  const bpp = Math.max(1, (ch * p.bitDepth) >> 3);
  const passes = p.interlace
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
      0,
      1,
      1,
      2,
    ]]
    : [[0, 0, 1, 1]];
  const rows: Uint8Array[] = [];
  let rowNo = 0;
  for (const [x0, y0, dx, dy] of passes) {
    let prev: Uint8Array | null = null;
    for (let y = y0; y < p.height; y += dy) {
      const px: number[] = [];
      for (let x = x0; x < p.width; x += dx) {
        for (let c = 0; c < ch; c++) px.push(p.samples[(y * p.width + x) * ch + c]);
      }
      if (px.length === 0) continue;
      const raw = packRow(px, p.bitDepth);
      const ft = rowNo++ % 5; // exercise every filter type
      const f = new Uint8Array(raw.length + 1);
      f[0] = ft;
      for (let i = 0; i < raw.length; i++) {
        const a = i >= bpp ? raw[i - bpp] : 0, b = prev ? prev[i] : 0;
        const c = prev && i >= bpp ? prev[i - bpp] : 0;
        const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ft];
        f[i + 1] = (raw[i] - pred) & 255;
      }
      rows.push(f);
      prev = raw;
    }
  }
  const z = await deflate(concat(rows));
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, p.width);
  v.setUint32(4, p.height);
  ihdr.set([p.bitDepth, p.colorType, 0, 0, p.interlace ? 1 : 0], 8);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr)];
  parts.push(chunk("tEXt", new TextEncoder().encode("Comment\0test")));
  if (p.palette) parts.push(chunk("PLTE", new Uint8Array(p.palette)));
  if (p.trns) parts.push(chunk("tRNS", new Uint8Array(p.trns)));
  const pieces = p.idatPieces ?? 1;
  const step = Math.ceil(z.length / pieces);
  for (let o = 0; o < z.length; o += step) parts.push(chunk("IDAT", z.subarray(o, o + step)));
  parts.push(chunk("IEND", new Uint8Array(0)));
  return concat(parts);
}

/** Deterministic pseudo-random integers. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
function randomSamples(n: number, max: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * (max + 1)));
}

/** Expected RGBA (in sample units) of each variant, written out independently. */
function expectRgba(p: RawPng): { rgba: number[]; max: number } {
  const n = p.width * p.height, ch = CH[p.colorType];
  const max = p.bitDepth === 16 ? 65535 : 255;
  const s = p.samples, out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = s.slice(i * ch, i * ch + ch);
    if (p.colorType === 0) {
      const g = v[0] * (p.bitDepth < 8 ? 255 / ((1 << p.bitDepth) - 1) : 1);
      const key = p.trns ? (p.trns[0] << 8) | p.trns[1] : -1;
      out.push(g, g, g, v[0] === key ? 0 : max);
    } else if (p.colorType === 2) {
      const t = p.trns;
      const keyed = t && v[0] === ((t[0] << 8) | t[1]) && v[1] === ((t[2] << 8) | t[3]) &&
        v[2] === ((t[4] << 8) | t[5]);
      out.push(v[0], v[1], v[2], keyed ? 0 : max);
    } else if (p.colorType === 3) {
      const pal = p.palette!;
      out.push(pal[3 * v[0]], pal[3 * v[0] + 1], pal[3 * v[0] + 2], p.trns?.[v[0]] ?? 255);
    } else if (p.colorType === 4) out.push(v[0], v[0], v[0], v[1]);
    else out.push(v[0], v[1], v[2], v[3]);
  }
  return { rgba: out, max };
}

async function checkVariant(p: RawPng, label: string): Promise<void> {
  const png = await makePng(p);
  const { rgba, max } = expectRgba(p);
  const f = await decodeImage(png, label);
  assertEquals([f.width, f.height], [p.width, p.height], label);
  const expF = new Float32Array(p.width * p.height * 3);
  for (let i = 0; i < p.width * p.height; i++) {
    for (let c = 0; c < 3; c++) expF[3 * i + c] = rgba[4 * i + c] / max;
  }
  assertEquals(f.data, expF, `${label}: float RGB`);
  const w = await decodeImage(png, label, { alpha: "white" });
  for (let i = 0; i < p.width * p.height; i++) {
    const a = rgba[4 * i + 3] / max;
    for (let c = 0; c < 3; c++) {
      assertAlmostEquals(w.data[3 * i + c], (rgba[4 * i + c] / max) * a + 1 - a, 1e-6, label);
    }
  }
  const b = await decodeImageRgba8(png, label);
  const exp8 = new Uint8ClampedArray(rgba.map((v) => max === 255 ? v : Math.round(v / 257)));
  assertEquals(b.data, exp8, `${label}: RGBA8`);
}

// ------------------------------------------------------------------------------------------
// PNG decoding
// ------------------------------------------------------------------------------------------

Deno.test("detectImageFormat uses magic bytes", () => {
  assertEquals(detectImageFormat(new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0])), "png");
  assertEquals(detectImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), "jpeg");
  assertEquals(detectImageFormat(new TextEncoder().encode("GIF89a")), null);
  assertEquals(detectImageFormat(new Uint8Array(0)), null);
});

Deno.test("PNG: every colour type and bit depth decodes exactly", async () => {
  let seed = 1;
  for (const [w, h] of [[1, 1], [5, 3], [17, 4]]) {
    for (const d of [1, 2, 4, 8, 16] as const) {
      await checkVariant(
        {
          width: w,
          height: h,
          colorType: 0,
          bitDepth: d,
          samples: randomSamples(w * h, (1 << d) - 1, seed++),
        },
        `gray${d} ${w}x${h}`,
      );
    }
    for (const d of [8, 16] as const) {
      const max = (1 << d) - 1;
      await checkVariant(
        {
          width: w,
          height: h,
          colorType: 2,
          bitDepth: d,
          samples: randomSamples(w * h * 3, max, seed++),
        },
        `rgb${d} ${w}x${h}`,
      );
      await checkVariant(
        {
          width: w,
          height: h,
          colorType: 4,
          bitDepth: d,
          samples: randomSamples(w * h * 2, max, seed++),
        },
        `gray+alpha${d} ${w}x${h}`,
      );
      await checkVariant(
        {
          width: w,
          height: h,
          colorType: 6,
          bitDepth: d,
          samples: randomSamples(w * h * 4, max, seed++),
        },
        `rgba${d} ${w}x${h}`,
      );
    }
    for (const d of [1, 2, 4, 8] as const) {
      const entries = Math.min(1 << d, 200);
      await checkVariant(
        {
          width: w,
          height: h,
          colorType: 3,
          bitDepth: d,
          samples: randomSamples(w * h, entries - 1, seed++),
          palette: randomSamples(entries * 3, 255, seed++),
          trns: randomSamples(Math.max(1, entries >> 1), 255, seed++), // partial tRNS
        },
        `palette${d} ${w}x${h}`,
      );
    }
  }
});

Deno.test("PNG: tRNS colour keys, Adam7 interlacing, split IDAT", async () => {
  // gray 8-bit key 7 and 16-bit RGB key
  await checkVariant(
    { width: 3, height: 2, colorType: 0, bitDepth: 8, samples: [7, 8, 7, 0, 255, 7], trns: [0, 7] },
    "gray key",
  );
  await checkVariant(
    {
      width: 2,
      height: 1,
      colorType: 2,
      bitDepth: 16,
      samples: [1000, 2000, 3000, 1000, 2000, 3001],
      trns: [1000 >> 8, 1000 & 255, 2000 >> 8, 2000 & 255, 3000 >> 8, 3000 & 255],
    },
    "rgb16 key",
  );
  let seed = 100;
  for (const [w, h] of [[1, 1], [2, 3], [11, 9], [33, 17]]) {
    await checkVariant(
      {
        width: w,
        height: h,
        colorType: 2,
        bitDepth: 8,
        samples: randomSamples(w * h * 3, 255, seed++),
        interlace: true,
        idatPieces: 3,
      },
      `adam7 rgb8 ${w}x${h}`,
    );
    await checkVariant(
      {
        width: w,
        height: h,
        colorType: 0,
        bitDepth: 1,
        samples: randomSamples(w * h, 1, seed++),
        interlace: true,
      },
      `adam7 gray1 ${w}x${h}`,
    );
    await checkVariant(
      {
        width: w,
        height: h,
        colorType: 6,
        bitDepth: 16,
        samples: randomSamples(w * h * 4, 65535, seed++),
        interlace: true,
      },
      `adam7 rgba16 ${w}x${h}`,
    );
  }
});

Deno.test("encodePng round-trips (RGB when opaque, RGBA otherwise), incl. 1x1", async () => {
  for (
    const [w, h, opaque] of [[1, 1, true], [1, 1, false], [13, 7, true], [13, 7, false]] as const
  ) {
    const rgba = new Uint8Array(randomSamples(w * h * 4, 255, w * 31 + h));
    if (opaque) { for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255; }
    const png = await encodePng(w, h, rgba);
    assertEquals(png[25], opaque ? 2 : 6, "colour type");
    const back = await decodeImageRgba8(png);
    assertEquals([back.width, back.height], [w, h]);
    assertEquals(Array.from(back.data), Array.from(rgba));
  }
  await rejectsErr(() => encodePng(2, 2, new Uint8Array(15)), RangeError);
});

Deno.test("PNG decoding of a larger image streams (4000x3000 RGB, 8-bit path)", async () => {
  const w = 4000, h = 3000;
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      rgba[o] = x & 255;
      rgba[o + 1] = y & 255;
      rgba[o + 2] = (x + y) & 255;
      rgba[o + 3] = 255;
    }
  }
  const png = await encodePng(w, h, rgba);
  const img = await decodeImageRgba8(png);
  assertEquals([img.width, img.height], [w, h]);
  const probe = (x: number, y: number) =>
    Array.from(img.data.subarray((y * w + x) * 4, (y * w + x) * 4 + 4));
  assertEquals(probe(3999, 2999), [3999 & 255, 2999 & 255, (3999 + 2999) & 255, 255]);
  assertEquals(probe(1234, 567), [1234 & 255, 567 & 255, (1234 + 567) & 255, 255]);
  const { input, original } = await prepareInput(png, 224, 224, "unit");
  assertEquals(original, { width: w, height: h });
  assertEquals(input.length, 224 * 224 * 3);
  assert(input.every((v) => v >= 0 && v <= 1));
});

// ------------------------------------------------------------------------------------------
// Corrupt input
// ------------------------------------------------------------------------------------------

async function rejectsWith(bytes: Uint8Array, pattern: RegExp, label: string): Promise<void> {
  for (const fn of [decodeImage, decodeImageRgba8]) {
    const err = await rejectsErr(() => fn(bytes, "x.png"), ImageError, label);
    assert(pattern.test(err.message), `${label}: unexpected message "${err.message}"`);
    assert(!err.message.includes("\n") && !/\bat\s/.test(err.message), `${label}: not one line`);
    assert(err.message.startsWith("x.png: "), label);
  }
}

Deno.test("corrupt, truncated and unknown data throw ImageError with a clean message", async () => {
  const png = await makePng({
    width: 9,
    height: 7,
    colorType: 6,
    bitDepth: 8,
    samples: randomSamples(9 * 7 * 4, 255, 9),
    idatPieces: 2,
  });
  await rejectsWith(
    new TextEncoder().encode("hello world"),
    /^x\.png: not a PNG or JPEG image$/,
    "text",
  );
  await rejectsWith(new Uint8Array(0), /not a PNG or JPEG image/, "empty");
  for (const cut of [8, 20, 33, 50, png.length - 30, png.length - 13]) {
    await rejectsWith(png.slice(0, cut), /truncated or corrupt PNG: /, `cut at ${cut}`);
  }
  const flipped = png.slice();
  flipped[png.length - 30] ^= 0x55; // inside the last IDAT: CRC mismatch
  await rejectsWith(flipped, /CRC mismatch in IDAT/, "crc");
  // valid CRCs but garbage compressed data
  const ihdr = new Uint8Array([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
  const sig = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  const garbage = concat([
    sig,
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array([1, 2, 3, 4, 5, 6])),
    chunk("IEND", new Uint8Array(0)),
  ]);
  await rejectsWith(
    garbage,
    /truncated or corrupt PNG: (bad compressed data|image data ends early)/,
    "garbage",
  );
  // too little image data (a valid zlib stream of one row for a 2-row image)
  const short = concat([
    sig,
    chunk("IHDR", ihdr),
    chunk("IDAT", await deflate(new Uint8Array(7))),
    chunk("IEND", new Uint8Array(0)),
  ]);
  await rejectsWith(short, /image data ends early/, "short");
  // bad filter type
  const badFilter = concat([
    sig,
    chunk("IHDR", ihdr),
    chunk("IDAT", await deflate(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]))),
    chunk("IEND", new Uint8Array(0)),
  ]);
  await rejectsWith(badFilter, /bad filter type 9/, "filter");
  // unsupported bit depth combination
  const badDepth = concat([
    sig,
    chunk("IHDR", new Uint8Array([0, 0, 0, 1, 0, 0, 0, 1, 4, 2, 0, 0, 0])),
    chunk("IEND", new Uint8Array(0)),
  ]);
  await rejectsWith(badDepth, /unsupported PNG: color type 2 with bit depth 4/, "depth");
  // a PNG without its IEND but with complete data still decodes
  const noEnd = png.slice(0, png.length - 12);
  assertEquals((await decodeImageRgba8(noEnd)).width, 9);
  // JPEG
  const jpeg = await jpegEncode(new Uint8Array(randomSamples(16 * 16 * 4, 255, 3)), 16, 16, 90);
  for (const cut of [3, 40, jpeg.length >> 1]) {
    const err = await rejectsErr(() => decodeImage(jpeg.slice(0, cut), "p.jpg"), ImageError);
    assert(
      /^p\.jpg: truncated( or corrupt)? JPEG/.test(err.message),
      `jpeg cut ${cut}: ${err.message}`,
    );
  }
  const err = await rejectsErr(
    () => decodeImageRgba8(new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3])),
    ImageError,
  );
  assert(/^(truncated|corrupt)( or corrupt)? JPEG/.test(err.message), err.message);
});

// ------------------------------------------------------------------------------------------
// JPEG (encoded by imagescript's WebAssembly JPEG encoder)
// ------------------------------------------------------------------------------------------

let jpegWasm: WebAssembly.Module | null = null;
async function jpegEncode(
  rgba: Uint8Array,
  w: number,
  h: number,
  quality: number,
): Promise<Uint8Array> {
  if (!jpegWasm) {
    const path = createRequire(import.meta.url).resolve("imagescript/wasm/any/jpeg.wasm");
    jpegWasm = new WebAssembly.Module(await Deno.readFile(path));
  }
  const ex = new WebAssembly.Instance(jpegWasm).exports as unknown as {
    memory: WebAssembly.Memory;
    walloc(n: number): number;
    wlen(): number;
    encode(ptr: number, w: number, h: number, q: number): number;
  };
  const ptr = ex.walloc(rgba.length);
  new Uint8Array(ex.memory.buffer, ptr, rgba.length).set(rgba);
  const out = ex.encode(ptr, w, h, quality);
  return new Uint8Array(ex.memory.buffer, out, ex.wlen()).slice();
}

Deno.test("JPEG: decodes RGB within tolerance, any size incl. 1x1", async () => {
  for (const [w, h] of [[1, 1], [17, 9], [64, 48]]) {
    const rgba = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 4; // smooth content compresses faithfully
        rgba.set([40 + Math.round((180 * x) / w), 200 - Math.round((150 * y) / h), 120, 255], o);
      }
    }
    const jpg = await jpegEncode(rgba, w, h, 100);
    assertEquals(detectImageFormat(jpg), "jpeg");
    const img = await decodeImage(jpg);
    assertEquals([img.width, img.height], [w, h]);
    let maxErr = 0;
    for (let i = 0; i < w * h; i++) {
      for (let c = 0; c < 3; c++) {
        maxErr = Math.max(maxErr, Math.abs(img.data[3 * i + c] * 255 - rgba[4 * i + c]));
      }
    }
    assert(maxErr <= 12, `${w}x${h}: max error ${maxErr}`);
    const b = await decodeImageRgba8(jpg);
    assert(b.data.every((v, i) => i % 4 !== 3 || v === 255), "opaque");
    assertAlmostEquals(b.data[0] / 255, img.data[0], 1e-6);
  }
});

// ------------------------------------------------------------------------------------------
// Resizing
// ------------------------------------------------------------------------------------------

Deno.test("resizeBilinear: 2x2 -> 4x4 half-pixel and align-corners by hand", () => {
  const src = new Float32Array([0, 1, 2, 3]);
  assertEquals(
    Array.from(resizeBilinear(src, 2, 2, 1, 4, 4)),
    [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3],
  );
  assertEquals(
    Array.from(resizeBilinear(src, 2, 2, 1, 3, 3, { alignCorners: true })),
    [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3],
  );
  const rgb = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  assertEquals(resizeBilinear(rgb, 2, 1, 3, 2, 1), rgb, "identity");
  assertEquals(Array.from(resizeBilinear(new Float32Array([5]), 1, 1, 1, 3, 2)), [
    5,
    5,
    5,
    5,
    5,
    5,
  ]);
  throwsErr(() => resizeBilinear(src, 2, 2, 1, 0, 4), RangeError);
  throwsErr(() => resizeBilinear(src, 3, 2, 1, 4, 4), RangeError);
});

Deno.test("resizeBilinear equals tf.image.resizeBilinear on the cpu backend", async () => {
  await tf.setBackend("cpu");
  const r = rng(42);
  for (const [sh, sw, dh, dw] of [[5, 7, 11, 13], [13, 11, 5, 4], [6, 6, 6, 9], [1, 4, 3, 2]]) {
    const src = Float32Array.from({ length: sh * sw * 3 }, () => r());
    for (const alignCorners of [false, true]) {
      const t = tf.tensor3d(src, [sh, sw, 3]);
      const ref = tf.image.resizeBilinear(t, [dh, dw], alignCorners, !alignCorners);
      const want = await ref.data();
      t.dispose();
      ref.dispose();
      const got = resizeBilinear(src, sw, sh, 3, dw, dh, { alignCorners });
      for (let i = 0; i < got.length; i++) {
        assertAlmostEquals(
          got[i],
          want[i],
          1e-6,
          `${sh}x${sw}->${dh}x${dw} ac=${alignCorners} @${i}`,
        );
      }
    }
  }
});

Deno.test("antialias: area averaging when shrinking", () => {
  // 4x4 -> 2x2: mean of each 2x2 block
  const src = Float32Array.from({ length: 16 }, (_, i) => i);
  assertEquals(Array.from(resizeBilinear(src, 4, 4, 1, 2, 2, { antialias: true })), [
    2.5,
    4.5,
    10.5,
    12.5,
  ]);
  // 3 -> 2: fractional coverage
  const three = resizeBilinear(new Float32Array([0, 3, 6]), 3, 1, 1, 2, 1, { antialias: true });
  assertAlmostEquals(three[0], 1, 1e-6);
  assertAlmostEquals(three[1], 5, 1e-6);
  // growing axes stay bilinear
  assertEquals(
    Array.from(resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 4, 4, { antialias: true })),
    Array.from(resizeBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 4, 4)),
  );
  // high-frequency stripes (1000 px of 0/1) shrink to their mean instead of aliasing
  const stripes = Float32Array.from({ length: 1000 }, (_, i) => i % 2);
  const aa = resizeBilinear(stripes, 1000, 1, 1, 7, 1, { antialias: true });
  for (const v of aa) assertAlmostEquals(v, 0.5, 4e-3); // window edges cut stripes
  const aliased = resizeBilinear(stripes, 1000, 1, 1, 7, 1);
  assert(aliased.some((v) => Math.abs(v - 0.5) > 0.2), "plain bilinear aliases");
  // RGBA8 -> float model input equals the float path
  const rgba = new Uint8ClampedArray(randomSamples(37 * 23 * 4, 255, 77));
  const viaFloat = resizeBilinear(
    rgba8ToRgb({ width: 37, height: 23, data: rgba }).data,
    37,
    23,
    3,
    8,
    6,
    { antialias: true },
  );
  const direct = resizeRgba8ToRgb({ width: 37, height: 23, data: rgba }, 8, 6);
  for (let i = 0; i < direct.length; i++) assertAlmostEquals(direct[i], viaFloat[i], 1e-6);
  const small = resizeRgba8({ width: 37, height: 23, data: rgba }, 8, 6);
  assertEquals([small.width, small.height, small.data.length], [8, 6, 8 * 6 * 4]);
});

// ------------------------------------------------------------------------------------------
// Preprocessing
// ------------------------------------------------------------------------------------------

Deno.test("preprocess presets and custom normalisation", () => {
  const img = { width: 2, height: 1, data: new Float32Array([1, 0.5, 0, 0.2, 0.4, 0.6]) };
  const f = Math.fround;
  const x = img.data;
  assertEquals(
    Array.from(preprocess(img, "imagenet")),
    [0, 1, 2, 3, 4, 5].map((i) =>
      f((x[i] - [0.485, 0.456, 0.406][i % 3]) / [0.229, 0.224, 0.225][i % 3])
    ),
  );
  assertEquals(preprocess(img, "unit"), x);
  assertEquals(preprocess(img, "none"), x);
  assertEquals(Array.from(preprocess(img, "symmetric")), Array.from(x).map((v) => f(v * 2 - 1)));
  const caffe = preprocess(img, "caffe");
  const bgrMean = [103.939, 116.779, 123.68];
  for (let p = 0; p < 2; p++) {
    for (let c = 0; c < 3; c++) {
      assertAlmostEquals(caffe[3 * p + c], x[3 * p + (2 - c)] * 255 - bgrMean[c], 1e-4);
    }
  }
  const custom = preprocess(img, { mean: [0.5], std: [0.5], bgr: true });
  assertEquals(Array.from(custom.subarray(0, 3)), [-1, 0, 1]);
  assertEquals(
    Array.from(preprocess(img, { preset: "imagenet", mean: [0, 0, 0], std: [1, 1, 1] })),
    Array.from(x),
  );
  assert(preprocess(img, "unit") !== x, "returns a copy");
  throwsErr(() => preprocess(img, { std: [0] }), RangeError);
  throwsErr(() => preprocess(img, { mean: [1, 2] }), RangeError);
  throwsErr(() => preprocess(img, "bogus" as "unit"), RangeError);
});

Deno.test("prepareInput decodes, resizes and normalises", async () => {
  const w = 10, h = 6;
  const rgba = new Uint8Array(randomSamples(w * h * 4, 255, 5));
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  const png = await encodePng(w, h, rgba);
  const got = await prepareInput(png, 4, 4, "imagenet");
  assertEquals(got.original, { width: w, height: h });
  assertEquals([got.width, got.height, got.input.length], [4, 4, 48]);
  const img = await decodeImage(png);
  const want = preprocess(
    { width: 4, height: 4, data: resizeBilinear(img.data, w, h, 3, 4, 4, { antialias: true }) },
    "imagenet",
  );
  for (let i = 0; i < want.length; i++) assertAlmostEquals(got.input[i], want[i], 1e-5);
  // from decoded images of both kinds
  const fromFloat = await prepareInput(img, 4, 4, "imagenet");
  for (let i = 0; i < want.length; i++) assertAlmostEquals(fromFloat.input[i], want[i], 1e-5);
  assertEquals(toModelInput({ width: w, height: h, data: rgba }, 4, 4, "imagenet").length, 48);
  await rejectsErr(() => prepareInput(new Uint8Array([1, 2, 3]), 4, 4), ImageError);
});

// ------------------------------------------------------------------------------------------
// NPY
// ------------------------------------------------------------------------------------------

Deno.test("NPY: round trip and header layout", () => {
  const data = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
  for (const shape of [[24], [2, 3, 4], [1, 24]]) {
    const bytes = encodeNpy(data, shape);
    const head = new TextDecoder("latin1").decode(
      bytes.subarray(0, 10 + (bytes[8] | (bytes[9] << 8))),
    );
    assertEquals(Array.from(bytes.subarray(0, 8)), [0x93, 78, 85, 77, 80, 89, 1, 0]);
    const headerLen = bytes[8] | (bytes[9] << 8);
    assertEquals((10 + headerLen) % 64, 0, "aligned to 64");
    assert(head.endsWith("\n"));
    const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
    assertEquals(
      head.slice(10).trimEnd(),
      `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`,
    );
    assertEquals(bytes.length, 10 + headerLen + 96);
    const back = decodeNpy(bytes);
    assertEquals(back, { data, shape, dtype: "float32" });
  }
  // the layout numpy 2.x writes for np.save(f, np.array([[1, 2]], np.uint8))
  const u8 = encodeNpy(new Uint8Array([1, 2]), [1, 2]);
  const expectedHeader = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2), }";
  assertEquals(u8.length, 128 + 2); // 10 + 60 + 1 bytes -> padded to 128
  assertEquals(
    new TextDecoder().decode(u8.subarray(10, 10 + expectedHeader.length)),
    expectedHeader,
  );
  assertEquals(u8[127], 10);
  assertEquals(Array.from(u8.subarray(128)), [1, 2]);
  assertEquals(decodeNpy(u8), { data: new Uint8Array([1, 2]), shape: [1, 2], dtype: "uint8" });
  // scalar
  assertEquals(decodeNpy(encodeNpy(new Float32Array([7]), [])).shape, []);
  throwsErr(() => encodeNpy(data, [5, 5]), NpyError);
});

function npyWith(header: string, version = 1, payload = new Uint8Array(0)): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  const h = header + " ".repeat(total - pre - header.length - 1) + "\n";
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 78, 85, 77, 80, 89, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, h.length, true);
  else v.setUint32(8, h.length, true);
  for (let i = 0; i < h.length; i++) out[pre + i] = h.charCodeAt(i);
  out.set(payload, total);
  return out;
}

Deno.test("NPY: v2.0 read; fortran order, other dtypes, bad data rejected", () => {
  const payload = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const v2 = decodeNpy(
    npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 2, payload),
  );
  assertEquals(v2, { data: new Float32Array([1.5, -2]), shape: [2], dtype: "float32" });
  const msg = (b: Uint8Array) => throwsErr(() => decodeNpy(b), NpyError).message;
  assertEquals(
    msg(npyWith("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 1, payload)),
    "fortran_order=True arrays are not supported (C order only)",
  );
  assert(
    msg(npyWith("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 1, new Uint8Array(8)))
      .includes("'<f8'"),
  );
  assert(
    msg(npyWith("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 1, new Uint8Array(4)))
      .includes("unsupported NPY dtype"),
  );
  assert(
    msg(npyWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 1, payload))
      .startsWith("truncated NPY data"),
  );
  assertEquals(msg(new Uint8Array([1, 2, 3])), "not an NPY file (bad magic)");
  assertEquals(msg(npyWith("{'descr': '<f4'}")), "malformed NPY header");
});

// ------------------------------------------------------------------------------------------
// Colormaps and composition
// ------------------------------------------------------------------------------------------

Deno.test("colormap endpoints and lookup rule", () => {
  assertEquals([...COLORMAPS], ["jet", "turbo", "viridis", "inferno", "gray"]);
  const ends = (name: string) => Array.from(applyColormap(new Float32Array([0, 1]), name));
  assertEquals(ends("gray"), [0, 0, 0, 255, 255, 255]);
  assertEquals(ends("jet"), [0, 0, 127, 127, 0, 0]); // matplotlib jet(0), jet(1) as bytes
  assertEquals(ends("viridis"), [68, 1, 84, 253, 231, 37]);
  assertEquals(ends("inferno"), [0, 0, 4, 252, 255, 164]);
  assertEquals(ends("turbo"), [48, 18, 59, 122, 4, 3]);
  // jet(0.5): matplotlib gives (0.4901960784, 1, 0.4775...) -> bytes (124, 255, 121)
  assertEquals(Array.from(applyColormap([0.5], "jet")), [124, 255, 121]);
  assertEquals(Array.from(applyColormap([-3, NaN, 7], "gray")), [0, 0, 0, 0, 0, 0, 255, 255, 255]);
  assertEquals(Array.from(applyColormap([0.5], "gray")), [128, 128, 128]);
  for (const name of COLORMAPS) assertEquals(colormapLut(name).length, 768);
  throwsErr(() => applyColormap([0], "rainbow"), RangeError);
});

Deno.test("heatmapRgba and overlay at the original size", () => {
  const map = new Float32Array([0, 0.5, 1, 0.25]);
  const heat = heatmapRgba(map, 2, 2, "gray");
  assertEquals(Array.from(heat.data.subarray(0, 8)), [0, 0, 0, 255, 128, 128, 128, 255]);
  const photo = { width: 30, height: 20, data: new Uint8ClampedArray(30 * 20 * 4).fill(200) };
  const o0 = overlay(photo, map, 2, 2, "jet", 0);
  assertEquals([o0.width, o0.height], [30, 20]);
  assert(o0.data.every((v, i) => v === (i % 4 === 3 ? 255 : 200)));
  // uniform map, alpha 1: every pixel is the colour of that value
  const o1 = overlay(photo, new Float32Array(6).fill(1), 3, 2, "jet", 1);
  for (let i = 0; i < 30 * 20; i++) {
    assertEquals(Array.from(o1.data.subarray(4 * i, 4 * i + 4)), [127, 0, 0, 255]);
  }
  // the map is stretched to the photo: left half dark (0), right half bright (1)
  const o2 = overlay(photo, new Float32Array([0, 1]), 2, 1, "gray", 1);
  assertEquals(o2.data[0], 0);
  assertEquals(o2.data[(30 - 1) * 4], 255);
  throwsErr(() => overlay(photo, map, 3, 2), RangeError);
  throwsErr(() => overlay(photo, map, 2, 2, "jet", 2), RangeError);
});

Deno.test("figure: dimensions, titles drawn, long titles fitted", () => {
  const a = { width: 100, height: 50, data: new Uint8ClampedArray(100 * 50 * 4).fill(255) };
  const b = heatmapRgba(new Float32Array(49).map((_, i) => i / 48), 7, 7, "jet");
  const fig = figure([{ image: a, title: "input" }, { image: b, title: "Grad-CAM for fox" }]);
  // widths: 100x50 -> 448x224, 7x7 -> 224x224
  assertEquals(fig.width, 12 + 448 + 12 + 224 + 12);
  assertEquals(fig.height, 12 + 18 + 6 + 224 + 12);
  const px = (x: number, y: number) =>
    Array.from(fig.data.subarray((y * fig.width + x) * 4, (y * fig.width + x) * 4 + 3));
  assertEquals(px(0, 0), [255, 255, 255]);
  let ink = 0;
  for (let y = 12; y < 30; y++) {
    for (let x = 0; x < fig.width; x++) if (px(x, y)[0] < 128) ink++;
  }
  assert(ink > 200, `title pixels drawn (${ink})`);
  // the heatmap panel is where it should be
  assertEquals(px(12 + 448 + 12 + 5, 36 + 5), Array.from(b.data.subarray(0, 3)));
  // titles: shrunk, then truncated with an ellipsis
  assertEquals(fitTitle("Grad-CAM for fox", 224, 2), { text: "Grad-CAM for fox", scale: 2 });
  assertEquals(fitTitle("Grad-CAM for fox", 120, 2).scale, 1);
  const long = fitTitle("Gradual extrapolation of Grad-CAM for the arctic fox", 100, 2);
  assert(long.text.endsWith("\u2026") && long.scale === 1, long.text);
  const narrow = figure([{ image: b, title: "a very long title that cannot fit" }], {
    panelHeight: 40,
    margin: 2,
  });
  assertEquals([narrow.width, narrow.height], [44, 2 + 18 + 6 + 40 + 2]);
  throwsErr(() => figure([]), RangeError);
});
