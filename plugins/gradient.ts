/**
 * Vanilla gradient saliency (Simonyan et al. 2014, TorchRay's `gradient`): the gradient of
 * the target score with respect to the input, reduced over the channels to one map per
 * image at input resolution.
 *
 * This module also holds the small machinery the other input-gradient methods share
 * (guided backprop, deconvnet, gradient x input, SmoothGrad, integrated gradients): the
 * channel reductions, one backward pass to a layer under an optional backward rule, and
 * targets tiled over a batch of perturbed copies.
 *
 * Options:
 * - `reduce`: how the channels become one map, see {@linkcode ChannelReduction}; default
 *   `max-abs` (TorchRay's max over channels of |gradient|);
 * - the explain request's `layer` (not an option): differentiate at that layer's output
 *   instead of the input (default: the model input).
 *
 * @example The input gradient on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "gradient", methodOptions: { reduce: "max-abs" } });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * assert.deepEqual([e.height, e.width], [128, 128]); // at the input resolution
 * ```
 *
 * @module
 */
import type { ModelGraph } from "../core/graph.ts";
import type { BackwardRule, Pass } from "../core/session.ts";
import type { TargetRound } from "../core/targets.ts";
import { type Tensor, type Tensor2D, type Tensor3D, tf } from "../core/tensor.ts";
import {
  type MethodContext,
  PLUGIN_API_VERSION,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";

/**
 * How a `[N, H, W, C]` attribution becomes a `[N, H, W]` map:
 * - `max-abs`: max over channels of the absolute value (TorchRay);
 * - `sum-abs`: sum over channels of the absolute value;
 * - `sum`: signed sum over channels (keeps completeness: the map sums to the total);
 * - `l2`: Euclidean norm over channels;
 * - `max`: signed max over channels.
 */
export type ChannelReduction = "max-abs" | "sum-abs" | "sum" | "l2" | "max";

/** Every {@linkcode ChannelReduction}. */
export const REDUCTIONS: readonly ChannelReduction[] = ["max-abs", "sum-abs", "sum", "l2", "max"];

/** The doc line of the `reduce` option. */
export const REDUCE_DOC: string =
  "how the channels become one map (max-abs: TorchRay's; sum keeps completeness)";

/** The declaration of the `reduce` option with its default. */
export function reduceOption(
  fallback: ChannelReduction,
): {
  readonly type: "string";
  readonly values: readonly ChannelReduction[];
  readonly default: ChannelReduction;
  readonly doc: string;
} {
  return {
    type: "string",
    values: REDUCTIONS,
    default: fallback,
    doc: REDUCE_DOC,
  };
}

/** Validated options of an input-gradient method. */
export interface InputGradientOptions {
  /** The channel reduction. */
  readonly reduce: ChannelReduction;
  /** Other options (none for the built-in input-gradient methods). */
  readonly [key: string]: unknown;
}

/** Reduces an NHWC attribution over its channels (see {@linkcode ChannelReduction}). */
export function reduceChannels(x: Tensor, how: ChannelReduction): Tensor3D {
  return tf.tidy(() => {
    if (x.rank !== 4) {
      throw new Error(
        `cannot reduce an attribution of shape [${x.shape}] to a map (need 4-D NHWC)`,
      );
    }
    switch (how) {
      case "max-abs":
        return x.abs().max(-1) as Tensor3D;
      case "sum-abs":
        return x.abs().sum(-1) as Tensor3D;
      case "sum":
        return x.sum(-1) as Tensor3D;
      case "l2":
        return x.square().sum(-1).sqrt() as Tensor3D;
      case "max":
        return x.max(-1) as Tensor3D;
    }
  });
}

/**
 * One backward pass of the round's seed to `layer`, under an optional backward rule.
 * Returns the (pseudo-)gradient at the layer's output; the caller owns it.
 */
export function gradientAtLayer(
  pass: Pass,
  targets: TargetRound,
  layer: string,
  rule?: BackwardRule,
): Tensor {
  const seed = targets.seed(pass.scores);
  try {
    const [g] = pass.backward(seed, { wrt: [layer], rule });
    return g;
  } finally {
    seed.dispose();
  }
}

/**
 * Targets for a batch made of `copies` blocks of the original `n` images (block-major:
 * rows `k * n .. (k + 1) * n - 1` are copy k of images 0..n-1). The seed is computed block
 * by block with the original round's seed function, so custom score functions work too.
 */
export function tiledTargets(round: TargetRound, n: number, copies: number): TargetRound {
  const classes: number[] = [];
  for (let k = 0; k < copies; k++) classes.push(...round.classes);
  return {
    classes,
    seed(scores: Tensor2D): Tensor {
      if (copies === 1) return round.seed(scores);
      const parts: Tensor[] = [];
      try {
        for (let k = 0; k < copies; k++) {
          const block = tf.tidy(() => scores.slice([k * n, 0], [n, -1]) as Tensor2D);
          try {
            parts.push(round.seed(block));
          } finally {
            block.dispose();
          }
        }
        return tf.concat(parts, 0);
      } finally {
        parts.forEach((p) => p.dispose());
      }
    },
  };
}

/**
 * The layer an input-gradient method works at: the request's layer, else the input (the
 * model input's name is a valid layer everywhere a layer is asked for).
 */
export function inputLayer(graph: ModelGraph, layer: string | undefined): string {
  return layer ?? graph.inputName;
}

/** Definition of a method that reduces a (pseudo-)gradient at a layer to a map. */
export interface InputGradientDefinition {
  /** Registry name. */
  name: string;
  /** Aliases. */
  aliases?: string[];
  /** One-line description. */
  description: string;
  /** Default channel reduction. */
  defaultReduce: ChannelReduction;
  /** Backward rule (guided backprop, deconvnet), or none for the plain gradient. */
  rule?: BackwardRule;
  /** Whether to multiply the gradient by the layer's value (gradient x input). */
  timesInput?: boolean;
}

/**
 * Builds a {@linkcode SaliencyMethod} from an input-gradient definition: the
 * (pseudo-)gradient of the target score at the model input (or at the request's layer),
 * optionally times the input, reduced over the channels to maps at that layer's resolution.
 * It declares one option, `reduce`.
 *
 * @example
 * ```ts
 * import { inputGradientMethod } from "../mod.ts";
 * const sumGradient = inputGradientMethod({
 *   name: "sum-gradient",
 *   description: "Gradient w.r.t. the input, summed over the channels",
 *   defaultReduce: "sum",
 * });
 * ```
 */
export function inputGradientMethod(
  def: InputGradientDefinition,
): SaliencyMethod<InputGradientOptions> {
  return {
    kind: "method",
    apiVersion: PLUGIN_API_VERSION,
    name: def.name,
    aliases: def.aliases,
    description: def.description,
    usesRules: def.rule !== undefined,
    options: { reduce: reduceOption(def.defaultReduce) },
    defaultLayer: (graph: ModelGraph): string => graph.inputName,
    requires(graph: ModelGraph, layer: string | undefined): Requirements {
      const l = inputLayer(graph, layer);
      return { record: def.timesInput ? [l] : [], gradientsFrom: [l] };
    },
    run(ctx: MethodContext<InputGradientOptions>): SaliencyMaps {
      const graph = ctx.session.graph;
      const layer = inputLayer(graph, ctx.layer);
      const how = ctx.options.reduce;
      const g = gradientAtLayer(ctx.pass, ctx.targets, layer, def.rule);
      const maps = tf.tidy(() => {
        const attr = def.timesInput ? g.mul(ctx.pass.activation(layer)) : g;
        return reduceChannels(attr, how);
      });
      g.dispose();
      return {
        maps,
        method: def.name,
        layer,
        classes: ctx.targets.classes,
        resolution: [maps.shape[1], maps.shape[2]],
      };
    },
  };
}

/** The vanilla gradient method plugin (`gradient`, aliases `vanilla-gradient`, `saliency`). */
export const gradient: SaliencyMethod = inputGradientMethod({
  name: "gradient",
  aliases: ["vanilla-gradient", "saliency"],
  description: "Gradient of the target score w.r.t. the input, max |.| over channels",
  defaultReduce: "max-abs",
});

export default gradient;
