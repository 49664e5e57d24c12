/**
 * Model input from image files: preprocessing presets (ImageNet, Caffe, [-1, 1], ...) and
 * {@linkcode prepareInput}, which decodes, resizes and normalises in one pass.
 *
 * @module
 */
import type { AlphaMode, Rgba8Source, RgbImage } from "./image_types.ts";
import { checkLength } from "./_pixels.ts";
import { decodeImageRgba8 } from "./decode.ts";
import { resizeBilinear, type ResizeOptions, resizeRgba8ToRgb } from "./resample.ts";

/**
 * Named input normalisations (input values are RGB in [0, 1]):
 * - `"imagenet"`: `(x - mean) / std`, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
 *   (torchvision / PyTorch models);
 * - `"unit"`: x in [0, 1];
 * - `"symmetric"`: `2x - 1` in [-1, 1] (Keras MobileNet / Inception "tf" mode);
 * - `"caffe"`: BGR order, `255x - (103.939, 116.779, 123.68)` (Keras VGG16 / ResNet50);
 * - `"raw"`: `255x`, pixel values 0..255 (models that rescale inside, e.g. EfficientNet's
 *   `Rescaling` stem);
 * - `"none"`: values unchanged.
 */
export type PreprocessPreset = "imagenet" | "unit" | "symmetric" | "caffe" | "raw" | "none";

/**
 * A custom normalisation: `out[c] = (x[c'] * scale - mean[c]) / std[c]`, where `c' = 2 - c`
 * when `bgr` is set (channel order swapped before the mean is subtracted, so `mean`/`std` are in
 * output order). Fields left out come from `preset` (default `"none"`). `mean` / `std` take 1
 * (broadcast) or 3 values.
 */
export interface Preprocess {
  /** Base preset whose values the other fields override. */
  preset?: PreprocessPreset;
  /** Per-channel mean subtracted after scaling (output channel order). */
  mean?: number[];
  /** Per-channel divisor (output channel order). */
  std?: number[];
  /** Multiplier applied to the [0, 1] input first (e.g. 255). */
  scale?: number;
  /** Emit channels in BGR order. */
  bgr?: boolean;
}

interface ResolvedPreprocess {
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  bgr: boolean;
}

const PRESETS: Record<PreprocessPreset, ResolvedPreprocess> = {
  imagenet: { scale: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false },
  unit: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
  symmetric: { scale: 2, mean: [1, 1, 1], std: [1, 1, 1], bgr: false },
  caffe: { scale: 255, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true },
  raw: { scale: 255, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
  none: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
};

/** The preset names, in documentation order. */
export const PREPROCESS_PRESETS: readonly PreprocessPreset[] = Object.freeze([
  "imagenet",
  "unit",
  "symmetric",
  "caffe",
  "raw",
  "none",
]);

function triple(v: number[] | undefined, fallback: number[], what: string): [
  number,
  number,
  number,
] {
  const a = v ?? fallback;
  if (a.length === 1) return [a[0], a[0], a[0]];
  if (a.length === 3) return [a[0], a[1], a[2]];
  throw new RangeError(`preprocess ${what} needs 1 or 3 values, got ${a.length}`);
}

function resolvePreprocess(p: Preprocess | PreprocessPreset): ResolvedPreprocess {
  const spec: Preprocess = typeof p === "string" ? { preset: p } : p;
  const presetName = spec.preset ?? "none";
  const base = PRESETS[presetName];
  if (!base) {
    throw new RangeError(
      `unknown preprocess preset "${presetName}" (one of ${PREPROCESS_PRESETS.join(", ")})`,
    );
  }
  const std = triple(spec.std, base.std, "std");
  if (std.some((s) => s === 0 || !Number.isFinite(s))) {
    throw new RangeError("preprocess std values must be finite and non-zero");
  }
  return {
    scale: spec.scale ?? base.scale,
    mean: triple(spec.mean, base.mean, "mean"),
    std,
    bgr: spec.bgr ?? base.bgr,
  };
}

/**
 * Normalise an HWC RGB float buffer in place (see {@linkcode preprocess}).
 *
 * @param data `n * 3` floats, RGB in [0, 1]; overwritten
 * @param p a preset name or custom {@linkcode Preprocess}
 * @returns `data`
 */
export function preprocessInPlace(
  data: Float32Array,
  p: Preprocess | PreprocessPreset,
): Float32Array {
  if (data.length % 3 !== 0) throw new RangeError("preprocess expects RGB data (length % 3 == 0)");
  const { scale, mean, std, bgr } = resolvePreprocess(p);
  const [m0, m1, m2] = mean, [s0, s1, s2] = std;
  if (scale === 1 && !bgr && m0 === 0 && m1 === 0 && m2 === 0 && s0 === 1 && s1 === 1 && s2 === 1) {
    return data;
  }
  for (let i = 0; i < data.length; i += 3) {
    const g = data[i + 1] * scale;
    const r = (bgr ? data[i + 2] : data[i]) * scale;
    const b = (bgr ? data[i] : data[i + 2]) * scale;
    data[i] = (r - m0) / s0;
    data[i + 1] = (g - m1) / s1;
    data[i + 2] = (b - m2) / s2;
  }
  return data;
}

/**
 * Apply a model's input normalisation to an RGB image (values in [0, 1]).
 *
 * @example
 * ```ts
 * import { preprocess } from "./preprocess.ts";
 * const img = { width: 1, height: 1, data: new Float32Array([1, 0.5, 0]) };
 * console.log(preprocess(img, "symmetric")); // Float32Array [1, 0, -1]
 * console.log(preprocess(img, { preset: "imagenet" })[0]); // (1 - 0.485) / 0.229
 * ```
 *
 * @param img RGB image in [0, 1]
 * @param p a preset name or custom {@linkcode Preprocess}
 * @returns a new HWC float array (`width * height * 3`), channel order BGR for `caffe`
 */
export function preprocess(img: RgbImage, p: Preprocess | PreprocessPreset): Float32Array {
  checkLength(img.data.length, img.width * img.height * 3, "RGB data");
  return preprocessInPlace(img.data.slice(), p);
}

/** Options of {@linkcode toModelInput} and {@linkcode prepareInput}. */
export interface PrepareOptions extends ResizeOptions {
  /** Alpha handling of RGBA sources; default `"drop"`. */
  alpha?: AlphaMode;
  /** File name for error messages. */
  name?: string;
}

/**
 * Resize an already-decoded image to the model's input size and normalise it.
 * Antialiasing defaults to true (area averaging when shrinking).
 *
 * @param img an 8-bit RGBA image or a float RGB image
 * @param width model input width
 * @param height model input height
 * @param p preset name or custom normalisation
 * @param opts resize / alpha options
 * @returns HWC float input, `width * height * 3`
 */
export function toModelInput(
  img: Rgba8Source | RgbImage,
  width: number,
  height: number,
  p: Preprocess | PreprocessPreset,
  opts: PrepareOptions = {},
): Float32Array {
  const ropts: ResizeOptions = {
    alignCorners: opts.alignCorners,
    antialias: opts.antialias ?? true,
  };
  const resized = img.data instanceof Float32Array
    ? resizeBilinear(img.data, img.width, img.height, 3, width, height, ropts)
    : resizeRgba8ToRgb(img as Rgba8Source, width, height, { ...ropts, alpha: opts.alpha });
  return preprocessInPlace(resized, p);
}

/** Result of {@linkcode prepareInput}. */
export interface PreparedInput {
  /** Normalised HWC float input, `width * height * 3`. */
  input: Float32Array;
  /** Model input width. */
  width: number;
  /** Model input height. */
  height: number;
  /** Size of the decoded source image. */
  original: { width: number; height: number };
}

/**
 * Decode (if given bytes), resize to the model input size and normalise, never holding a
 * full-size float copy of the photo.
 *
 * @example
 * ```ts
 * import { encodePng } from "./png.ts";
 * import { prepareInput } from "./preprocess.ts";
 * const png = await encodePng(2, 2, new Uint8Array(16).fill(255));
 * const { input, original } = await prepareInput(png, 4, 4, "unit");
 * console.log(input.length, original); // 48 { width: 2, height: 2 }
 * ```
 *
 * @param source encoded PNG/JPEG bytes, an 8-bit RGBA image, or a float RGB image
 * @param targetW model input width
 * @param targetH model input height
 * @param p preset name or custom normalisation (default `"imagenet"`)
 * @param opts resize (antialias defaults to true) / alpha options and a name for errors
 * @returns the input tensor data and the original size
 * @throws {ImageError} when the bytes are not a decodable image
 */
export async function prepareInput(
  source: Uint8Array | Rgba8Source | RgbImage,
  targetW: number,
  targetH: number,
  p: Preprocess | PreprocessPreset = "imagenet",
  opts: PrepareOptions = {},
): Promise<PreparedInput> {
  const img = source instanceof Uint8Array
    ? await decodeImageRgba8(source, opts.name)
    : source as Rgba8Source | RgbImage;
  return {
    input: toModelInput(img, targetW, targetH, p, opts),
    width: targetW,
    height: targetH,
    original: { width: img.width, height: img.height },
  };
}
