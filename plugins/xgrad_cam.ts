/**
 * XGrad-CAM (Fu et al. 2020): channel weights `w_c = sum_ij G_c A_c / (sum_ij A_c + 1e-7)`
 * (A the layer's activations, G the gradient of the target score at them), map =
 * ReLU(sum_c w_c A_c).
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example XGrad-CAM on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "xgrad-cam" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod, weightedChannelSum } from "./cam_base.ts";

/** The XGrad-CAM method plugin (`xgrad-cam`, alias `xgradcam`). */
export const xgradCam: SaliencyMethod = camMethod({
  name: "xgrad-cam",
  aliases: ["xgradcam"],
  description: "XGrad-CAM: activations weighted by sum(G*A) / sum(A) per channel",
  combine: (a, g) =>
    tf.tidy(() => {
      const w = g!.mul(a).sum([1, 2]).div(a.sum([1, 2]).add(1e-7));
      return weightedChannelSum(a, w);
    }),
});

export default xgradCam;
