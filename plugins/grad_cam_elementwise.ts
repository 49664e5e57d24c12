/**
 * Grad-CAM element-wise (pytorch-grad-cam's `GradCAMElementWise`): map =
 * ReLU(sum_c max(G_c * A_c, 0)) with A the layer's activations and G the gradient of the
 * target score at them. At a post-ReLU layer (A >= 0) this equals LayerCAM.
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "grad-cam-elementwise" });
 * ```
 *
 * @module
 */
import { type Tensor3D, tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod } from "./cam_base.ts";

/** The element-wise Grad-CAM method plugin (`grad-cam-elementwise`, alias `gradcamelementwise`). */
export const gradCamElementwise: SaliencyMethod = camMethod({
  name: "grad-cam-elementwise",
  aliases: ["gradcamelementwise", "grad-cam-element-wise"],
  description: "Grad-CAM element-wise: positive part of G*A, summed over channels",
  combine: (a, g) => tf.tidy(() => tf.relu(g!.mul(a)).sum(-1) as Tensor3D),
});

export default gradCamElementwise;
