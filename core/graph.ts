/**
 * Graph facts about a tfjs LayersModel: its layers in execution order with output shapes,
 * the default target layer, the resolution-reducing layers (every max/avg pool and every
 * strided convolution, on every branch) and the classifier layer. Found from the graph
 * structure and layer classes, never from layer names.
 *
 * @module
 */
import { compileLayer, type Op } from "./layer_ops.ts";
import type { LayersModel } from "./tensor.ts";

/** One layer call (graph node) in execution order. */
export interface LayerNode {
  /** Layer name (unique within the model). */
  readonly name: string;
  /** Keras class name, e.g. `Conv2D`. */
  readonly className: string;
  /** Names of the nodes feeding this one (the model input is called by its layer name). */
  readonly inputs: readonly string[];
  /** Output shape with the batch dimension as `null`. */
  readonly outputShape: readonly (number | null)[];
  /** The ops it compiles to (linear part, then activation if any). */
  readonly ops: readonly Op[];
  /** Whether it lowers the spatial resolution (pool or strided convolution). */
  readonly reducesResolution: boolean;
  /** Whether it has trainable kernels (conv or dense). */
  readonly hasKernel: boolean;
}

/** Everything the methods need to know about a model's structure. */
export interface ModelGraph {
  /** Name of the input layer. */
  readonly inputName: string;
  /** Input shape `[null, H, W, C]`. */
  readonly inputShape: readonly (number | null)[];
  /** All nodes except the input, in execution order. */
  readonly nodes: readonly LayerNode[];
  /** Name of the node whose output is the model output. */
  readonly outputName: string;
  /**
   * Name of the node whose output holds the class scores to explain: the model output, or
   * the softmax's input when the model ends in a softmax (followed or not by reshapes;
   * saliency is taken on the logits).
   */
  readonly scoreName: string;
  /**
   * Whether the scores are the pre-softmax tensor inside node `scoreName` (whose last op is
   * the softmax) rather than that node's output.
   */
  readonly scoreIsPreSoftmax: boolean;
  /** Last layer with a spatial 4-D output (the usual Grad-CAM layer), if any. */
  readonly defaultTargetLayer: string | undefined;
  /** Resolution-reducing layers in execution order. */
  readonly reducingLayers: readonly string[];
  /**
   * The tensor that feeds the first resolution-reducing layer, skipping explicit padding
   * layers (for gradual extrapolation's last, full-resolution step).
   */
  readonly firstReducingInput: string | undefined;
  /** The last layer with a kernel (TorchRay's automatic classifier choice). */
  readonly classifierLayer: string | undefined;
}

// deno-lint-ignore no-explicit-any
type AnyLayer = any;
// deno-lint-ignore no-explicit-any
type AnySymbolic = any;

const POOL_CLASSES = new Set(["MaxPooling2D", "AveragePooling2D"]);
const CONV_CLASSES = new Set(["Conv2D", "DepthwiseConv2D", "SeparableConv2D"]);

function reduces(layer: AnyLayer, className: string): boolean {
  const c = layer.getConfig();
  const s = c.strides ?? (POOL_CLASSES.has(className) ? c.poolSize : undefined);
  const strided = Array.isArray(s) ? s.some((v: number) => v > 1) : typeof s === "number" && s > 1;
  return (POOL_CLASSES.has(className) || CONV_CLASSES.has(className)) && strided;
}

/** Output shape of a node (from the layer, for the given node index). */
function shapeOf(t: AnySymbolic): (number | null)[] {
  return [...t.shape];
}

/**
 * Reads a LayersModel's graph: nodes in execution order (one entry per layer call),
 * their inputs and output shapes, and the derived facts in {@linkcode ModelGraph}.
 * Nested models are run as one opaque node.
 */
export function readGraph(model: LayersModel): ModelGraph {
  // deno-lint-ignore no-explicit-any
  const m = model as any;
  if (!m.inputs || m.inputs.length !== 1) {
    throw new Error(`models with ${m.inputs?.length ?? 0} inputs are not supported (need 1)`);
  }
  if (m.outputs.length !== 1) {
    throw new Error(`models with ${m.outputs.length} outputs are not supported (need 1)`);
  }
  const input: AnySymbolic = m.inputs[0];
  const idName = new Map<number, string>();
  idName.set(input.id, input.sourceLayer.name);
  const order: LayerNode[] = [];
  const seenLayer = new Map<string, number>();
  const visit = (t: AnySymbolic): string => {
    const known = idName.get(t.id);
    if (known !== undefined) return known;
    const layer: AnyLayer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    const ins: string[] = node.inputTensors.map((x: AnySymbolic) => visit(x));
    const calls = seenLayer.get(layer.name) ?? 0;
    seenLayer.set(layer.name, calls + 1);
    const name = calls === 0 ? layer.name : `${layer.name}#${calls}`;
    const className: string = layer.getClassName();
    if (node.outputTensors.length !== 1) {
      throw new Error(`layer '${layer.name}' (${className}) has several outputs: not supported`);
    }
    order.push({
      name,
      className,
      inputs: ins,
      outputShape: shapeOf(t),
      ops: compileLayer(layer),
      reducesResolution: reduces(layer, className),
      hasKernel: CONV_CLASSES.has(className) || className === "Dense",
    });
    idName.set(t.id, name);
    return name;
  };
  const outputName = visit(m.outputs[0]);
  return buildGraph(input.sourceLayer.name, shapeOf(input), order, outputName);
}

/**
 * Derives the graph facts of {@linkcode ModelGraph} from an executable graph: nodes in
 * execution order with their ops and output shapes, as any front end (LayersModel,
 * GraphModel, ONNX) produces them. Uses op kinds and structure only, never names.
 *
 * The scores are the pre-softmax tensor wherever the softmax sits: the output is followed
 * back through reshape / identity nodes to a node ending in a softmax op; the scores are
 * then the input of that softmax (the node's previous op, or the node's input when the
 * softmax is the node's only op).
 */
export function buildGraph(
  inputName: string,
  inputShape: readonly (number | null)[],
  order: readonly LayerNode[],
  outputName: string,
): ModelGraph {
  const byName = new Map(order.map((n) => [n.name, n]));
  const isSoftmax = (n: LayerNode): boolean => {
    const op = n.ops[n.ops.length - 1];
    return op?.kind === "activation" && op.params.activation === "softmax";
  };
  const passThrough = (n: LayerNode): boolean =>
    n.inputs.length === 1 && n.ops.every((o) => o.kind === "reshape" || o.kind === "identity");
  let softmaxNode = byName.get(outputName);
  while (softmaxNode && !isSoftmax(softmaxNode) && passThrough(softmaxNode)) {
    softmaxNode = byName.get(softmaxNode.inputs[0]);
  }
  let scoreName = outputName;
  let scoreIsPreSoftmax = false;
  if (softmaxNode && isSoftmax(softmaxNode)) {
    if (softmaxNode.ops.length > 1) {
      scoreName = softmaxNode.name;
      scoreIsPreSoftmax = true;
    } else scoreName = softmaxNode.inputs[0];
  }
  // Spatial maps: 4-D outputs larger than 1x1 (a kept-dims global pool is no CAM layer).
  const spatial = order.filter((n) =>
    n.outputShape.length === 4 && (Number(n.outputShape[1]) > 1 || Number(n.outputShape[2]) > 1)
  );
  const reducing = order.filter((n) => n.reducesResolution).map((n) => n.name);
  const padOnly = (n: LayerNode | undefined): n is LayerNode =>
    n !== undefined && n.ops.length > 0 && n.ops.every((o) => o.kind === "pad");
  let firstReducingInput: string | undefined;
  if (reducing.length > 0) {
    let src = byName.get(reducing[0])!.inputs[0];
    while (padOnly(byName.get(src))) src = byName.get(src)!.inputs[0];
    firstReducingInput = src;
  }
  const kernels = order.filter((n) => n.hasKernel);
  return {
    inputName,
    inputShape,
    nodes: order,
    outputName,
    scoreName,
    scoreIsPreSoftmax,
    defaultTargetLayer: spatial.length ? spatial[spatial.length - 1].name : undefined,
    reducingLayers: reducing,
    firstReducingInput,
    classifierLayer: kernels.length ? kernels[kernels.length - 1].name : undefined,
  };
}

/** Names of all layers (input included), for error messages and suggestions. */
export function layerNames(graph: ModelGraph): string[] {
  return [graph.inputName, ...graph.nodes.map((n) => n.name)];
}

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

/** Up to `k` known names closest to `name`. */
export function nearestNames(name: string, names: readonly string[], k = 3): string[] {
  return [...names]
    .map((n) => ({ n, d: distance(name.toLowerCase(), n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, k)
    .map((x) => x.n);
}

/** Throws a clear error when `name` is not a layer of the graph, suggesting near names. */
export function checkLayer(graph: ModelGraph, name: string): void {
  const names = layerNames(graph);
  if (!names.includes(name)) {
    throw new Error(
      `unknown layer '${name}'; did you mean ${
        nearestNames(name, names).map((n) => `'${n}'`).join(", ")
      }? ('gradual list --model ...' lists all layers)`,
    );
  }
}
