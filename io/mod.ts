/**
 * Image and array input/output for the saliency pipeline, outside the core: PNG/JPEG decoding
 * (`decode.ts`, `png.ts`, `jpeg.ts`), bilinear / area resizing (`resample.ts`), model-input
 * preprocessing (`preprocess.ts`), PNG encoding (`png.ts`) and NumPy `.npy` files (`npy.ts`).
 *
 * Everything here works on bytes and typed arrays only (no file system, no Deno APIs), so it
 * runs in Deno and in browsers alike.
 *
 * Memory: a 10000x10000 photo is 400 MB as 8-bit RGBA but 1.2 GB as float RGB. The pipeline
 * {@linkcode prepareInput} therefore decodes to 8-bit RGBA ({@linkcode decodeImageRgba8}) and
 * resizes straight to float model input ({@linkcode resizeRgba8ToRgb}), so no full-size float
 * copy is ever held. {@linkcode decodeImage} (full-size float) is for small images and tests.
 *
 * @example Decode, resize and normalise a photo for a 224x224 ImageNet model
 * ```ts
 * import { prepareInput } from "./mod.ts";
 * const png = new Uint8Array(0); // e.g. await Deno.readFile("fox.png") in the CLI
 * if (png.length > 0) {
 *   const { input, original } = await prepareInput(png, 224, 224, "imagenet");
 *   console.log(input.length === 224 * 224 * 3, original.width, original.height);
 * }
 * ```
 *
 * @module
 */
export * from "./image_types.ts";
export { decodeImage, decodeImageRgba8, detectImageFormat, rgba8ToRgb } from "./decode.ts";
export { encodePng } from "./png.ts";
export { applyOrientation, type JpegHeader, readJpegHeader } from "./jpeg.ts";
export * from "./resample.ts";
export * from "./preprocess.ts";
export * from "./npy.ts";
