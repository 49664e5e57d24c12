/**
 * Gradual extrapolation (Szandała, "Gradual Extrapolation"): sharpens any method's coarse
 * map by walking back through the network. At every resolution-reducing layer (each max or
 * average pool and each strided convolution, on any branch), from the deepest to the
 * shallowest, the map is bilinearly resized (half-pixel centres, no antialiasing) to that
 * layer's output size and multiplied by that output's channel sum divided by its maximum;
 * the last step uses the input of the first reducing layer (full resolution) unless that is the
 * input image or a pure padding / rescaling of it (then the map is only resized to the input
 * size). Like the paper's code, the walk always starts at the deepest reducing layer, also
 * for a map from an inner layer (which is first shrunk to that resolution: a sparse map can
 * vanish there; `gradual+` skips stages coarser than the map). Then the map is z-scored (std
 * with N-1), clipped to [-1, 1] and min-max scaled to [0, 1]; a constant map (e.g. all zero)
 * stays finite (all 0) and `explain` reports it `empty`.
 *
 * Which layers count is read from the graph, never from names, and the activations come
 * from the SAME forward pass the method used (the paper's code runs an extra one).
 *
 * Options: `statistics: "image"` (default; per-image max / mean / std / min-max, so a
 * result never depends on the rest of the batch) or `"batch"` (one set of statistics over
 * the whole batch, exactly as the paper's code).
 *
 * @example Gradual Grad-CAM on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "grad-cam", extrapolator: "gradual" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * assert.equal(e.extrapolator, "gradual");
 * assert.deepEqual([e.height, e.width], [128, 128]); // Grad-CAM alone: 8 x 8, resized
 * ```
 *
 * @module
 */
import type { ModelGraph } from "../core/graph.ts";
import { channelSum, resizeMaps, type Tensor3D, tf } from "../core/tensor.ts";
import {
  type Extrapolator,
  type ExtrapolatorContext,
  type OptionSpecs,
  type OptionValues,
  PLUGIN_API_VERSION,
  type Requirements,
  type SaliencyMaps,
} from "../core/types.ts";

/**
 * The layers whose outputs form the pyramid, shallowest first: the input of the first
 * resolution-reducing layer (unless that is the input image or a pure padding / rescaling
 * of it: the map is then only resized at that step), then every reducing layer.
 */
export function pyramidLayers(graph: ModelGraph): string[] {
  if (graph.reducingLayers.length === 0) {
    throw new Error("gradual: the model has no resolution-reducing layer (pool or strided conv)");
  }
  const first = graph.firstReducingInput;
  return first ? [first, ...graph.reducingLayers] : [...graph.reducingLayers];
}

/** Reduction axes for "per image" (1..3) or "whole batch" (all) statistics. */
function axes(rank: number, batch: boolean): number[] {
  const all = Array.from({ length: rank }, (_, i) => i);
  return batch ? all : all.slice(1);
}

/**
 * Paper-style normalisation: z-score (N-1), clip to [-1, 1], min-max to [0, 1]. A constant
 * (e.g. all-zero) map has no spread: it becomes all 0, never NaN.
 */
export function zClipMinMax(h: Tensor3D, batch: boolean): Tensor3D {
  return tf.tidy(() => {
    const ax = axes(3, batch);
    const count = ax.reduce((a, i) => a * h.shape[i], 1);
    const mean = h.mean(ax, true);
    const centred = h.sub(mean);
    const std = centred.square().sum(ax, true).div(Math.max(1, count - 1)).sqrt();
    const z = tf.clipByValue(centred.div(tf.maximum(std, 1e-30)), -1, 1);
    const lo = z.min(ax, true);
    const span = z.max(ax, true).sub(lo);
    return z.sub(lo).div(tf.maximum(span, 1e-30)) as Tensor3D;
  });
}

/** The options the gradual extrapolator declares. */
export const GRADUAL_OPTIONS = {
  statistics: {
    type: "string",
    values: ["image", "batch"],
    default: "image",
    doc: "max / mean / std per image, or over the whole batch (the paper's code)",
  },
} as const satisfies OptionSpecs;

/** Validated options of {@linkcode gradualExtrapolation}. */
export type GradualOptions = OptionValues<typeof GRADUAL_OPTIONS>;

/** The gradual extrapolator plugin (`gradual`). */
export const gradualExtrapolation: Extrapolator<GradualOptions> = {
  kind: "extrapolator",
  apiVersion: PLUGIN_API_VERSION,
  name: "gradual",
  aliases: ["gradual-extrapolation"],
  description: "Gradual extrapolation: sharpen a map through every resolution-reducing layer",
  options: GRADUAL_OPTIONS,
  requires(graph: ModelGraph): Requirements {
    return { record: pyramidLayers(graph) };
  },
  refine(maps: SaliencyMaps, ctx: ExtrapolatorContext<GradualOptions>): SaliencyMaps {
    const batch = ctx.options.statistics === "batch";
    const layers = pyramidLayers(ctx.session.graph);
    const out = tf.tidy(() => {
      let h = maps.maps;
      for (let i = layers.length - 1; i >= 0; i--) {
        const act = ctx.pass.activation(layers[i]);
        if (act.rank !== 4) continue;
        const [, ah, aw] = act.shape;
        h = resizeMaps(h, ah, aw);
        const peak = act.max(axes(4, batch), true).reshape(batch ? [1, 1, 1] : [-1, 1, 1]);
        h = h.mul(channelSum(act).div(peak)) as Tensor3D;
      }
      const [ih, iw] = ctx.session.inputSize;
      return zClipMinMax(resizeMaps(h, ih, iw), batch);
    });
    return {
      maps: out,
      method: `${maps.method}+gradual`,
      layer: "input",
      classes: maps.classes,
      resolution: [out.shape[1], out.shape[2]],
      normalized: true,
    };
  },
};

export default gradualExtrapolation;
