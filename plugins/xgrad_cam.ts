/**
 * XGrad-CAM (Fu et al. 2020): channel weights `w_c = sum_ij G_c A_c / (sum_ij A_c + 1e-7)`
 * (A the layer's activations, G the gradient of the target score at them), map =
 * ReLU(sum_c w_c A_c).
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "xgrad-cam" });
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
