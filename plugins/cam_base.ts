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
  type OptionSpecs,
  type OptionValues,
  PLUGIN_API_VERSION,
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

/** The options every CAM method declares: `raw` and `inplaceRelu`. */
export const CAM_OPTIONS = {
  raw: {
    type: "boolean",
    default: false,
    doc: "skip the final ReLU: the raw map (pytorch-grad-cam's get_cam_image)",
  },
  inplaceRelu: {
    type: "string",
    values: ["none", "torchray", "pgc"],
    default: "none",
    doc: "emulate an in-place ReLU after a conv layer: torchray (A, G at the ReLU), " +
      "pgc (A at the ReLU, G at the layer)",
  },
} as const satisfies OptionSpecs;

/** Validated options every CAM method receives (see {@linkcode CAM_OPTIONS}). */
export type CamOptions = OptionValues<typeof CAM_OPTIONS>;

/** The ReLU layer that directly consumes `layer`'s output, if any. */
export function followingRelu(graph: ModelGraph, layer: string): string | undefined {
  const next = graph.consumersOf(layer);
  if (next.length !== 1) return undefined;
  const op = next[0].ops;
  return op.length === 1 && op[0].kind === "activation" && op[0].params.activation === "relu"
    ? next[0].name
    : undefined;
}

/** Which layers give A and G for a CAM method, given its in-place-ReLU emulation. */
export function camLayers(
  graph: ModelGraph,
  layer: string,
  mode: InplaceRelu,
): { aLayer: string; gLayer: string } {
  if (mode === "none") return { aLayer: layer, gLayer: layer };
  const relu = followingRelu(graph, layer);
  if (!relu) return { aLayer: layer, gLayer: layer };
  return mode === "torchray" ? { aLayer: relu, gLayer: relu } : { aLayer: relu, gLayer: layer };
}

/**
 * The definition of a CAM-family method (`S`: the options it declares besides
 * {@linkcode CAM_OPTIONS}).
 */
export interface CamDefinition<S extends OptionSpecs = Record<never, never>> {
  /** Registry name. */
  name: string;
  /** Aliases. */
  aliases?: string[];
  /** One-line description. */
  description: string;
  /** Whether the method needs G (EigenCAM and ScoreCAM do not). */
  needsGradient?: boolean;
  /** Options of its own, besides {@linkcode CAM_OPTIONS}. */
  options?: S;
  /**
   * Combines A `[N, h, w, C]` and G (same shape, or undefined) into raw maps `[N, h, w]`
   * (before the final ReLU). Runs inside `tf.tidy`.
   */
  combine(
    a: Tensor4D,
    g: Tensor4D | undefined,
    ctx: MethodContext<CamOptions & OptionValues<S>>,
  ): Tensor3D | Promise<Tensor3D>;
}

/** Default CAM layer: the last layer with a spatial output (usually the last conv block). */
export function defaultCamLayer(graph: ModelGraph): string | undefined {
  return graph.defaultTargetLayer;
}

function gradientAt(pass: Pass, ctx: MethodContext<CamOptions>, gLayer: string): Tensor4D {
  const seed = ctx.targets.seed(pass.scores);
  try {
    const [g] = pass.backward(seed, { wrt: [gLayer] });
    return g as Tensor4D;
  } finally {
    seed.dispose();
  }
}

/**
 * Builds a {@linkcode SaliencyMethod} from a CAM definition. It declares
 * {@linkcode CAM_OPTIONS} and the definition's own options.
 */
export function camMethod<S extends OptionSpecs = Record<never, never>>(
  def: CamDefinition<S>,
): SaliencyMethod<CamOptions & OptionValues<S>> {
  const needsG = def.needsGradient !== false;
  return {
    kind: "method",
    apiVersion: PLUGIN_API_VERSION,
    name: def.name,
    aliases: def.aliases,
    description: def.description,
    options: { ...CAM_OPTIONS, ...def.options },
    defaultLayer: (graph: ModelGraph) => defaultCamLayer(graph),
    requires(graph: ModelGraph, layer: string | undefined, options: CamOptions): Requirements {
      if (!layer) throw new Error(`${def.name}: the model has no layer with a spatial output`);
      const { aLayer, gLayer } = camLayers(graph, layer, options.inplaceRelu);
      return { record: [aLayer], gradientsFrom: needsG ? [gLayer] : [] };
    },
    async run(ctx: MethodContext<CamOptions & OptionValues<S>>): Promise<SaliencyMaps> {
      const layer = ctx.layer!;
      const graph = ctx.session.graph;
      const { aLayer, gLayer } = camLayers(graph, layer, ctx.options.inplaceRelu);
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
