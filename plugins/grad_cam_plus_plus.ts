/**
 * Grad-CAM++ (Chattopadhay et al. 2018), as pytorch-grad-cam computes it: with A the
 * layer's activations and G the gradient of the target score at them,
 * `alpha = G^2 / (2 G^2 + (sum_ij A_c) G^3 + 1e-6)` (and 0 where G is exactly 0), channel
 * weights `w_c = sum_ij max(G, 0) * alpha`, map = ReLU(sum_c w_c A_c).
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "grad-cam++" });
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
