/**
 * Evaluating saliency methods on anyone's labelled images: COCO instances files, Pascal
 * VOC folders and a simple manifest (JSON or CSV), read into one form
 * ({@linkcode loadDataset}), mapped onto the model's classes ({@linkcode buildClassMapping}),
 * split into (image, class) pairs as in TorchRay's pointing-game benchmark
 * ({@linkcode datasetPairs}, including its "difficult" subset) and scored with the metrics
 * of `metrics/` by {@linkcode evaluateDataset}, streaming and resumable.
 *
 * Reads files with Deno APIs (the parsers `parseCoco`, `parseVocXml`, `parseManifestCsv`,
 * `decodeRle` and the rasterisers are pure and run anywhere).
 *
 * @example
 * ```ts
 * import "../plugins/mod.ts";
 * import { buildClassMapping, evaluateDataset, loadDataset } from "./mod.ts";
 * import { formatEvalTable } from "../metrics/mod.ts";
 * import { loadLabels, loadLayersModel } from "../core/model_io.ts";
 * // const model = await loadLayersModel("models/shapes-vgg/model.json");
 * // const labels = await loadLabels("models/shapes-vgg/labels.json");
 * // const dataset = loadDataset("my-labels.csv");
 * // const mapping = buildClassMapping({ labels, numClasses: labels.length });
 * // const r = await evaluateDataset({ model, dataset, mapping, preprocess: "unit",
 * //   methods: ["grad-cam"], extrapolators: ["none", "gradual"] });
 * // console.log(formatEvalTable(r));
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export * from "./xml.ts";
export * from "./rle.ts";
export * from "./raster.ts";
export * from "./coco.ts";
export * from "./voc.ts";
export * from "./manifest.ts";
export * from "./load.ts";
export * from "./classes.ts";
export * from "./pairs.ts";
export * from "./samples.ts";
export * from "./results.ts";
export * from "./evaluate.ts";
