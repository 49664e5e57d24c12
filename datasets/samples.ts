/**
 * Reading one image and turning each of its (image, class) pairs into an `EvalSample`:
 * the image resized to the model input (non-uniformly when the aspect ratio differs, as
 * every other command does) and preprocessed, the class's mask (union of its objects) and
 * box (bounding box of its objects' boxes) at the model's resolution, see `raster.ts`.
 *
 * Which pixels an object has (`regions`):
 * - `"masks"`: its segmentation when the dataset has one (COCO polygons / RLE, VOC
 *   SegmentationObject PNG when the file exists, manifest mask), else its box;
 * - `"boxes"`: its box (TorchRay's VOC pointing game: the union of the class's boxes);
 * - `"auto"` (default): boxes for VOC (as TorchRay), masks otherwise (TorchRay's COCO
 *   pointing game uses the instance masks).
 *
 * @module
 */
import {
  decodeImageRgba8,
  type PreprocessPreset,
  type Rgba8Image,
  toModelInput,
} from "../io/mod.ts";
import type { EvalSample } from "../metrics/evaluate.ts";
import { DatasetError } from "./errors.ts";
import type { EvalPair } from "./pairs.ts";
import { isDifficultPair } from "./pairs.ts";
import {
  bitmapBox,
  fillBitmap,
  fillBox,
  fillPolygons,
  type FloatBox,
  markCentre,
  objectPixelBox,
  type Scale,
  scaleOf,
  unionBox,
} from "./raster.ts";
import { decodeRle } from "./rle.ts";
import type { DatasetFormat, DatasetImage, DatasetObject } from "./types.ts";

/** Which pixels stand for an object (see the module documentation). */
export type RegionMode = "auto" | "masks" | "boxes";

/** Options of {@linkcode loadPairSamples}. */
export interface PairSampleOptions {
  /** Model input `[height, width, channels]` (channels 3, or 1 = mean of RGB). */
  inputSize: readonly [number, number, number];
  /** The model's preprocessing. */
  preprocess: PreprocessPreset;
  /** Dataset format (for `regions: "auto"`). */
  format: DatasetFormat;
  /** Object pixels (default `"auto"`). */
  regions?: RegionMode;
  /** Check the difficult rule's area condition (pairs failing it are returned as skipped). */
  difficultRule?: boolean;
}

/** A pair ready for the metrics, before its explained class is chosen. */
export interface PairSample {
  /** The pair. */
  pair: EvalPair;
  /** Image (preprocessed, model size), mask and box; `label` is the first candidate. */
  sample: EvalSample;
}

/** The result of reading one image. */
export interface ImageSamples {
  /** Samples of the requested pairs. */
  samples: PairSample[];
  /** Pairs left out of the difficult subset by the area condition. */
  notDifficult: EvalPair[];
}

/** Largest image or mask file read (the pixel limit bounds what is decoded from it). */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;

/**
 * Reads a dataset file: only a regular file (not a device such as `/dev/urandom`, a FIFO or
 * a folder) of at most 1 GiB, both checked before reading.
 */
async function readFile(file: string): Promise<Uint8Array> {
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) throw new DatasetError(file, "not a regular file");
    if (info.size > MAX_FILE_BYTES) {
      throw new DatasetError(file, `${info.size} bytes, more than an image file may have (1 GiB)`);
    }
    return await Deno.readFile(file);
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(
      file,
      e instanceof Deno.errors.NotFound ? "no such file" : `cannot read (${(e as Error).name})`,
    );
  }
}

async function decode(file: string): Promise<Rgba8Image> {
  const bytes = await readFile(file);
  try {
    return await decodeImageRgba8(bytes);
  } catch (e) {
    throw new DatasetError(file, (e as Error).message.split("\n")[0]);
  }
}

/** PNG colour type and palette (PLTE) read from the chunks, for indexed masks. */
function pngPalette(bytes: Uint8Array): { colorType: number; palette?: Uint8Array } {
  if (bytes.length < 33 || bytes[1] !== 0x50) return { colorType: -1 };
  const colorType = bytes[25];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  while (p + 8 <= bytes.length) {
    const len = view.getUint32(p);
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (type === "PLTE") return { colorType, palette: bytes.subarray(p + 8, p + 8 + len) };
    if (type === "IDAT" || type === "IEND") break;
    p += 12 + len;
  }
  return { colorType };
}

/**
 * A mask image as per-pixel values: palette indices for palette PNGs (VOC
 * SegmentationObject / SegmentationClass files), else the first (red / gray) channel,
 * with fully transparent pixels 0.
 */
async function readIndexMask(file: string): Promise<{ w: number; h: number; v: Uint8Array }> {
  const bytes = await readFile(file);
  let img: Rgba8Image;
  try {
    img = await decodeImageRgba8(bytes);
  } catch (e) {
    throw new DatasetError(file, (e as Error).message.split("\n")[0]);
  }
  const n = img.width * img.height;
  const v = new Uint8Array(n);
  const { colorType, palette } = pngPalette(bytes);
  const d = img.data;
  if (colorType === 3 && palette) {
    const index = new Map<number, number>();
    for (let i = palette.length / 3 - 1; i >= 0; i--) {
      index.set((palette[3 * i] << 16) | (palette[3 * i + 1] << 8) | palette[3 * i + 2], i);
    }
    for (let i = 0; i < n; i++) {
      v[i] = index.get((d[4 * i] << 16) | (d[4 * i + 1] << 8) | d[4 * i + 2]) ?? 0;
    }
  } else {
    for (let i = 0; i < n; i++) v[i] = d[4 * i + 3] ? d[4 * i] : 0;
  }
  return { w: img.width, h: img.height, v };
}

async function readBinaryMask(file: string): Promise<{ w: number; h: number; v: Uint8Array }> {
  const img = await decode(file);
  const n = img.width * img.height;
  const v = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    v[i] = d[4 * i + 3] && (d[4 * i] || d[4 * i + 1] || d[4 * i + 2]) ? 1 : 0;
  }
  return { w: img.width, h: img.height, v };
}

function toChannels(rgb: Float32Array, c: number): Float32Array {
  if (c === 3) return rgb;
  const n = rgb.length / 3;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    const m = (rgb[3 * i] + rgb[3 * i + 1] + rgb[3 * i + 2]) / 3;
    for (let k = 0; k < c; k++) out[i * c + k] = m;
  }
  return out;
}

/**
 * Reads an image and builds the samples of its pairs (all pairs must belong to `image`).
 * The image is decoded once; mask files are read once per image.
 *
 * @example
 * ```ts
 * import { loadPairSamples } from "./samples.ts";
 * // const { samples } = await loadPairSamples(image, pairs, {
 * //   inputSize: [224, 224, 3], preprocess: "imagenet", format: "voc" });
 * ```
 *
 * @param image the image
 * @param pairs its pairs to build
 * @param opts model input size, preprocessing, format, regions
 * @returns the samples, and the pairs the difficult rule left out
 * @throws {DatasetError} for a missing or undecodable image or mask file, a size that
 *   differs from the annotation, or an empty manifest mask
 */
export async function loadPairSamples(
  image: DatasetImage,
  pairs: readonly EvalPair[],
  opts: PairSampleOptions,
): Promise<ImageSamples> {
  const [h, w, c] = opts.inputSize;
  const img = await decode(image.file);
  if (
    (image.width !== undefined && image.width !== img.width) ||
    (image.height !== undefined && image.height !== img.height)
  ) {
    throw new DatasetError(
      image.file,
      `the image is ${img.width}×${img.height}, its annotation says ${image.width}×${image.height}`,
    );
  }
  const W = img.width, H = img.height;
  const s = scaleOf(W, H, w, h);
  const regions = opts.regions ?? "auto";
  const useMasks = regions === "masks" || (regions === "auto" && opts.format !== "voc");
  const files = new Map<string, { w: number; h: number; v: Uint8Array } | null>();
  const maskFile = async (
    o: DatasetObject,
    file: string,
    indexed: boolean,
    optional: boolean,
  ): Promise<Uint8Array | null> => {
    if (!files.has(file)) {
      try {
        files.set(file, indexed ? await readIndexMask(file) : await readBinaryMask(file));
      } catch (e) {
        if (optional && e instanceof DatasetError && e.problem === "no such file") {
          files.set(file, null);
        } else throw e;
      }
    }
    const m = files.get(file);
    if (!m) return null;
    if (m.w !== W || m.h !== H) {
      throw new DatasetError(
        o.source,
        `${o.entry}: the mask ${file} is ${m.w}×${m.h}, the image is ${W}×${H}`,
      );
    }
    return m.v;
  };

  const out: ImageSamples = { samples: [], notDifficult: [] };
  let input: Float32Array | undefined;
  for (const pair of pairs) {
    const mask = new Uint8Array(h * w);
    const boxes: FloatBox[] = [];
    for (const o of pair.objects) {
      const one = new Uint8Array(h * w);
      let box = o.box;
      let filled = 0;
      const r = o.region;
      if (useMasks && r.kind === "polygons") {
        filled = fillPolygons(one, r.polygons, s);
      } else if (useMasks && r.kind === "rle") {
        let bits: Uint8Array;
        try {
          bits = decodeRle(r.counts, r.size[0], r.size[1]);
        } catch (e) {
          throw new DatasetError(o.source, `${o.entry}: segmentation: ${(e as Error).message}`);
        }
        filled = fillBitmap(one, bits, W, H, s);
        box ??= bitmapBox(bits, W, H);
      } else if (r.kind === "png" && (useMasks || o.box === undefined)) {
        const v = await maskFile(o, r.file, r.value !== undefined, r.optional ?? false);
        if (v) {
          const bits = r.value === undefined ? v : v.map((x) => (x === r.value ? 1 : 0));
          const bb = bitmapBox(bits, W, H);
          if (bb) {
            if (useMasks) filled = fillBitmap(one, bits, W, H, s);
            box ??= bb;
          } else if (o.box === undefined) {
            throw new DatasetError(o.source, `${o.entry}: the mask ${r.file} is empty`);
          }
        }
      }
      if (box === undefined) {
        throw new DatasetError(o.source, `${o.entry}: the object has no box and no mask`);
      }
      if (filled === 0) filled = fillBox(one, box, s);
      if (filled === 0) markCentre(one, box, s);
      for (let i = 0; i < one.length; i++) if (one[i]) mask[i] = 1;
      boxes.push(box);
    }
    if (opts.difficultRule && !isDifficultPair(boxes, pair.otherClasses, W, H)) {
      out.notDifficult.push(pair);
      continue;
    }
    input ??= toChannels(toModelInput(img, w, h, opts.preprocess), c);
    out.samples.push({
      pair,
      sample: {
        image: input,
        mask,
        box: objectPixelBox(unionBox(boxes), s as Scale),
        label: pair.candidates[0],
      },
    });
  }
  return out;
}
