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
 * @example Evaluate on one's own labelled images (here: two generated scenes and a CSV of boxes)
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildClassMapping, evaluateDataset, loadDataset } from "./mod.ts";
 * import { formatEvalTable, initBackend, loadLabels, loadLayersModel } from "../mod.ts";
 * import { generateScene } from "../models/scenes.ts";
 * import { sceneToPng } from "../models/make_samples.ts";
 *
 * const dir = await Deno.makeTempDir();
 * let csv = "image,class,x0,y0,x1,y1\n";
 * for (const seed of [3000002, 3000003]) {
 *   const scene = generateScene(seed);
 *   await Deno.writeFile(`${dir}/${seed}.png`, await sceneToPng(scene));
 *   csv += `${seed}.png,${scene.className},${scene.box.join(",")}\n`;
 * }
 * await Deno.writeTextFile(`${dir}/labels.csv`, csv);
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const labels = await loadLabels("models/shapes-vgg/labels.json");
 * const dataset = loadDataset(`${dir}/labels.csv`);
 * const mapping = buildClassMapping({ labels, numClasses: labels.length });
 * const r = await evaluateDataset({
 *   model,
 *   dataset,
 *   mapping,
 *   preprocess: "unit",
 *   methods: ["grad-cam"],
 *   extrapolators: ["none", "gradual"],
 *   steps: 8,
 * });
 * console.log(formatEvalTable(r));
 * assert.equal(r.summary.evaluated, 2); // (triangle image, triangle), (square image, square)
 * await Deno.remove(dir, { recursive: true });
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
