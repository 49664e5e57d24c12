/**
 * Guided backpropagation (Springenberg et al. 2015, TorchRay's `guided_backprop`): the
 * gradient of the target score w.r.t. the input, where every ReLU's backward passes the
 * signal only where the ReLU's input is not negative (an input of exactly 0 passes) and
 * then keeps only its positive part. All other ops (conv, dense, pools, batch norm, add,
 * ...) use their ordinary gradient; activations other than ReLU keep theirs too.
 *
 * Options: `reduce` (default `max-abs`, TorchRay's max over channels of |pseudo-gradient|;
 * see {@linkcode ChannelReduction}).
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "guided-backprop" });
 * ```
 *
 * @module
 */
import type { BackwardRule } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { type ChannelReduction, inputGradientMethod } from "./gradient.ts";

export type { ChannelReduction };

/**
 * The guided-backprop rule for ReLU activation ops: `g * (x >= 0)`, then `max(., 0)`.
 * Returns `undefined` (ordinary gradient) for every other op.
 */
export const guidedReluRule: BackwardRule = (ctx) => {
  if (ctx.op.kind !== "activation" || ctx.op.params.activation !== "relu") return undefined;
  const [x] = ctx.inputs;
  return [tf.tidy(() => tf.relu(ctx.dy.mul(tf.greaterEqual(x, 0).cast(ctx.dy.dtype))))];
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
