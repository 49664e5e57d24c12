/**
 * Guided backpropagation (Springenberg et al. 2015, TorchRay's `guided_backprop`): the
 * gradient of the target score w.r.t. the input, where every ReLU's backward passes the
 * signal only where the ReLU's input is not negative (an input of exactly 0 passes) and
 * then keeps only its positive part. The ReLU family follows the same idea:
 * - clipped ReLUs (`ReLU6`, `ReLU(maxValue)`): the signal passes where `0 <= x < max` (where
 *   the unit is neither off nor saturated), then its positive part;
 * - `LeakyReLU`, `PReLU`, `ThresholdedReLU`, `ELU`: the positive part of the ordinary
 *   gradient (the negative side scales the signal by its slope instead of blocking it).
 * All other ops (conv, dense, pools, batch norm, add, multiply, upsampling, ...) use their
 * ordinary gradient; smooth activations (sigmoid, tanh, swish, gelu, mish, ...) keep theirs
 * too (guided backprop is defined for ReLUs only).
 *
 * Options: `reduce` (default `max-abs`, TorchRay's max over channels of |pseudo-gradient|;
 * see {@linkcode ChannelReduction}).
 *
 * @example Guided backpropagation on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "guided-backprop" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
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

/**
 * The guided-backprop rule for ReLU-family activation ops (see the module doc); returns
 * `undefined` (ordinary gradient) for every other op.
 */
export const guidedReluRule: BackwardRule = (ctx) => {
  const { op } = ctx;
  if (!isReluFamily(op)) return undefined;
  const [x] = ctx.inputs;
  const a = op.params.activation;
  if (a === "relu" && op.params.maxValue === undefined) {
    return [tf.tidy(() => tf.relu(ctx.dy.mul(tf.greaterEqual(x, 0).cast(ctx.dy.dtype))))];
  }
  if (a === "relu" || a === "relu6") {
    const top = a === "relu6" ? 6 : op.params.maxValue!;
    return [
      tf.tidy(() => {
        const open = tf.logicalAnd(tf.greaterEqual(x, 0), tf.less(x, top));
        return tf.relu(ctx.dy.mul(open.cast(ctx.dy.dtype)));
      }),
    ];
  }
  // Leaky / parametric / thresholded ReLU, ELU: the ordinary gradient, positive part kept.
  const gs = ctx.standard();
  const out = tf.tidy(() => tf.relu(gs[0]));
  gs.forEach((g) => g.dispose());
  return [out];
};

/** The guided backpropagation method plugin (`guided-backprop`, alias `guided-backpropagation`). */
export const guidedBackprop: SaliencyMethod = inputGradientMethod({
  name: "guided-backprop",
  aliases: ["guided-backpropagation", "guided_backprop"],
  description: "Guided backprop: ReLUs pass only positive signal where their input is >= 0",
  defaultReduce: "max-abs",
  rule: guidedReluRule,
});

export default guidedBackprop;
