/**
 * DeconvNet (Zeiler & Fergus 2014, TorchRay's `deconvnet`): the pseudo-gradient of the
 * target score w.r.t. the input where every ReLU's backward is `max(g, 0)` regardless of the
 * forward pass. The whole ReLU family (`ReLU6` and other clipped ReLUs, `LeakyReLU`, `PReLU`,
 * `ThresholdedReLU`, `ELU`) gets the same rule: deconvnet rectifies the backward signal and
 * ignores the forward. All other ops use their ordinary gradient (max-pools route each
 * output's signal to the first arg-max of its window, the "switches"; smooth activations
 * such as sigmoid, swish or gelu keep their derivative).
 *
 * Options: `reduce` (default `max-abs`, TorchRay's max over channels of |pseudo-gradient|;
 * see {@linkcode ChannelReduction}).
 *
 * @example Deconvnet on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "deconvnet" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * assert.deepEqual([e.height, e.width], [128, 128]); // at the input resolution
 * ```
 *
 * @module
 */
import type { BackwardRule } from "../core/session.ts";
import { isReluFamily } from "../core/layer_ops.ts";
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { type ChannelReduction, inputGradientMethod } from "./gradient.ts";

export type { ChannelReduction };

/** The deconvnet rule for ReLU-family activation ops: `max(g, 0)`; other ops keep their gradient. */
export const deconvReluRule: BackwardRule = (ctx) => {
  if (!isReluFamily(ctx.op)) return undefined;
  return [tf.relu(ctx.dy)];
};

/** The deconvnet method plugin (`deconvnet`, alias `deconv`). */
export const deconvnet: SaliencyMethod = inputGradientMethod({
  name: "deconvnet",
  aliases: ["deconv"],
  description: "DeconvNet: ReLUs pass max(signal, 0) backwards, regardless of the forward",
  defaultReduce: "max-abs",
  rule: deconvReluRule,
});

export default deconvnet;
