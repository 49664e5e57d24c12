/**
 * Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of the gradient of
 * the target score at the layer's output; the map is ReLU(sum_c w_c A_c).
 *
 * Raw maps are in logit units at the layer's resolution (TorchRay's `grad_cam`); `explain`
 * by default min-max normalises them and resizes them to the input (pytorch-grad-cam's
 * output). Options: `raw` (no ReLU) and `inplaceRelu` ("torchray" | "pgc") to reproduce the
 * two libraries' behaviour at a conv layer followed by an in-place ReLU.
 *
 * @example Grad-CAM on the built-in shapes model
 * ```ts
 * import assert from "node:assert/strict";
 * import { explain, initBackend, loadLayersModel, pointingGame } from "../mod.ts";
 * import { tf } from "../core/tf.ts";
 * import { BUILTIN_MODELS } from "../models/builtin.ts";
 * import { generateScene } from "../models/scenes.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl);
 * const scene = generateScene(3000003); // a square among other shapes, with its mask
 * const x = tf.tensor4d(scene.image, [1, 128, 128, 3]);
 * const [e] = await explain(model, x, { method: "grad-cam" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * assert.equal(e.layer, "block5_relu1"); // by default the last convolutional block
 * ```
 *
 * @module
 */
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod, weightedChannelSum } from "./cam_base.ts";

/** The Grad-CAM method plugin (`grad-cam`, alias `gradcam`). */
export const gradCam: SaliencyMethod = camMethod({
  name: "grad-cam",
  aliases: ["gradcam"],
  description: "Grad-CAM: activations weighted by the spatial mean of their gradient",
  combine: (a, g) => tf.tidy(() => weightedChannelSum(a, g!.mean([1, 2]))),
});

export default gradCam;
