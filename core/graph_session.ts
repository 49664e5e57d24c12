/**
 * Saliency on a tfjs GraphModel (a converted TensorFlow SavedModel / frozen graph), by
 * feeding and fetching intermediate nodes: one `execute` fetches the recorded nodes and the
 * scores; a gradient at node L differentiates `execute({L: a, input: x}, scores)` with
 * respect to `a`. That serves the Grad-CAM family, input-gradient methods and the gradual
 * extrapolator (which reads strided conv / pool nodes). Methods that need per-layer backward
 * rules (excitation backprop, guided backprop, ...) need a LayersModel and say so.
 *
 * @module
 */
import type { LayerNode, ModelGraph } from "./graph.ts";
import type { Op, OpKind } from "./layer_ops.ts";
import type { BackwardOptions, ForwardOptions, Pass, Session } from "./session.ts";
import { type GraphModel, type Tensor, type Tensor2D, type Tensor4D, tf } from "./tensor.ts";

// deno-lint-ignore no-explicit-any
type AnyNode = any;

const SKIP_OPS = new Set(["Const", "Placeholder", "NoOp"]);
const POOL_OPS = new Set(["MaxPool", "AvgPool"]);
const CONV_OPS = new Set([
  "Conv2D",
  "_FusedConv2D",
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2dNative",
]);
const PAD_OPS = new Set(["Pad", "PadV2", "MirrorPad"]);

function kindOf(op: string): OpKind {
  if (op === "Relu" || op === "Relu6" || op === "Sigmoid" || op === "Tanh" || op === "Softmax") {
    return "activation";
  }
  if (op === "MaxPool") return "max_pool";
  if (op === "AvgPool") return "avg_pool";
  if (CONV_OPS.has(op)) return op.includes("Depthwise") ? "depthwise_conv2d" : "conv2d";
  if (op === "MatMul" || op === "_FusedMatMul") return "dense";
  if (op === "AddV2" || op === "Add") return "add";
  if (op === "Reshape" || op === "Identity") return "reshape";
  return "generic";
}

function strided(node: AnyNode): boolean {
  const s = node.attrParams?.strides?.value;
  return Array.isArray(s) && s.some((v: number) => v > 1);
}

function ruleless(name: string, op: string): Op {
  const fail = (): never => {
    throw new Error(
      `node '${name}' (${op}): per-layer backward rules need a LayersModel; this is a GraphModel`,
    );
  };
  return {
    kind: kindOf(op),
    layer: name,
    className: op,
    params: op === "Relu" ? { activation: "relu" } : {},
    forward: fail,
    backward: fail,
  };
}

/** A GraphModel prepared for saliency. Create it with {@linkcode GraphSession.create}. */
export class GraphSession implements Session {
  /** The wrapped model. */
  readonly model: GraphModel;
  /** Graph facts (output shapes measured once on a zero input). */
  readonly graph: ModelGraph;
  /** GraphModels support no per-layer backward rules. */
  readonly supportsRules = false;
  readonly #inputSize: [number, number, number];
  readonly #outputNode: string;

  private constructor(
    model: GraphModel,
    graph: ModelGraph,
    inputSize: [number, number, number],
    outputNode: string,
  ) {
    this.model = model;
    this.graph = graph;
    this.#inputSize = inputSize;
    this.#outputNode = outputNode;
  }

  /**
   * Reads the graph of a GraphModel (single image input `[N, H, W, C]` with known H, W, C;
   * single output) and measures every node's output shape with one run on zeros.
   */
  static create(model: GraphModel): GraphSession {
    // deno-lint-ignore no-explicit-any
    const g = (model as any).executor?.graph;
    if (!g) throw new Error("not a GraphModel with a readable graph");
    if (model.inputNodes.length !== 1 || model.outputNodes.length !== 1) {
      throw new Error("GraphModels with one input and one output are supported");
    }
    const inputName = model.inputNodes[0].split(":")[0];
    const shape = model.inputs[0].shape ?? [];
    const [h, w, c] = [shape[1], shape[2], shape[3]];
    if (!(h > 0 && w > 0 && c > 0)) {
      throw new Error(`GraphModel input shape [${shape}] needs known height, width and channels`);
    }
    const nodes: Record<string, AnyNode> = g.nodes;
    // Execution order: depth-first from the output.
    const order: AnyNode[] = [];
    const seen = new Set<string>();
    const visit = (n: AnyNode): void => {
      if (seen.has(n.name)) return;
      seen.add(n.name);
      for (const i of n.inputs) visit(i);
      if (!SKIP_OPS.has(n.op)) order.push(n);
    };
    const outName = model.outputNodes[0].split(":")[0];
    visit(nodes[outName]);
    const names = order.map((n) => n.name);
    const shapes = tf.tidy(() => {
      const outs = model.execute(tf.zeros([1, h, w, c]), names) as Tensor[];
      return outs.map((t) => t.shape);
    });
    const layerNodes: LayerNode[] = order.map((n, i) => ({
      name: n.name,
      className: n.op,
      inputs: n.inputs.filter((x: AnyNode) => x.op !== "Const").map((x: AnyNode) => x.name),
      outputShape: [null, ...shapes[i].slice(1)],
      ops: [ruleless(n.name, n.op)],
      reducesResolution: (POOL_OPS.has(n.op) || CONV_OPS.has(n.op)) && strided(n),
      hasKernel: CONV_OPS.has(n.op) || n.op === "MatMul" || n.op === "_FusedMatMul",
    }));
    const byName = new Map(layerNodes.map((n) => [n.name, n]));
    // Scores: skip trailing Identity nodes and a Softmax.
    let scoreName = outName;
    while (byName.get(scoreName)?.className === "Identity") {
      scoreName = byName.get(scoreName)!.inputs[0];
    }
    if (byName.get(scoreName)?.className === "Softmax") {
      scoreName = byName.get(scoreName)!.inputs[0];
    }
    const reducing = layerNodes.filter((n) => n.reducesResolution).map((n) => n.name);
    let firstReducingInput: string | undefined;
    if (reducing.length) {
      let src = byName.get(reducing[0])!.inputs[0];
      while (byName.has(src) && PAD_OPS.has(byName.get(src)!.className)) {
        src = byName.get(src)!.inputs[0];
      }
      firstReducingInput = src;
    }
    const spatial = layerNodes.filter((n) => n.outputShape.length === 4);
    const kernels = layerNodes.filter((n) => n.hasKernel);
    const graph: ModelGraph = {
      inputName,
      inputShape: [null, h, w, c],
      nodes: layerNodes,
      outputName: outName,
      scoreName,
      scoreIsPreSoftmax: false,
      defaultTargetLayer: spatial.length ? spatial[spatial.length - 1].name : undefined,
      reducingLayers: reducing,
      firstReducingInput,
      classifierLayer: kernels.length ? kernels[kernels.length - 1].name : undefined,
    };
    return new GraphSession(model, graph, [h, w, c], outName);
  }

  /** Input height, width and channels. */
  get inputSize(): [number, number, number] {
    return this.#inputSize;
  }

  /** One `execute` fetching the recorded nodes, the gradient nodes and the scores. */
  forward(input: Tensor4D, opts: ForwardOptions = {}): Pass {
    const g = this.graph;
    const wanted = [...new Set([...(opts.record ?? []), ...(opts.gradientsFrom ?? [])])]
      .filter((n) => n !== g.inputName);
    const known = new Set(g.nodes.map((n) => n.name));
    for (const n of wanted) {
      if (!known.has(n)) throw new Error(`unknown layer '${n}' (not a node of this GraphModel)`);
    }
    const fetch = [...wanted, g.scoreName];
    const outs = this.model.execute(input, fetch) as Tensor[];
    const values = new Map<string, Tensor>(wanted.map((n, i) => [n, outs[i]]));
    const rawScores = outs[outs.length - 1];
    const scores = tf.tidy(() => rawScores.reshape([rawScores.shape[0], -1]) as Tensor2D);
    rawScores.dispose();
    return new GraphPass(this.model, g, input, values, scores);
  }

  /** Class scores of a batch (pre-softmax where the graph ends in one). */
  predict(input: Tensor4D): Tensor2D {
    const p = this.forward(input);
    const s = p.scores.clone();
    p.dispose();
    return s;
  }

  /** Name of the model's output node. */
  get outputNode(): string {
    return this.#outputNode;
  }
}

class GraphPass implements Pass {
  readonly scores: Tensor2D;
  readonly input: Tensor4D;
  readonly #model: GraphModel;
  readonly #graph: ModelGraph;
  readonly #values: Map<string, Tensor>;

  constructor(
    model: GraphModel,
    graph: ModelGraph,
    input: Tensor4D,
    values: Map<string, Tensor>,
    scores: Tensor2D,
  ) {
    this.#model = model;
    this.#graph = graph;
    this.input = input;
    this.#values = values;
    this.scores = scores;
  }

  get batchSize(): number {
    return this.input.shape[0];
  }

  activation(layer: string): Tensor {
    if (layer === this.#graph.inputName) return this.input;
    const v = this.#values.get(layer);
    if (!v) throw new Error(`node '${layer}' was not recorded in this forward pass`);
    return v;
  }

  has(layer: string): boolean {
    return layer === this.#graph.inputName || this.#values.has(layer);
  }

  backward(seed: Tensor, opts: BackwardOptions): Tensor[] {
    if (opts.rule || opts.transform) {
      throw new Error(
        "this method needs per-layer backward rules, which need a LayersModel; this is a GraphModel",
      );
    }
    const g = this.#graph;
    return opts.wrt.map((w) => {
      const start = this.activation(w);
      const head = (a: Tensor): Tensor => {
        const feed: Record<string, Tensor> = { [g.inputName]: this.input };
        feed[w] = a;
        const s = this.#model.execute(feed, g.scoreName) as Tensor;
        return s.reshape([s.shape[0], -1]).mul(seed).sum();
      };
      return tf.grad(head)(start);
    });
  }

  dispose(): void {
    for (const t of this.#values.values()) if (!t.isDisposed) t.dispose();
    if (!this.scores.isDisposed) this.scores.dispose();
  }
}
