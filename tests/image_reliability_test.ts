/**
 * Image decoding under hostile and unlucky input (issue 21): the pixel limit read from the
 * header, JPEGs whose data ends early, DCT-scaled decoding of big JPEGs, CMYK / YCCK colours
 * as browsers show them, and EXIF orientation. Every JPEG here is written at test time by
 * the small DC-only writer in `_jpeg.ts`.
 *
 * @module
 */
import { decodeImage, decodeImageRgba8, ImageError, readJpegHeader } from "../io/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { app14, dcJpeg, exifOrientation } from "./_jpeg.ts";
import { chunk, concat, deflate } from "./_png.ts";

async function rejects(p: Promise<unknown>, needle: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert(e instanceof ImageError, `not an ImageError: ${e}`);
    assert(e.message.includes(needle), `'${e.message}' does not mention '${needle}'`);
    assert(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error(`expected an error mentioning '${needle}'`);
}

/** A PNG whose header claims `w` x `h` (1-bit gray) with a few bytes of image data. */
async function pngClaiming(w: number, h: number): Promise<Uint8Array> {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr[8] = 1;
  ihdr[9] = 0;
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", await deflate(new Uint8Array(64))),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

Deno.test("pixel limit: a PNG or JPEG claiming a huge size fails from its header, raisable", async () => {
  const png = await pngClaiming(12000, 12000);
  const msg = await rejects(decodeImageRgba8(png, "bomb.png"), "over the limit");
  assert(msg.startsWith("bomb.png: image is 12000x12000 (144 megapixels)"), msg);
  assert(msg.includes("--max-pixels"), msg);
  await rejects(decodeImage(png), "over the limit");
  // raised: the size is accepted, and the few bytes of data are then found short
  const mid = await pngClaiming(300, 300);
  await rejects(decodeImageRgba8(mid, "mid.png", { maxPixels: 1000 }), "over the limit of");
  await rejects(decodeImageRgba8(mid, "mid.png", { maxPixels: 90000 }), "ends early");
  // a 20000x20000 JPEG in a few hundred bytes
  const jpg = dcJpeg({
    width: 20000,
    height: 20000,
    components: 3,
    block: () => 128,
    truncateScan: 600,
    keepEoi: true,
  });
  assert(jpg.length < 1000);
  await rejects(decodeImageRgba8(jpg, "bomb.jpg"), "20000x20000 (400 megapixels), over the limit");
  // a small limit applies to small images too
  const small = dcJpeg({ width: 16, height: 16, components: 1, block: () => 9 });
  await rejects(decodeImageRgba8(small, "s.jpg", { maxPixels: 100 }), "over the limit of");
  assertEquals((await decodeImageRgba8(small, "s.jpg", { maxPixels: 256 })).width, 16);
});

Deno.test("JPEG whose data ends early is refused, not padded", async () => {
  const full = { width: 256, height: 256, components: 3 as const, block: () => 100 };
  assertEquals((await decodeImageRgba8(dcJpeg(full))).width, 256);
  // cut, then an end-of-image marker: a decoder pads this with grey
  const cut = dcJpeg({ ...full, truncateScan: 40, keepEoi: true });
  await rejects(
    decodeImageRgba8(cut, "cut.jpg"),
    "cut.jpg: truncated JPEG: the image data ends early",
  );
  // a big size claimed by a small file
  const claim = dcJpeg({
    width: 2000,
    height: 2000,
    components: 1,
    block: () => 128,
    truncateScan: 500,
    keepEoi: true,
  });
  await rejects(decodeImageRgba8(claim), "ends early");
  // cut without an end marker, and cut inside a segment
  await rejects(decodeImageRgba8(dcJpeg({ ...full, truncateScan: 100 })), "truncated JPEG");
  await rejects(decodeImageRgba8(dcJpeg(full).subarray(0, 30)), "truncated JPEG");
});

Deno.test("big JPEGs decode at reduced scale on request (DCT scaling)", async () => {
  const jpg = dcJpeg({
    width: 4000,
    height: 3000,
    components: 3,
    block: (x, y, c) => (c ? 128 : (x * 3 + y) & 255),
  });
  const header = readJpegHeader(jpg);
  assertEquals([header.width, header.height, header.components], [4000, 3000, 3]);
  const small = await decodeImageRgba8(jpg, "big.jpg", { atLeast: { width: 400, height: 300 } });
  assertEquals([small.width, small.height], [500, 375]);
  // one pixel per 8x8 block at 1/8: exactly the block's value
  assertEquals(small.data[4 * (10 * 500 + 7)], (7 * 3 + 10) & 255);
  const half = await decodeImageRgba8(jpg, "big.jpg", { atLeast: { width: 1500, height: 1500 } });
  assertEquals([half.width, half.height], [2000, 1500]);
});

/** RGB of the pixel at (x, y). */
function rgbAt(img: { width: number; data: Uint8ClampedArray }, x: number, y: number): number[] {
  const o = 4 * (y * img.width + x);
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

function assertNear(actual: number[], expected: number[], tol: number, what: string): void {
  const ok = actual.every((v, i) => Math.abs(v - expected[i]) <= tol);
  assert(ok, `${what}: got [${actual}], expected about [${expected}]`);
}

Deno.test("CMYK and YCCK JPEGs decode to the colours a browser shows", async () => {
  // left block: red; right block: red at half black ink
  // Adobe CMYK stores inverted ink: red = C 0, M 255, Y 255, K 0 stored as 255, 0, 0, 255
  const adobe = dcJpeg({
    width: 16,
    height: 8,
    components: 4,
    segments: [app14(0)],
    block: (bx, _by, c) => [255, 0, 0, bx ? 128 : 255][c],
  });
  const a = await decodeImageRgba8(adobe);
  assertNear(rgbAt(a, 2, 2), [255, 0, 0], 2, "Adobe CMYK red");
  assertNear(rgbAt(a, 10, 2), [128, 0, 0], 2, "Adobe CMYK dark red");
  // plain CMYK (no Adobe segment) stores the ink itself
  const plain = dcJpeg({
    width: 16,
    height: 8,
    components: 4,
    block: (bx, _by, c) => [0, 255, 255, bx ? 127 : 0][c],
  });
  const p = await decodeImageRgba8(plain);
  assertNear(rgbAt(p, 2, 2), [255, 0, 0], 2, "plain CMYK red");
  assertNear(rgbAt(p, 10, 2), [128, 0, 0], 2, "plain CMYK dark red");
  // YCCK: R = 255 - C, G = 255 - M, B = 255 - Y of the Adobe-stored (inverted) C, M, Y go
  // through RGB-to-YCbCr: red's stored (255, 0, 0) gives (0, 255, 255), i.e. Y 179, Cb 171,
  // Cr 1; K is stored as in Adobe CMYK
  const ycck = dcJpeg({
    width: 16,
    height: 8,
    components: 4,
    segments: [app14(2)],
    block: (bx, _by, c) => [179, 171, 1, bx ? 128 : 255][c],
  });
  const y = await decodeImageRgba8(ycck);
  assertNear(rgbAt(y, 2, 2), [255, 0, 0], 3, "YCCK red");
  assertNear(rgbAt(y, 10, 2), [128, 0, 0], 3, "YCCK dark red");
  // the float decoder agrees
  const f = await decodeImage(adobe);
  assertNear([f.data[0] * 255, f.data[1] * 255, f.data[2] * 255], [255, 0, 0], 2, "float");
});

Deno.test("EXIF orientation is applied (as browsers do)", async () => {
  // 16x8 gray: left block black, right block bright
  const base = { width: 16, height: 8, components: 1 as const, block: (bx: number) => bx * 200 };
  const at = (img: { width: number; data: Uint8ClampedArray }, x: number, y: number): number =>
    img.data[4 * (y * img.width + x)];
  const cases: [number, boolean, [number, number], [number, number, number][]][] = [
    // orientation, little-endian EXIF, size, [x, y, value] probes
    [1, false, [16, 8], [[2, 4, 0], [13, 4, 200]]],
    [3, false, [16, 8], [[2, 4, 200], [13, 4, 0]]],
    [6, false, [8, 16], [[4, 2, 0], [4, 13, 200]]], // rotate 90 clockwise: left -> top
    [6, true, [8, 16], [[4, 2, 0], [4, 13, 200]]],
    [8, false, [8, 16], [[4, 2, 200], [4, 13, 0]]], // counter-clockwise: left -> bottom
    [2, false, [16, 8], [[2, 4, 200], [13, 4, 0]]],
    [5, false, [8, 16], [[4, 2, 0], [4, 13, 200]]],
    [7, false, [8, 16], [[4, 2, 200], [4, 13, 0]]],
  ];
  for (const [o, le, size, probes] of cases) {
    const img = await decodeImageRgba8(
      dcJpeg({ ...base, segments: [exifOrientation(o, le)] }),
    );
    assertEquals([img.width, img.height], size, `orientation ${o}`);
    for (const [x, y, v] of probes) {
      assert(Math.abs(at(img, x, y) - v) <= 1, `orientation ${o} at ${x},${y}: ${at(img, x, y)}`);
    }
    assertEquals(
      readJpegHeader(dcJpeg({ ...base, segments: [exifOrientation(o, le)] })).orientation,
      o,
    );
  }
  // a 4x2-pixel asymmetric check of orientation 6 pixel by pixel
  const tiny = dcJpeg({ ...base, segments: [exifOrientation(6)] });
  const r = await decodeImageRgba8(tiny);
  assertEquals([at(r, 0, 0), at(r, 7, 7), at(r, 0, 8), at(r, 7, 15)], [0, 0, 200, 200]);
});
