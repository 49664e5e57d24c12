/**
 * DeconvNet (Zeiler & Fergus 2014, TorchRay's `deconvnet`): the pseudo-gradient of the
 * target score w.r.t. the input where every ReLU's backward is `max(g, 0)` regardless of the
 * forward pass. All other ops use their ordinary gradient (max-pools route each output's
 * signal to the first arg-max of its window, the "switches").
 *
 * Options: `reduce` (default `max-abs`, TorchRay's max over channels of |pseudo-gradient|;
 * see {@linkcode ChannelReduction}).
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "deconvnet" });
 * ```
 *
 * @module
 */
import type { BackwardRule } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { type ChannelReduction, inputGradientMethod } from "./gradient.ts";

export type { ChannelReduction };

/** The deconvnet rule for ReLU activation ops: `max(g, 0)`; other ops keep their gradient. */
export const deconvReluRule: BackwardRule = (ctx) => {
  if (ctx.op.kind !== "activation" || ctx.op.params.activation !== "relu") return undefined;
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
