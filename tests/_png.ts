/**
 * Test-only PNG writer, independent of `io/png.ts` (the decoder under test): CRC, chunks,
 * zlib and a raw-sample encoder for any colour type and bit depth.
 *
 * @module
 */

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of PNG chunks. */
export function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) c = CRC[(c ^ x) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** One PNG chunk with its length and CRC. */
export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** zlib (deflate) compression via CompressionStream. */
export async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A PNG with any colour type / bit depth: `sample(x, y, c)` gives the value of channel c
 * (0 .. 2^depth - 1); rows are stored unfiltered.
 */
export async function rawPng(
  width: number,
  height: number,
  colorType: 0 | 2 | 3 | 4 | 6,
  depth: 1 | 2 | 4 | 8 | 16,
  sample: (x: number, y: number, c: number) => number,
  extra: { plte?: Uint8Array; trns?: Uint8Array } = {},
): Promise<Uint8Array> {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const rowBits = width * channels * depth;
  const rowBytes = Math.ceil(rowBits / 8);
  const raw = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    let bit = 0;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = sample(x, y, c);
        if (depth === 16) {
          row[bit >> 3] = v >> 8;
          row[(bit >> 3) + 1] = v & 0xff;
        } else if (depth === 8) row[bit >> 3] = v;
        else row[bit >> 3] |= v << (8 - depth - (bit & 7));
        bit += depth;
      }
    }
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
  ];
  if (extra.plte) parts.push(chunk("PLTE", extra.plte));
  if (extra.trns) parts.push(chunk("tRNS", extra.trns));
  parts.push(chunk("IDAT", await deflate(raw)), chunk("IEND", new Uint8Array(0)));
  return concat(parts);
}
