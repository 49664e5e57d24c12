/**
 * Graph facts about a model: its layers in execution order with output shapes and ops, the
 * class scores (the pre-softmax tensor wherever the softmax sits), the default target layer,
 * the resolution-reducing layers (every strided pool or convolution, on every branch), the
 * trunk and the classifier layer. Found from the graph structure and the ops' kinds, never
 * from layer names.
 *
 * {@linkcode readGraph} is the tfjs LayersModel front end: it flattens nested models (a
 * backbone model used as one layer) into the graph, naming their layers `outer/inner`;
 * {@linkcode buildGraph} derives the facts from any front end's nodes.
 *
 * @module
 */
import { compileLayer, identityOp, type Op, type OpKind } from "./layer_ops.ts";
import type { LayersModel } from "./tensor.ts";

/** One layer call (graph node) in execution order. */
export interface LayerNode {
  /** Layer name (unique within the model; `outer/inner` inside a nested model). */
  readonly name: string;
  /** Keras class name, e.g. `Conv2D`. */
  readonly className: string;
  /** Names of the nodes feeding this one (the model input is called by its layer name). */
  readonly inputs: readonly string[];
  /** Output shape with the batch dimension as `null`. */
  readonly outputShape: readonly (number | null)[];
  /** The ops it compiles to (linear part, then activation if any). */
  readonly ops: readonly Op[];
  /** Whether it lowers the spatial resolution (strided pool or convolution). */
  readonly reducesResolution: boolean;
  /** Whether it has trainable kernels (conv or dense). */
  readonly hasKernel: boolean;
  /**
   * For the node that stands for a nested model's call (an identity of the nested model's
   * output): the name of that output node.
   */
  readonly aliasOf?: string;
}

/** The facts of a model's structure, as the front ends derive them (see {@linkcode ModelGraph}). */
export interface GraphFacts {
  /** Name of the input layer. */
  readonly inputName: string;
  /** Input shape `[null, H, W, C]`. */
  readonly inputShape: readonly (number | null)[];
  /** All nodes except the input, in execution order. */
  readonly nodes: readonly LayerNode[];
  /** Name of the node whose output is the model output. */
  readonly outputName: string;
  /**
   * Name of the node whose output holds the class scores to explain: the input of the
   * model's softmax (or final sigmoid) wherever it sits (a softmax followed by reshapes
   * counts), the node that holds a fused one (see `scoreIsPreSoftmax`), else the model output.
   */
  readonly scoreName: string;
  /**
   * Whether the scores are the pre-softmax (or pre-sigmoid) tensor inside node `scoreName`
   * (the output of its second-to-last op: a Dense / Conv2D with a fused output activation).
   */
  readonly scoreIsPreSoftmax: boolean;
  /** How the scores were found, in words (printed by `list`; says when there is no softmax). */
  readonly scoreNote?: string;
  /**
   * The activation that turns the scores into the model's probabilities: `softmax` (the
   * default, also assumed for a model without one), or `sigmoid` for a model whose output
   * ends in a sigmoid (multi-label: each class's probability is the sigmoid of its score).
   */
  readonly scoreActivation?: "softmax" | "sigmoid";
  /**
   * Default CAM layer: the last spatial feature map of the feature extractor (a trunk node
   * with more than 1x1 pixels that is not a pooling, padding, reshape or alias output).
   */
  readonly defaultTargetLayer: string | undefined;
  /** Resolution-reducing layers in execution order. */
  readonly reducingLayers: readonly string[];
  /**
   * The tensor that feeds the first resolution-reducing layer, skipping explicit padding
   * layers (for gradual extrapolation's last, full-resolution step); undefined when that is
   * the input image itself or a pure padding / rescaling of it.
   */
  readonly firstReducingInput: string | undefined;
  /** The last layer with a kernel that feeds the scores (TorchRay's classifier choice). */
  readonly classifierLayer: string | undefined;
}

/** Questions about a graph's structure, answered from its nodes (cached per graph). */
export interface GraphQueries {
  /** The node called `name`; undefined for the input and for unknown names. */
  node(name: string): LayerNode | undefined;
  /**
   * Every layer `name` depends on, transitively, the input included; empty for the input and
   * for unknown names. The set is cached: do not change it.
   */
  ancestorsOf(name: string): Set<string>;
  /** Whether `a` lies strictly upstream of `b`. */
  isAncestor(a: string, b: string): boolean;
  /** The nodes that take `name`'s output as an input, in execution order (each once). */
  consumersOf(name: string): readonly LayerNode[];
  /** The nodes on a path from any of `from` to the output, `from` included (the input too). */
  between(from: ReadonlySet<string>): Set<string>;
  /**
   * The nodes a backward pass from the class scores down to `from` runs through: the scores'
   * node and every node on a path from `from` (exclusive) to it.
   */
  pathToScores(from: string): Set<string>;
  /** `name`, or the first node upwards from it that is not an explicit padding layer. */
  abovePadding(name: string): string;
  /**
   * The global-average-pool node that feeds the classifier through reshapes / identities
   * only, if the model has one: the ResNet-style head.
   */
  globalPoolHead(): string | undefined;
}

/**
 * Everything the executor and the methods need to know about a model's structure: its
 * {@linkcode GraphFacts} and the {@linkcode GraphQueries} about them. Made by
 * {@linkcode buildGraph} (or {@linkcode withQueries} for facts already derived).
 */
export interface ModelGraph extends GraphFacts, GraphQueries {}

// deno-lint-ignore no-explicit-any
type AnyLayer = any;
// deno-lint-ignore no-explicit-any
type AnySymbolic = any;

const KERNEL_KINDS = new Set<OpKind>(["conv2d", "depthwise_conv2d", "dense"]);
const WINDOW_KINDS = new Set<OpKind>(["conv2d", "depthwise_conv2d", "max_pool", "avg_pool"]);
/** Op kinds that only move, pad or rescale values (no features of their own). */
const PASS_KINDS = new Set<OpKind>(["pad", "scale", "identity"]);
/** Op kinds whose output is not a feature map of its own for a CAM. */
const NOT_FEATURE_KINDS = new Set<OpKind>([
  "max_pool",
  "avg_pool",
  "global_avg_pool",
  "global_max_pool",
  "pad",
  "crop",
  "identity",
  "reshape",
]);

/** Whether a node's ops lower the spatial resolution (a strided window op). */
export function opsReduce(ops: readonly Op[]): boolean {
  return ops.some((o) =>
    WINDOW_KINDS.has(o.kind) && (o.params.strides ?? [1, 1]).some((v) => v > 1)
  );
}

/** Whether a node's ops include a kernel (conv or dense). */
export function opsHaveKernel(ops: readonly Op[]): boolean {
  return ops.some((o) => KERNEL_KINDS.has(o.kind));
}

function isModelLayer(layer: AnyLayer): boolean {
  return Array.isArray(layer?.layers) && Array.isArray(layer?.inputs) &&
    Array.isArray(layer?.outputs) && layer.inputs.length > 0;
}

/**
 * Reads a LayersModel's graph: nodes in execution order (one entry per layer call),
 * their inputs, output shapes and ops, and the derived facts in {@linkcode ModelGraph}.
 * A nested model (Sequential or functional, used as a layer) is flattened: its layers
 * become nodes named `outer/inner`, and a node named like the nested model (an identity of
 * its output) stands for its call.
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
  const inputName: string = input.sourceLayer.name;
  const order: LayerNode[] = [];
  const seenLayer = new Map<string, number>();
  const uniqueName = (base: string): string => {
    const calls = seenLayer.get(base) ?? 0;
    seenLayer.set(base, calls + 1);
    return calls === 0 ? base : `${base}#${calls}`;
  };
  const visit = (t: AnySymbolic, ids: Map<number, string>, prefix: string): string => {
    const known = ids.get(t.id);
    if (known !== undefined) return known;
    const layer: AnyLayer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    const ins: string[] = node.inputTensors.map((x: AnySymbolic) => visit(x, ids, prefix));
    const className: string = layer.getClassName();
    if (node.outputTensors.length !== 1) {
      throw new Error(`layer '${layer.name}' (${className}) has several outputs: not supported`);
    }
    const name = uniqueName(`${prefix}${layer.name}`);
    if (isModelLayer(layer)) {
      if (layer.inputs.length !== 1 || layer.outputs.length !== 1 || ins.length !== 1) {
        throw new Error(
          `nested model '${name}' (${className}) must have one input and one output`,
        );
      }
      const inner = new Map<number, string>([[layer.inputs[0].id, ins[0]]]);
      const out = visit(layer.outputs[0], inner, `${name}/`);
      order.push({
        name,
        className,
        inputs: [out],
        outputShape: [...t.shape],
        ops: [identityOp(name, className)],
        reducesResolution: false,
        hasKernel: false,
        aliasOf: out,
      });
    } else {
      // Ops carry the flattened node name, so errors and rules name `outer/inner`.
      const ops = compileLayer(layer, name);
      order.push({
        name,
        className,
        inputs: ins,
        outputShape: [...t.shape],
        ops,
        reducesResolution: opsReduce(ops),
        hasKernel: opsHaveKernel(ops),
      });
    }
    ids.set(t.id, name);
    return name;
  };
  const outputName = visit(m.outputs[0], new Map([[input.id, inputName]]), "");
  return buildGraph(inputName, [...input.shape], order, outputName);
}

/** Where the class scores are: see {@linkcode ModelGraph.scoreName}. */
function findScores(
  byName: ReadonlyMap<string, LayerNode>,
  outputName: string,
): {
  scoreName: string;
  scoreIsPreSoftmax: boolean;
  scoreNote: string;
  scoreActivation: "softmax" | "sigmoid";
} {
  let cur = outputName;
  for (;;) {
    const n = byName.get(cur);
    if (!n) break;
    const last = n.ops[n.ops.length - 1];
    const act = last?.kind === "activation" ? last.params.activation : undefined;
    if (act === "softmax" || act === "logSoftmax" || act === "sigmoid") {
      const scoreActivation = act === "sigmoid" ? "sigmoid" : "softmax";
      if (n.ops.length > 1) {
        return {
          scoreName: n.name,
          scoreIsPreSoftmax: true,
          scoreNote: `scores: the pre-${act} output of '${n.name}'`,
          scoreActivation,
        };
      }
      return {
        scoreName: n.inputs[0],
        scoreIsPreSoftmax: false,
        scoreNote: `scores: the input of ${act} '${n.name}'`,
        scoreActivation,
      };
    }
    const passThrough = n.inputs.length === 1 &&
      n.ops.every((o) => o.kind === "reshape" || o.kind === "identity");
    if (!passThrough) break;
    cur = n.inputs[0];
  }
  return {
    scoreName: outputName,
    scoreIsPreSoftmax: false,
    scoreNote: `scores: the model output '${outputName}' as it is (the model has no softmax)`,
    scoreActivation: "softmax",
  };
}

/**
 * The trunk of a graph: the nodes that every path from the input to the output passes
 * through (a residual block's post-`Add` output is on the trunk; its branches are not).
 *
 * @example
 * ```ts
 * import { trunkNodes } from "./graph.ts";
 * // const trunk = trunkNodes(session.graph); // Set of node names
 * ```
 */
export function trunkNodes(graph: ModelGraph): Set<string> {
  const hit = trunkCache.get(graph);
  if (hit) return hit;
  const trunk = trunkOf(graph.inputName, graph.nodes, graph.outputName);
  trunkCache.set(graph, trunk);
  return trunk;
}

const trunkCache = new WeakMap<ModelGraph, Set<string>>();

function trunkOf(inputName: string, nodes: readonly LayerNode[], outputName: string): Set<string> {
  const trunk = new Set<string>();
  for (const cut of nodes) {
    // Is the output still reachable from the input without `cut`? (nodes are topological)
    const reach = new Set<string>([inputName]);
    for (const n of nodes) {
      if (n.name !== cut.name && n.inputs.some((i) => reach.has(i))) reach.add(n.name);
    }
    if (!reach.has(outputName)) trunk.add(cut.name);
  }
  return trunk;
}

/**
 * The nodes whose output is the input image itself up to padding, rescaling or a
 * per-channel normalisation (`ZeroPadding2D`, `Rescaling`, `Normalization`, a batch norm of
 * the input): never a stage or factor of the gradual extrapolators.
 */
export function inputLikeNodes(graph: GraphFacts): Set<string> {
  const out = new Set<string>([graph.inputName]);
  for (const n of graph.nodes) {
    if (n.inputs.length !== 1 || !out.has(n.inputs[0])) continue;
    const pure = n.ops.every((o) =>
      PASS_KINDS.has(o.kind) || o.kind === "batch_norm" ||
      (o.kind === "generic" && o.className === "Normalization")
    );
    if (pure) out.add(n.name);
  }
  return out;
}

/**
 * Derives the graph facts of {@linkcode ModelGraph} from a front end's nodes (execution
 * order, inputs before their consumers).
 */
export function buildGraph(
  inputName: string,
  inputShape: readonly (number | null)[],
  nodes: readonly LayerNode[],
  outputName: string,
): ModelGraph {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const scores = findScores(byName, outputName);
  const reducing = nodes.filter((n) => n.reducesResolution).map((n) => n.name);
  const partial: GraphFacts = {
    inputName,
    inputShape,
    nodes,
    outputName,
    ...scores,
    defaultTargetLayer: undefined,
    reducingLayers: reducing,
    firstReducingInput: undefined,
    classifierLayer: undefined,
  };
  const inputLike = inputLikeNodes(partial);
  let firstReducingInput: string | undefined;
  if (reducing.length > 0) {
    const src = abovePadding(byName, byName.get(reducing[0])!.inputs[0]);
    firstReducingInput = inputLike.has(src) ? undefined : src;
  }
  // The classifier: the last kernel node that feeds the scores.
  const feeds = new Set<string>([scores.scoreName]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (feeds.has(nodes[i].name)) nodes[i].inputs.forEach((s) => feeds.add(s));
  }
  const kernels = nodes.filter((n) => n.hasKernel && feeds.has(n.name));
  const trunk = trunkOf(inputName, nodes, outputName);
  let target: string | undefined;
  for (let i = nodes.length - 1; i >= 0 && target === undefined; i--) {
    const n = nodes[i];
    const s = n.outputShape;
    if (!trunk.has(n.name) || s.length !== 4 || inputLike.has(n.name)) continue;
    if (!((s[1] ?? 0) * (s[2] ?? 0) > 1)) continue;
    if (n.ops.length === 0 || NOT_FEATURE_KINDS.has(n.ops[n.ops.length - 1].kind)) continue;
    target = n.name;
  }
  if (target === undefined) {
    const spatial = nodes.filter((n) => n.outputShape.length === 4);
    target = spatial.length ? spatial[spatial.length - 1].name : undefined;
  }
  const graph = withQueries({
    ...partial,
    defaultTargetLayer: target,
    firstReducingInput,
    classifierLayer: kernels.length ? kernels[kernels.length - 1].name : undefined,
  });
  trunkCache.set(graph, trunk);
  return graph;
}

/** `name`, or the first node upwards from it whose ops are not all explicit padding. */
function abovePadding(byName: ReadonlyMap<string, LayerNode>, name: string): string {
  let cur = name;
  for (;;) {
    const n = byName.get(cur);
    if (!n || n.inputs.length !== 1 || !n.ops.every((o) => o.kind === "pad")) return cur;
    cur = n.inputs[0];
  }
}

/**
 * A {@linkcode ModelGraph} of `facts`: the facts as they are, with the
 * {@linkcode GraphQueries} answered from `facts.nodes` (cached on first use). For a graph
 * rewritten after {@linkcode buildGraph} (e.g. with some nodes replaced), so that its queries
 * see the new nodes; methods `facts` may carry from an older graph are replaced.
 */
export function withQueries(facts: GraphFacts): ModelGraph {
  const byName = new Map(facts.nodes.map((n) => [n.name, n]));
  let ancestors: Map<string, Set<string>> | undefined;
  const ancestorsOf = (name: string): Set<string> => {
    if (ancestors === undefined) {
      ancestors = new Map();
      for (const n of facts.nodes) {
        const set = new Set<string>();
        for (const src of n.inputs) {
          set.add(src);
          for (const a of ancestors.get(src) ?? []) set.add(a);
        }
        ancestors.set(n.name, set);
      }
    }
    return ancestors.get(name) ?? new Set();
  };
  const isAncestor = (a: string, b: string): boolean => ancestorsOf(b).has(a);
  let consumers: Map<string, LayerNode[]> | undefined;
  const consumersOf = (name: string): readonly LayerNode[] => {
    if (consumers === undefined) {
      consumers = new Map();
      for (const n of facts.nodes) {
        for (const src of new Set(n.inputs)) {
          const list = consumers.get(src);
          if (list) list.push(n);
          else consumers.set(src, [n]);
        }
      }
    }
    return consumers.get(name) ?? [];
  };
  return {
    ...facts,
    node: (name) => byName.get(name),
    ancestorsOf,
    isAncestor,
    consumersOf,
    between(from) {
      const out = new Set<string>();
      if (from.has(facts.inputName)) out.add(facts.inputName);
      for (const n of facts.nodes) {
        if (from.has(n.name)) {
          out.add(n.name);
          continue;
        }
        for (const f of from) {
          if (isAncestor(f, n.name)) {
            out.add(n.name);
            break;
          }
        }
      }
      return out;
    },
    pathToScores(from) {
      const score = facts.scoreName;
      const out = new Set<string>();
      for (const n of facts.nodes) {
        const toScore = n.name === score || isAncestor(n.name, score);
        if (toScore && isAncestor(from, n.name)) out.add(n.name);
      }
      return out;
    },
    abovePadding: (name) => abovePadding(byName, name),
    globalPoolHead() {
      const cls = facts.classifierLayer;
      if (!cls) return undefined;
      let cur = byName.get(cls)?.inputs[0];
      while (cur !== undefined) {
        const n = byName.get(cur);
        if (!n) return undefined;
        if (n.ops[0]?.kind === "global_avg_pool") return n.name;
        const passThrough = n.inputs.length === 1 &&
          n.ops.every((o) => o.kind === "reshape" || o.kind === "identity");
        if (!passThrough) return undefined;
        cur = n.inputs[0];
      }
      return undefined;
    },
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
