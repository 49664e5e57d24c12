/**
 * Shared machinery of the CAM family (Grad-CAM and its relatives): capture a layer's
 * activations A and the gradient G of the target score at it from ONE forward and one
 * backward pass, then let the method combine them. A CAM method only says how to combine.
 *
 * @module
 */
import type { ModelGraph } from "../core/graph.ts";
import type { Pass } from "../core/session.ts";
import { type Tensor, type Tensor3D, type Tensor4D, tf } from "../core/tensor.ts";
import {
  type MethodContext,
  PLUGIN_API_VERSION,
  type PluginOptions,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";

/**
 * How to emulate PyTorch's in-place ReLU after a conv layer (see the fixtures README):
 * - `none` (default): A and G are the chosen layer's own output and gradient;
 * - `torchray`: A and G both from the following ReLU (TorchRay on torch >= 1.13);
 * - `pgc`: A from the following ReLU, G at the layer (pytorch-grad-cam on CPU).
 */
export type InplaceRelu = "none" | "torchray" | "pgc";

/** Options every CAM method understands. */
export interface CamOptions {
  /** Skip the final ReLU and return the raw map (pytorch-grad-cam's `get_cam_image`). */
  raw?: boolean;
  /** In-place-ReLU emulation, see {@linkcode InplaceRelu}. */
  inplaceRelu?: InplaceRelu;
}

/** The ReLU layer that directly consumes `layer`'s output, if any. */
export function followingRelu(graph: ModelGraph, layer: string): string | undefined {
  const next = graph.consumersOf(layer);
  if (next.length !== 1) return undefined;
  const op = next[0].ops;
  return op.length === 1 && op[0].kind === "activation" && op[0].params.activation === "relu"
    ? next[0].name
    : undefined;
}

/** Which layers give A and G for a CAM method, given its options. */
export function camLayers(
  graph: ModelGraph,
  layer: string,
  options: PluginOptions,
): { aLayer: string; gLayer: string } {
  const mode = (options.inplaceRelu ?? "none") as InplaceRelu;
  if (mode === "none") return { aLayer: layer, gLayer: layer };
  const relu = followingRelu(graph, layer);
  if (!relu) return { aLayer: layer, gLayer: layer };
  return mode === "torchray" ? { aLayer: relu, gLayer: relu } : { aLayer: relu, gLayer: layer };
}

/** The definition of a CAM-family method. */
export interface CamDefinition {
  /** Registry name. */
  name: string;
  /** Aliases. */
  aliases?: string[];
  /** One-line description. */
  description: string;
  /** Whether the method needs G (EigenCAM and ScoreCAM do not). */
  needsGradient?: boolean;
  /**
   * Combines A `[N, h, w, C]` and G (same shape, or undefined) into raw maps `[N, h, w]`
   * (before the final ReLU). Runs inside `tf.tidy`.
   */
  combine(
    a: Tensor4D,
    g: Tensor4D | undefined,
    ctx: MethodContext,
  ): Tensor3D | Promise<Tensor3D>;
}

/** Default CAM layer: the last layer with a spatial output (usually the last conv block). */
export function defaultCamLayer(graph: ModelGraph): string | undefined {
  return graph.defaultTargetLayer;
}

function gradientAt(pass: Pass, ctx: MethodContext, gLayer: string): Tensor4D {
  const seed = ctx.targets.seed(pass.scores);
  try {
    const [g] = pass.backward(seed, { wrt: [gLayer] });
    return g as Tensor4D;
  } finally {
    seed.dispose();
  }
}

/** Builds a {@linkcode SaliencyMethod} from a CAM definition. */
export function camMethod(def: CamDefinition): SaliencyMethod {
  const needsG = def.needsGradient !== false;
  return {
    kind: "method",
    apiVersion: PLUGIN_API_VERSION,
    name: def.name,
    aliases: def.aliases,
    description: def.description,
    defaultLayer: (graph: ModelGraph) => defaultCamLayer(graph),
    requires(graph: ModelGraph, layer: string | undefined, options: PluginOptions): Requirements {
      if (!layer) throw new Error(`${def.name}: the model has no layer with a spatial output`);
      const { aLayer, gLayer } = camLayers(graph, layer, options);
      return { record: [aLayer], gradientsFrom: needsG ? [gLayer] : [] };
    },
    async run(ctx: MethodContext): Promise<SaliencyMaps> {
      const layer = ctx.layer!;
      const graph = ctx.session.graph;
      const { aLayer, gLayer } = camLayers(graph, layer, ctx.options);
      const a = ctx.pass.activation(aLayer);
      if (a.rank !== 4) {
        throw new Error(
          `${def.name}: layer '${layer}' has output shape [${a.shape}], a CAM needs a 4-D [N, H, W, C] layer`,
        );
      }
      const g = needsG ? gradientAt(ctx.pass, ctx, gLayer) : undefined;
      let raw: Tensor;
      try {
        raw = await def.combine(a as Tensor4D, g, ctx);
      } finally {
        g?.dispose();
      }
      const maps = ctx.options.raw ? raw as Tensor3D : tf.tidy(() => tf.relu(raw) as Tensor3D);
      if (maps !== raw) raw.dispose();
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

/** `sum_c w[n, c] * A[n, :, :, c]` for channel weights `[N, C]`. */
export function weightedChannelSum(a: Tensor4D, w: Tensor): Tensor3D {
  return tf.tidy(() => {
    const [n, , , c] = a.shape;
    return a.mul(w.reshape([n, 1, 1, c])).sum(-1) as Tensor3D;
  });
}
