/**
 * Reading one input file into a model input: PNG/JPEG decoded to 8-bit and shrunk straight
 * to the model's float input (no full-size float copy), or a preprocessed `.npy` tensor
 * with `--preprocess none`. Keeps the 8-bit original for overlays when it is small, and
 * reads it again at output time when it is big, so memory stays bounded in a batch.
 *
 * @module
 */
import {
  decodeImageRgba8,
  DEFAULT_MAX_PIXELS,
  detectImageFormat,
  type PreprocessPreset,
  readJpegHeader,
  type Rgba8Image,
  toModelInput,
} from "../io/mod.ts";
import { decodeNpy } from "../io/npy.ts";
import { FileError } from "./_errors.ts";

/** Originals up to this many pixels stay in memory between the forward pass and output. */
const KEEP_PIXELS = 4_000_000;

/** One input, ready for the model. */
export interface LoadedInput {
  /** The file. */
  readonly file: string;
  /** Model input, HWC float `[h, w, c]` at the model's size. */
  readonly input: Float32Array;
  /** Size of the original image (the model size for `.npy` tensors). */
  readonly width: number;
  /** Height of the original. */
  readonly height: number;
  /** The original in 8-bit RGBA, when small enough to keep (see {@linkcode originalOf}). */
  readonly original?: Rgba8Image;
  /** The pixel limit it was read under (for reading the original again). */
  readonly maxPixels?: number;
}

/** Model input size `[height, width, channels]`. */
export type InputSize = readonly [number, number, number];

function isNpy(file: string): boolean {
  return file.toLowerCase().endsWith(".npy");
}

/** Turns an RGB float model input into the model's channel count (1 = mean of RGB). */
function toChannels(rgb: Float32Array, c: number): Float32Array {
  if (c === 3) return rgb;
  const n = rgb.length / 3;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    const v = (rgb[3 * i] + rgb[3 * i + 1] + rgb[3 * i + 2]) / 3;
    for (let k = 0; k < c; k++) out[i * c + k] = v;
  }
  return out;
}

/** An 8-bit picture of a preprocessed tensor (min-max over all values), for overlays. */
function tensorPicture(data: Float32Array, h: number, w: number, c: number): Rgba8Image {
  let lo = Infinity, hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) out[4 * i + k] = (data[i * c + Math.min(k, c - 1)] - lo) * scale;
    out[4 * i + 3] = 255;
  }
  return { width: w, height: h, data: out };
}

/** Largest input file read (2 GiB; the pixel limit bounds what is decoded from it). */
const MAX_INPUT_BYTES = 2 * 1024 * 1024 * 1024;

/** Reads an input: a regular file (not a device or FIFO) of at most 2 GiB, checked first. */
async function readBytes(file: string): Promise<Uint8Array> {
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) throw new FileError(file, "not a regular file");
    if (info.size > MAX_INPUT_BYTES) {
      throw new FileError(file, `${info.size} bytes, more than an input may have (2 GiB)`);
    }
    return await Deno.readFile(file);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(
      file,
      e instanceof Deno.errors.NotFound
        ? "no such file"
        : `cannot read (${(e as Error).message.split("\n")[0]})`,
    );
  }
}

function loadNpy(file: string, bytes: Uint8Array, size: InputSize): LoadedInput {
  const [h, w, c] = size;
  const arr = decodeNpy(bytes);
  const shape = arr.shape[0] === 1 && arr.shape.length === 4 ? arr.shape.slice(1) : arr.shape;
  if (shape.length !== 3 || shape[0] !== h || shape[1] !== w || shape[2] !== c) {
    throw new FileError(
      file,
      `tensor has shape [${
        arr.shape.join(", ")
      }], the model needs [${h}, ${w}, ${c}] (or [1, ${h}, ${w}, ${c}])`,
    );
  }
  const input = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data);
  return { file, input, width: w, height: h, original: tensorPicture(input, h, w, c) };
}

/**
 * Reads and prepares one input. With `preprocess` `"none"` the file must be a `.npy`
 * tensor of the model's input shape; otherwise a PNG or JPEG image of at most `maxPixels`
 * (checked from its header). A JPEG too big to keep is decoded for the model at reduced
 * scale (DCT scaling, to twice the model size at least), its original read again for output.
 */
export async function loadInput(
  file: string,
  size: InputSize,
  preprocess: PreprocessPreset,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): Promise<LoadedInput> {
  const bytes = await readBytes(file);
  if (preprocess === "none") {
    if (!isNpy(file)) {
      throw new FileError(file, "--preprocess none expects preprocessed .npy tensors, not images");
    }
    return loadNpy(file, bytes, size);
  }
  if (isNpy(file)) {
    throw new FileError(
      file,
      "a .npy tensor needs --preprocess none (it must be preprocessed already)",
    );
  }
  const [h, w, c] = size;
  if (detectImageFormat(bytes) === "jpeg") {
    const head = readJpegHeader(bytes, file, maxPixels);
    if (head.width * head.height > KEEP_PIXELS) {
      const small = await decodeImageRgba8(bytes, file, {
        maxPixels,
        atLeast: { width: 2 * w, height: 2 * h },
      });
      const input = toChannels(toModelInput(small, w, h, preprocess), c);
      const swap = head.orientation >= 5;
      return {
        file,
        input,
        width: swap ? head.height : head.width,
        height: swap ? head.width : head.height,
        maxPixels,
      };
    }
  }
  const img = await decodeImageRgba8(bytes, file, { maxPixels });
  const input = toChannels(toModelInput(img, w, h, preprocess), c);
  const keep = img.width * img.height <= KEEP_PIXELS;
  return {
    file,
    input,
    width: img.width,
    height: img.height,
    original: keep ? img : undefined,
    maxPixels,
  };
}

/** The 8-bit original of an input (decoded again when it was too big to keep). */
export async function originalOf(x: LoadedInput): Promise<Rgba8Image> {
  if (x.original) return x.original;
  return await decodeImageRgba8(await readBytes(x.file), x.file, { maxPixels: x.maxPixels });
}
