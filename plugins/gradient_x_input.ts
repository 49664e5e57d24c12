/**
 * Gradient x input (Shrikumar et al. 2016): the input times the gradient of the target
 * score w.r.t. it, elementwise, reduced over the channels.
 *
 * Options: `reduce` (default `sum`: the signed sum over channels, so the map's total is the
 * first-order Taylor estimate of `f(x) - f(0)`; see {@linkcode ChannelReduction}). With the
 * request's `layer`, the product is taken at that layer's output instead of the input.
 *
 * @example Gradient x input on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "gradient-x-input" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import type { SaliencyMethod } from "../core/types.ts";
import { type ChannelReduction, inputGradientMethod } from "./gradient.ts";

export type { ChannelReduction };

/** The gradient x input method plugin (`gradient-x-input`, aliases `input-x-gradient`, `gxi`). */
export const gradientXInput: SaliencyMethod = inputGradientMethod({
  name: "gradient-x-input",
  aliases: ["input-x-gradient", "gradient*input", "gxi"],
  description:
    "Gradient x input: input times the gradient of the target score, summed over channels",
  defaultReduce: "sum",
  timesInput: true,
});

export default gradientXInput;
