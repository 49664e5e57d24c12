/**
 * Grad-CAM++ (Chattopadhay et al. 2018), as pytorch-grad-cam computes it: with A the
 * layer's activations and G the gradient of the target score at them,
 * `alpha = G^2 / (2 G^2 + (sum_ij A_c) G^3 + 1e-6)` (and 0 where G is exactly 0), channel
 * weights `w_c = sum_ij max(G, 0) * alpha`, map = ReLU(sum_c w_c A_c).
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example Grad-CAM++ on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "grad-cam++" });
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

/** The Grad-CAM++ method plugin (`grad-cam++`, aliases `gradcampp`, `grad-cam-plus-plus`). */
export const gradCamPlusPlus: SaliencyMethod = camMethod({
  name: "grad-cam++",
  aliases: ["gradcampp", "gradcam++", "grad-cam-plus-plus"],
  description: "Grad-CAM++: activations weighted by positive gradients with second-order alphas",
  combine: (a, g) =>
    tf.tidy(() => {
      const grad = g!;
      const g2 = grad.square();
      const g3 = g2.mul(grad);
      const sumA = a.sum([1, 2], true);
      const alpha = g2.div(g2.mul(2).add(sumA.mul(g3)).add(1e-6));
      const alphaMasked = tf.where(tf.notEqual(grad, 0), alpha, tf.zerosLike(alpha));
      const w = tf.relu(grad).mul(alphaMasked).sum([1, 2]);
      return weightedChannelSum(a, w);
    }),
});

export default gradCamPlusPlus;
