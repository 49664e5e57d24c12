/**
 * A tiny baseline JPEG writer for tests: every 8x8 block is one flat value per component
 * (DC coefficient only, quantiser 1, so the decoded pixels are exactly the given values),
 * 1, 3 or 4 components without subsampling, optional extra segments (EXIF, Adobe APP14).
 * It makes the JPEGs no encoder at hand writes: CMYK and YCCK, a chosen EXIF orientation,
 * huge images of a few hundred kilobytes, and data that ends early.
 *
 * @module
 */

/** What to write. */
export interface DcJpeg {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Number of components: 1 (gray), 3 (YCbCr, or RGB with an Adobe transform 0), 4. */
  components: 1 | 3 | 4;
  /** Stored value (0..255) of component `c` in the block at block column `bx`, row `by`. */
  block(bx: number, by: number, c: number): number;
  /** Segments written after SOI, each complete with its marker (see {@linkcode app14}). */
  segments?: Uint8Array[];
  /** Keep only this many bytes of entropy-coded data (a truncated file). */
  truncateScan?: number;
  /** With `truncateScan`: still end with the EOI marker (the file looks complete). */
  keepEoi?: boolean;
}

function segment(marker: number, body: number[]): Uint8Array {
  const len = body.length + 2;
  return new Uint8Array([0xff, marker, len >> 8, len & 255, ...body]);
}

/** An Adobe APP14 segment with the given colour transform (0 none/CMYK, 1 YCbCr, 2 YCCK). */
export function app14(transform: number): Uint8Array {
  const adobe = [0x41, 0x64, 0x6f, 0x62, 0x65]; // "Adobe"
  return segment(0xee, [...adobe, 0, 100, 0, 0, 0, 0, transform]);
}

/** An EXIF APP1 segment (big-endian TIFF) holding only the orientation tag. */
export function exifOrientation(orientation: number, littleEndian = false): Uint8Array {
  const u16 = (v: number): number[] => littleEndian ? [v & 255, v >> 8] : [v >> 8, v & 255];
  const u32 = (v: number): number[] =>
    littleEndian
      ? [v & 255, (v >> 8) & 255, (v >> 16) & 255, v >>> 24]
      : [v >>> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255];
  const tiff = [
    ...(littleEndian ? [0x49, 0x49] : [0x4d, 0x4d]),
    ...u16(42),
    ...u32(8),
    ...u16(1), // one entry
    ...u16(0x0112),
    ...u16(3), // SHORT
    ...u32(1),
    ...u16(orientation),
    0,
    0,
    ...u32(0), // no next IFD
  ];
  return segment(0xe1, [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff]);
}

class BitWriter {
  readonly bytes: number[] = [];
  #acc = 0;
  #n = 0;
  put(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.#acc = (this.#acc << 1) | ((value >> i) & 1);
      if (++this.#n === 8) this.#flush();
    }
  }
  #flush(): void {
    this.bytes.push(this.#acc);
    if (this.#acc === 0xff) this.bytes.push(0);
    this.#acc = 0;
    this.#n = 0;
  }
  end(): number[] {
    while (this.#n !== 0) this.put(1, 1);
    return this.bytes;
  }
}

/** Writes the JPEG described by `spec`. */
export function dcJpeg(spec: DcJpeg): Uint8Array {
  const { width, height, components: nc } = spec;
  const parts: number[] = [0xff, 0xd8];
  for (const s of spec.segments ?? []) parts.push(...s);
  parts.push(...segment(0xdb, [0, ...new Array(64).fill(1)]));
  const comps: number[] = [];
  for (let c = 0; c < nc; c++) comps.push(c + 1, 0x11, 0);
  parts.push(
    ...segment(0xc0, [8, height >> 8, height & 255, width >> 8, width & 255, nc, ...comps]),
  );
  // DC table: categories 0..11, all 4-bit codes; AC table: only EOB, code "0"
  const dcCounts = new Array(16).fill(0);
  dcCounts[3] = 12;
  parts.push(...segment(0xc4, [0x00, ...dcCounts, ...Array.from({ length: 12 }, (_, i) => i)]));
  const acCounts = new Array(16).fill(0);
  acCounts[0] = 1;
  parts.push(...segment(0xc4, [0x10, ...acCounts, 0x00]));
  const sos: number[] = [nc];
  for (let c = 0; c < nc; c++) sos.push(c + 1, 0x00);
  parts.push(...segment(0xda, [...sos, 0, 63, 0]));
  const bw = new BitWriter();
  const pred = new Array(nc).fill(0);
  const bw8 = Math.ceil(width / 8), bh8 = Math.ceil(height / 8);
  const enough = spec.truncateScan ?? Infinity;
  for (let by = 0; by < bh8 && bw.bytes.length <= enough; by++) {
    for (let bx = 0; bx < bw8 && bw.bytes.length <= enough; bx++) {
      for (let c = 0; c < nc; c++) {
        const dc = 8 * (Math.round(spec.block(bx, by, c)) - 128);
        const diff = dc - pred[c];
        pred[c] = dc;
        const mag = Math.abs(diff);
        const cat = mag === 0 ? 0 : Math.floor(Math.log2(mag)) + 1;
        bw.put(cat, 4);
        if (cat > 0) bw.put(diff < 0 ? diff + (1 << cat) - 1 : diff, cat);
        bw.put(0, 1); // EOB
      }
    }
  }
  const scan = bw.end();
  const end = spec.truncateScan === undefined || spec.keepEoi ? [0xff, 0xd9] : [];
  const kept = Math.min(scan.length, spec.truncateScan ?? Infinity);
  const out = new Uint8Array(parts.length + kept + end.length);
  out.set(parts);
  for (let i = 0; i < kept; i++) out[parts.length + i] = scan[i];
  out.set(end, parts.length + kept);
  return out;
}
