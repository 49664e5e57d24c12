/**
 * Minimal NumPy `.npy` reader/writer for saliency maps and model inputs: float32 (`<f4`) and
 * uint8 (`|u1`), C order. Writes format version 1.0 (2.0 when the header needs it), reads 1.0,
 * 2.0 and 3.0. Works on bytes only, so it runs in browsers too.
 *
 * @example Round trip
 * ```ts
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 * const bytes = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const { data, shape, dtype } = decodeNpy(bytes);
 * console.log(shape, dtype, data[5]); // [2, 3] "float32" 6
 * // Python: numpy.load("map.npy") -> array of shape (2, 3), dtype float32
 * ```
 *
 * @module
 */

/** Thrown for malformed or unsupported `.npy` data; the message is one line. */
export class NpyError extends Error {
  /**
   * Create an NPY error.
   *
   * @param message one-line reason
   */
  constructor(message: string) {
    super(message);
    this.name = "NpyError";
  }
}

/** The element types supported. */
export type NpyDtype = "float32" | "uint8";

/** A decoded `.npy` array. */
export interface NpyArray {
  /** The elements in C (row-major) order; `Float32Array` for float32, `Uint8Array` for uint8. */
  data: Float32Array | Uint8Array;
  /** The array shape (`[]` for a scalar). */
  shape: number[];
  /** The element type. */
  dtype: NpyDtype;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function shapeSize(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new NpyError(`invalid dimension ${d} in shape`);
    n *= d;
  }
  return n;
}

/**
 * Encode a float32 or uint8 array as `.npy` bytes (C order, little-endian) that
 * `numpy.load` reads. The header dict is padded with spaces so that magic + version + length +
 * header (ending in `\n`) is a multiple of 64 bytes, as NumPy writes it.
 *
 * @example
 * ```ts
 * import { encodeNpy } from "./npy.ts";
 * const npy = encodeNpy(new Uint8Array([1, 2, 3]), [3]);
 * console.log(npy.length); // 128 header bytes + 3 data bytes = 131
 * ```
 *
 * @param data the elements, C order
 * @param shape the array shape; its product must equal `data.length`
 * @returns the file bytes
 * @throws {NpyError} if the shape does not match the data
 */
export function encodeNpy(data: Float32Array | Uint8Array, shape: number[]): Uint8Array {
  const n = shapeSize(shape);
  if (n !== data.length) {
    throw new NpyError(`shape [${shape.join(", ")}] has ${n} elements but data has ${data.length}`);
  }
  const isFloat = data instanceof Float32Array;
  if (!isFloat && !(data instanceof Uint8Array)) {
    throw new NpyError("data must be a Float32Array or a Uint8Array");
  }
  const descr = isFloat ? "<f4" : "|u1";
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10; // magic(6) + version(2) + u16 length
  let total = Math.ceil((prefix + header.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = 12;
    total = Math.ceil((prefix + header.length + 1) / 64) * 64;
  }
  header = header + " ".repeat(total - prefix - header.length - 1) + "\n";
  const itemSize = isFloat ? 4 : 1;
  const out = new Uint8Array(total + n * itemSize);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) view.setUint16(8, total - prefix, true);
  else view.setUint32(8, total - prefix, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  if (!isFloat || LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, n * itemSize), total);
  } else {
    for (let i = 0; i < n; i++) view.setFloat32(total + 4 * i, data[i], true);
  }
  return out;
}

/**
 * Decode `.npy` bytes holding a float32 (`<f4`) or uint8 (`|u1`) C-order array.
 *
 * @example
 * ```ts
 * import { decodeNpy, encodeNpy } from "./npy.ts";
 * const { shape, dtype } = decodeNpy(encodeNpy(new Float32Array(6), [1, 2, 3]));
 * console.log(shape, dtype); // [1, 2, 3] "float32"
 * ```
 *
 * @param bytes the file contents
 * @returns the elements (a copy), shape and dtype
 * @throws {NpyError} for a bad magic/header, `fortran_order: True`, other dtypes, or too little data
 */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new NpyError("not an NPY file (bad magic)");
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number, start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError("truncated NPY header");
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new NpyError(`unsupported NPY format version ${major}.${bytes[7]}`);
  }
  const dataStart = start + headerLen;
  if (dataStart > bytes.length) throw new NpyError("truncated NPY header");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, dataStart),
  );

  const descrM = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descrM || !fortranM || !shapeM) throw new NpyError("malformed NPY header");
  if (fortranM[1] === "True") {
    throw new NpyError("fortran_order=True arrays are not supported (C order only)");
  }
  const descr = descrM[1];
  let dtype: NpyDtype;
  if (descr === "<f4" || (descr === "=f4" && LITTLE_ENDIAN)) dtype = "float32";
  else if (/^[|<>=]u1$/.test(descr)) dtype = "uint8";
  else {
    throw new NpyError(
      `unsupported NPY dtype '${descr}' (only little-endian float32 '<f4' and uint8 '|u1')`,
    );
  }
  const dims = shapeM[1].split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const shape = dims.map((s) => {
    if (!/^\d+L?$/.test(s)) throw new NpyError(`malformed NPY shape (${shapeM[1]})`);
    return parseInt(s, 10);
  });
  const n = shapeSize(shape);
  const itemSize = dtype === "float32" ? 4 : 1;
  if (bytes.length - dataStart < n * itemSize) {
    throw new NpyError(
      `truncated NPY data: need ${n * itemSize} bytes, have ${bytes.length - dataStart}`,
    );
  }
  if (dtype === "uint8") return { data: bytes.slice(dataStart, dataStart + n), shape, dtype };
  let data: Float32Array;
  if (LITTLE_ENDIAN) data = new Float32Array(bytes.slice(dataStart, dataStart + 4 * n).buffer);
  else {
    data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(dataStart + 4 * i, true);
  }
  return { data, shape, dtype };
}
