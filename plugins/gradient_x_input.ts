/**
 * Gradient x input (Shrikumar et al. 2016): the input times the gradient of the target
 * score w.r.t. it, elementwise, reduced over the channels.
 *
 * Options: `reduce` (default `sum`: the signed sum over channels, so the map's total is the
 * first-order Taylor estimate of `f(x) - f(0)`; see {@linkcode ChannelReduction}). With the
 * request's `layer`, the product is taken at that layer's output instead of the input.
 *
 * @example
 * ```ts
 * import { explain } from "../mod.ts";
 * // const [e] = await explain(model, x, { method: "gradient-x-input" });
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
