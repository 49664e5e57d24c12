/**
 * HiResCAM (Draelos & Carin 2020): Grad-CAM without the spatial averaging of the gradient,
 * map = ReLU(sum_c G_c * A_c) with A the layer's activations and G the gradient of the
 * target score at them.
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "hires-cam" });
 * ```
 *
 * @module
 */
import { type Tensor3D, tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { camMethod } from "./cam_base.ts";

/** The HiResCAM method plugin (`hires-cam`, alias `hirescam`). */
export const hiresCam: SaliencyMethod = camMethod({
  name: "hires-cam",
  aliases: ["hirescam"],
  description: "HiResCAM: activations times their gradient, summed over channels",
  combine: (a, g) => tf.tidy(() => g!.mul(a).sum(-1) as Tensor3D),
});

export default hiresCam;
