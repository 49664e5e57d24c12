/**
 * LayerCAM (Jiang et al. 2021): elementwise weights, map = ReLU(sum_c max(G_c, 0) * A_c)
 * with A the layer's activations and G the gradient of the target score at them.
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example LayerCAM on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "layer-cam" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import { type Tensor3D, tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod } from "./cam_base.ts";

/** The LayerCAM method plugin (`layer-cam`, alias `layercam`). */
export const layerCam: SaliencyMethod = camMethod({
  name: "layer-cam",
  aliases: ["layercam"],
  description: "LayerCAM: activations weighted elementwise by their positive gradient",
  combine: (a, g) => tf.tidy(() => tf.relu(g!).mul(a).sum(-1) as Tensor3D),
});

export default layerCam;
