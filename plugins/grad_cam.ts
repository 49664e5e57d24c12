/**
 * Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of the gradient of
 * the target score at the layer's output; the map is ReLU(sum_c w_c A_c).
 *
 * Raw maps are in logit units at the layer's resolution (TorchRay's `grad_cam`); `explain`
 * by default min-max normalises them and resizes them to the input (pytorch-grad-cam's
 * output). Options: `raw` (no ReLU) and `inplaceRelu` ("torchray" | "pgc") to reproduce the
 * two libraries' behaviour at a conv layer followed by an in-place ReLU.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "grad-cam", layer: "block5_conv3" });
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
