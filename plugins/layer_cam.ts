/**
 * LayerCAM (Jiang et al. 2021): elementwise weights, map = ReLU(sum_c max(G_c, 0) * A_c)
 * with A the layer's activations and G the gradient of the target score at them.
 *
 * Options: `raw` (no final ReLU) and `inplaceRelu`, as for Grad-CAM.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "layer-cam" });
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
