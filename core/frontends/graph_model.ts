/**
 * The GraphModel front end: compiles a tfjs GraphModel (a TensorFlow SavedModel or frozen
 * graph written by `tensorflowjs_converter`) into the executor's graph, op by op, so that
 * every method — excitation backprop, c-EB, guided backprop and deconvnet included — runs
 * on it exactly as on a LayersModel.
 *
 * Supported ops (NHWC, float32): `Conv2D`, `_FusedConv2D` (fused `BiasAdd` and `Relu`,
 * `Relu6`, `Elu`, `Sigmoid` or `Tanh`), `DepthwiseConv2dNative`, `FusedDepthwiseConv2dNative`,
 * `MatMul`, `_FusedMatMul`, `BiasAdd`, `FusedBatchNorm` (V2, V3, inference mode), `Relu`,
 * `Relu6`, `Sigmoid`, `Tanh`, `Elu`, `Selu`, `Softplus`, `Softmax`, `Mul`, `Add`, `AddV2`,
 * `AddN`, `MaxPool`, `AvgPool`, `Mean` / `Max` over height and width, `Pad` / `PadV2` (zeros,
 * height and width), `ConcatV2`, `Reshape` (to a constant shape, or to Keras' dynamic-batch
 * `Pack(StridedSlice(Shape(x), 0, 1), ...)`), `Squeeze`, `Identity`, `StopGradient`, plus the
 * `Const` and `Placeholder` nodes that feed them. A convolution or matrix product followed
 * by its only consumer, a `BiasAdd` (or an `Add` of a constant vector), becomes one node
 * named after that consumer, as a Keras layer with a bias. A `Mul` or `Add` by a constant
 * is a per-channel affine op (kind `batch_norm`, the form a folded batch normalisation
 * takes); so are `Sub` and `RealDiv` by a constant (an input normalisation). Any other op is
 * one error naming the op and the node.
 *
 * @module
 */
import { buildGraph, type LayerNode, type ModelGraph } from "../graph.ts";
import type { Op } from "../layer_ops.ts";
import { type GraphModel, type Tensor, tf } from "../tensor.ts";
import {
  activationOp,
  affineOp,
  batchNormOp,
  concatOp,
  type ConvAttrs,
  convOp,
  denseOp,
  depthwiseOp,
  globalPoolOp,
  identityOp,
  isStrided,
  KERNEL_KINDS,
  mergeOp,
  padCropOp,
  poolOp,
  reshapeOp,
  squeezeOp,
} from "./ops.ts";

/** An op's layer (node) name and source op type. */
type Origin = [layer: string, className: string];

/** Options of {@linkcode compileGraphModel}. */
export interface GraphModelOptions {
  /**
   * Input height and width for a model whose input shape leaves them open
   * (`[-1, -1, -1, 3]`, common in TF Hub and SavedModel exports). A model with a fixed
   * size must be given that size or none.
   */
  readonly inputSize?: readonly [number, number];
}

/** A compiled model: the executable graph and the tensors the front end created for it. */
export interface CompiledGraph {
  /** The executable graph with its facts. */
  readonly graph: ModelGraph;
  /** Tensors created at compile time (converted weights); free them with the model. */
  readonly owned: readonly Tensor[];
}

// The parsed graph of tfjs-converter (its `Node` type is not exported by the package).
interface TfNode {
  name: string;
  op: string;
  inputNames: string[];
  inputs: TfNode[];
  children: TfNode[];
  attrParams: Record<string, { value: unknown } | undefined>;
  rawAttrs?: Record<string, { b?: boolean } | undefined>;
}

const ACTIVATIONS: Record<string, string> = {
  Relu: "relu",
  Relu6: "relu6",
  Sigmoid: "sigmoid",
  Tanh: "tanh",
  Elu: "elu",
  Selu: "selu",
  Softplus: "softplus",
  Softmax: "softmax",
};

const FUSED_ACTIVATIONS: Record<string, string> = {
  relu: "relu",
  relu6: "relu6",
  elu: "elu",
  sigmoid: "sigmoid",
  tanh: "tanh",
};

const LINEAR_OPS = new Set(["Conv2D", "DepthwiseConv2dNative", "MatMul"]);
const IDENTITY_OPS = new Set(["Identity", "StopGradient", "Snapshot"]);
const SUPPORTED = [
  "Conv2D",
  "_FusedConv2D",
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2dNative",
  "MatMul",
  "_FusedMatMul",
  "BiasAdd",
  "FusedBatchNorm(V2/V3)",
  ...Object.keys(ACTIVATIONS),
  "Mul",
  "Add",
  "AddV2",
  "AddN",
  "Sub (by a constant)",
  "RealDiv (by a constant)",
  "MaxPool",
  "AvgPool",
  "Mean",
  "Max",
  "Pad",
  "PadV2",
  "ConcatV2",
  "Reshape",
  "Squeeze",
  ...IDENTITY_OPS,
];

const strip = (name: string): string => name.replace(/^\^/, "").replace(/:0$/, "");

class Compiler {
  readonly #weights: Record<string, Tensor[]>;
  readonly owned: Tensor[] = [];

  constructor(weights: Record<string, Tensor[]>) {
    this.#weights = weights;
  }

  fail(n: TfNode, what: string): never {
    throw new Error(`GraphModel node '${n.name}' (${n.op}): ${what}`);
  }

  attr<T>(n: TfNode, key: string, fallback?: T): T {
    const v = n.attrParams[key]?.value;
    return (v === undefined ? fallback : v) as T;
  }

  isConst(n: TfNode): boolean {
    if (n.op === "Const") return true;
    return IDENTITY_OPS.has(n.op) && n.inputs.length === 1 && this.isConst(n.inputs[0]);
  }

  constant(n: TfNode, of: TfNode): Tensor {
    if (of.op === "Const") {
      const t = this.#weights[of.name]?.[0];
      if (!t) this.fail(n, `constant input '${of.name}' has no value`);
      return t;
    }
    if (IDENTITY_OPS.has(of.op) && of.inputs.length === 1) return this.constant(n, of.inputs[0]);
    return this.fail(n, `input '${of.name}' (${of.op}) must be a constant`);
  }

  numbers(n: TfNode, of: TfNode): number[] {
    return Array.from(this.constant(n, of).dataSync());
  }

  /**
   * The value of a shape operand: a constant, or a `Pack` of constants and the batch size
   * read from a tensor's shape (`StridedSlice(Shape(x), [0], [1])`), marked `"batch"`.
   */
  shapeValue(n: TfNode, of: TfNode): (number | "batch")[] {
    if (this.isConst(of)) return this.numbers(n, of);
    const isBatch = (t: TfNode): boolean => {
      if (t.op !== "StridedSlice" || t.inputs[0]?.op !== "Shape") return false;
      const [begin, end, strides] = t.inputs.slice(1).map((x) => this.numbers(n, x));
      return begin[0] === 0 && end[0] === 1 && (strides?.[0] ?? 1) === 1;
    };
    if (of.op === "Pack" && this.attr<number>(of, "axis", 0) === 0) {
      return of.inputs.map((t) => {
        if (isBatch(t)) return "batch";
        const v = this.isConst(t) ? this.numbers(n, t) : [];
        if (v.length !== 1) this.fail(n, `shape element '${t.name}' (${t.op}) is not supported`);
        return v[0];
      });
    }
    return this.fail(n, `shape from '${of.name}' (${of.op}): only constants or Pack(batch, ...)`);
  }

  /** The node's data (non-constant) inputs; only a node's first output may be used. */
  dataInputs(n: TfNode): TfNode[] {
    return n.inputs.filter((x, i) => {
      const ref = n.inputNames[i] ?? x.name;
      const port = /:(\d+)$/.exec(ref);
      if (!this.isConst(x) && port && port[1] !== "0") {
        this.fail(n, `reads output ${port[1]} of '${x.name}'; only first outputs are supported`);
      }
      return !this.isConst(x);
    });
  }

  nhwc(n: TfNode): void {
    const f = String(this.attr(n, "dataFormat", "nhwc")).toLowerCase();
    if (f !== "nhwc") this.fail(n, `data format ${f.toUpperCase()} is not supported (need NHWC)`);
  }

  window(n: TfNode, key: string): [number, number] {
    const v = this.attr<number[]>(n, key, [1, 1, 1, 1]);
    if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) {
      this.fail(n, `${key} [${v}] must be [1, h, w, 1]`);
    }
    return [v[1], v[2]];
  }

  /** Padding mode; explicit paddings become a zero-pad op before the window op. */
  padding(n: TfNode, o: Origin): { padding: "same" | "valid"; pre: Op[] } {
    const p = String(this.attr(n, "pad", "valid")).toLowerCase();
    if (p === "same" || p === "valid") return { padding: p, pre: [] };
    if (p !== "explicit") this.fail(n, `padding '${p}' is not supported`);
    const e = this.attr<number[]>(n, "explicitPaddings", []);
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) {
      this.fail(n, `explicit paddings [${e}] must pad height and width only`);
    }
    return { padding: "valid", pre: [padCropOp(...o, [[e[2], e[3]], [e[4], e[5]]], false)] };
  }

  /** A convolution / matrix product, with the fused or given bias and activation. */
  linear(n: TfNode, o: Origin, bias?: Tensor, act?: string): Op[] {
    const kernelNode = n.inputs[1];
    if (!kernelNode || !this.isConst(kernelNode)) {
      this.fail(n, "the kernel (second input) must be a constant");
    }
    let kernel = this.constant(n, kernelNode);
    const tail = act === undefined ? [] : [activationOp(...o, act)];
    if (n.op === "MatMul" || n.op === "_FusedMatMul") {
      if (this.attr(n, "transposeA", false)) this.fail(n, "transpose_a is not supported");
      if (this.attr(n, "transposeB", false)) {
        kernel = tf.transpose(kernel);
        this.owned.push(kernel);
      }
      return [denseOp(...o, kernel, bias), ...tail];
    }
    this.nhwc(n);
    const { padding, pre } = this.padding(n, o);
    const spec: ConvAttrs = {
      kernel,
      bias,
      strides: this.window(n, "strides"),
      padding,
      dilations: this.window(n, "dilations"),
    };
    const op = n.op.includes("Depthwise") ? depthwiseOp(...o, spec) : convOp(...o, spec);
    return [...pre, op, ...tail];
  }

  /** `_FusedConv2D`, `FusedDepthwiseConv2dNative`, `_FusedMatMul`. */
  fused(n: TfNode, o: Origin): Op[] {
    const fusedOps = this.attr<string[]>(n, "fusedOps", []).map((s) => s.toLowerCase());
    const numArgs = this.attr<number>(n, "numArgs", 0);
    const [first, act] = fusedOps;
    if (first !== undefined && first !== "biasadd") {
      this.fail(n, `fused op '${first}' is not supported (only BiasAdd and an activation)`);
    }
    if (fusedOps.length > 2 || (first === "biasadd" && numArgs !== 1)) {
      this.fail(n, `fused ops [${fusedOps}] with ${numArgs} arguments are not supported`);
    }
    const bias = first === "biasadd" ? this.constant(n, n.inputs[2]) : undefined;
    if (act !== undefined && !(act in FUSED_ACTIVATIONS)) {
      this.fail(n, `fused activation '${act}' is not supported`);
    }
    return this.linear(n, o, bias, act === undefined ? undefined : FUSED_ACTIVATIONS[act]);
  }

  /** The ops of node `n` and the nodes feeding its data inputs. */
  compile(n: TfNode): { ops: Op[]; sources: TfNode[] } {
    const o: Origin = [n.name, n.op];
    // A Reshape's shape may be computed from the input's own shape (Keras' Flatten with a
    // dynamic batch: Shape -> StridedSlice -> Pack): only its first input is data.
    const data = n.op === "Reshape" ? this.dataInputs(n).slice(0, 1) : this.dataInputs(n);
    const one = (ops: Op[]): { ops: Op[]; sources: TfNode[] } => {
      if (data.length !== 1) this.fail(n, `expected one data input, got ${data.length}`);
      return { ops, sources: data };
    };
    if (n.op in ACTIVATIONS) return one([activationOp(...o, ACTIVATIONS[n.op])]);
    if (IDENTITY_OPS.has(n.op)) return one([identityOp(...o)]);
    switch (n.op) {
      case "Conv2D":
      case "DepthwiseConv2dNative":
      case "MatMul":
        return one(this.linear(n, o));
      case "_FusedConv2D":
      case "FusedDepthwiseConv2dNative":
      case "_FusedMatMul":
        return one(this.fused(n, o));
      case "BiasAdd":
      case "Add":
      case "AddV2":
      case "Mul":
      case "Sub":
      case "RealDiv":
        return this.binary(n, o, data);
      case "AddN":
        return { ops: [mergeOp(...o, "add")], sources: data };
      case "FusedBatchNorm":
      case "FusedBatchNormV2":
      case "FusedBatchNormV3": {
        this.nhwc(n);
        if (n.rawAttrs?.is_training?.b) this.fail(n, "training-mode batch norm is not supported");
        const [scale, offset, mean, variance] = n.inputs.slice(1).map((x) => this.constant(n, x));
        const epsilon = this.attr<number>(n, "epsilon", 1e-3);
        return one([batchNormOp(...o, { gamma: scale, beta: offset, mean, variance, epsilon })]);
      }
      case "MaxPool":
      case "AvgPool": {
        this.nhwc(n);
        const { padding, pre } = this.padding(n, o);
        if (pre.length && n.op === "MaxPool") this.fail(n, "explicit max-pool padding");
        const kind = n.op === "MaxPool" ? "max_pool" : "avg_pool";
        const pool = this.window(n, "kernelSize");
        return one([...pre, poolOp(...o, kind, pool, this.window(n, "strides"), padding)]);
      }
      case "Mean":
      case "Max": {
        const axes = this.numbers(n, n.inputs[1]).map((a) => (a < 0 ? a + 4 : a)).sort();
        if (axes.join() !== "1,2") {
          this.fail(n, `reduction over axes [${axes}] is not supported (only height and width)`);
        }
        const kind = n.op === "Mean" ? "global_avg_pool" : "global_max_pool";
        return one([globalPoolOp(...o, kind, this.attr<boolean>(n, "keepDims", false) === true)]);
      }
      case "Pad":
      case "PadV2": {
        const p = this.numbers(n, n.inputs[1]);
        const value = n.op === "PadV2" ? this.numbers(n, n.inputs[2])[0] : 0;
        if (p.length !== 8 || p[0] || p[1] || p[6] || p[7] || value !== 0) {
          this.fail(n, `padding [${p}] with value ${value}: only zero padding of height and width`);
        }
        return one([padCropOp(...o, [[p[2], p[3]], [p[4], p[5]]], false)]);
      }
      case "ConcatV2": {
        const axisNode = n.inputs[n.inputs.length - 1];
        const parts = n.inputs.slice(0, -1);
        if (parts.some((x) => this.isConst(x))) this.fail(n, "constant inputs are not supported");
        return { ops: [concatOp(...o, this.numbers(n, axisNode)[0])], sources: data };
      }
      case "Reshape": {
        const shape = this.shapeValue(n, n.inputs[1]);
        if (shape.length < 2 || shape.slice(1).includes("batch")) {
          this.fail(n, `reshape to [${shape}] would merge the batch axis`);
        }
        return one([reshapeOp(...o, shape.slice(1) as number[])]);
      }
      case "Squeeze": {
        const axes = this.attr<number[]>(n, "axis", []);
        if (axes.some((a) => a === 0)) this.fail(n, "squeezing the batch axis");
        return one([squeezeOp(...o, axes)]);
      }
      case "Placeholder":
        return this.fail(n, "models with more than one input are not supported");
      case "Const":
        return this.fail(n, "a constant cannot be the model's data path");
      default:
        return this.fail(n, `op '${n.op}' is not supported (supported: ${SUPPORTED.join(", ")})`);
    }
  }

  /** `BiasAdd`, `Add`, `AddV2`, `Mul`: a merge of two data inputs, or affine by a constant. */
  binary(n: TfNode, o: Origin, data: TfNode[]): { ops: Op[]; sources: TfNode[] } {
    if (n.op === "BiasAdd") this.nhwc(n);
    if (data.length === 2) {
      if (n.op === "Sub" || n.op === "RealDiv") this.fail(n, "two data operands");
      return { ops: [mergeOp(...o, n.op === "Mul" ? "multiply" : "add")], sources: data };
    }
    if (data.length !== 1) this.fail(n, `expected one or two data inputs, got ${data.length}`);
    const c = this.constant(n, n.inputs.find((x) => this.isConst(x))!);
    const src = data[0];
    // A convolution / matrix product whose only consumer adds its bias: one node, as Keras.
    const biasLike = n.op !== "Mul" && c.rank === 1 && LINEAR_OPS.has(src.op) &&
      src.children.length === 1;
    if (biasLike) {
      const ops = this.linear(src, o, c);
      return { ops, sources: this.dataInputs(src) };
    }
    if (n.op === "Sub" || n.op === "RealDiv") {
      // x - c and x / c (an input normalisation); c - x and c / x are not affine in x.
      if (this.isConst(n.inputs[0])) this.fail(n, "a constant first operand is not supported");
      const t = tf.tidy(() => n.op === "Sub" ? tf.neg(c) : tf.reciprocal(c));
      this.owned.push(t);
      return { ops: [affineOp(...o, n.op === "Sub" ? { beta: t } : { gamma: t })], sources: data };
    }
    const spec = n.op === "Mul" ? { gamma: c } : { beta: c };
    return { ops: [affineOp(...o, spec)], sources: data };
  }
}

/** The model's input height, width and channels, from its shape and the options. */
function resolveInputSize(
  model: GraphModel,
  opts: GraphModelOptions,
): [number, number, number] {
  const shape = model.inputs[0].shape ?? [];
  if (shape.length !== 4) {
    throw new Error(`GraphModel input shape [${shape}] is not an image batch [N, H, W, C]`);
  }
  const known = (v: number | undefined): v is number => typeof v === "number" && v > 0;
  const c = shape[3];
  if (!known(c)) throw new Error(`GraphModel input shape [${shape}] leaves the channels open`);
  const want = opts.inputSize;
  const dims = [shape[1], shape[2]].map((d, i) => {
    if (known(d)) {
      if (want && want[i] !== d) {
        throw new Error(
          `input size ${want[0]}x${want[1]} does not fit the GraphModel's fixed input ` +
            `[${shape}]`,
        );
      }
      return d;
    }
    if (!want) {
      throw new Error(
        `GraphModel input shape [${shape}] is dynamic: give the input size ` +
          `(--input-size HxW, or the inputSize option)`,
      );
    }
    return want[i];
  });
  return [dims[0], dims[1], c];
}

/**
 * Compiles a GraphModel into the executor's graph (see the module doc for the ops). The
 * graph's parameters are the model's own weight tensors, plus the few tensors the front end
 * converts (returned in `owned`, to free with the model). Output shapes are measured by one
 * run of the compiled ops on zeros.
 */
export function compileGraphModel(
  model: GraphModel,
  opts: GraphModelOptions = {},
): CompiledGraph {
  // deno-lint-ignore no-explicit-any
  const graph = (model as any).executor?.graph as { nodes: Record<string, TfNode> } | undefined;
  if (!graph) throw new Error("not a GraphModel with a readable graph");
  if (model.inputNodes.length !== 1 || model.outputNodes.length !== 1) {
    throw new Error(
      `GraphModels with one input and one output are supported (this one has ` +
        `${model.inputNodes.length} and ${model.outputNodes.length})`,
    );
  }
  const inputName = strip(model.inputNodes[0]);
  const outName = strip(model.outputNodes[0]);
  const [h, w, c] = resolveInputSize(model, opts);
  const compiler = new Compiler(model.weights as Record<string, Tensor[]>);
  const order: { name: string; className: string; inputs: string[]; ops: Op[] }[] = [];
  const done = new Set<string>([inputName]);
  const visit = (n: TfNode | undefined, from: string): string => {
    if (!n) throw new Error(`GraphModel node '${from}' reads a node that does not exist`);
    if (done.has(n.name)) return n.name;
    const { ops, sources } = compiler.compile(n);
    const inputs = sources.map((s) => visit(s, n.name));
    done.add(n.name);
    order.push({ name: n.name, className: n.op, inputs, ops });
    return n.name;
  };
  try {
    visit(graph.nodes[outName], outName);
    // Output shapes from one batch-1 run; each value is freed after its last consumer.
    const uses = new Map<string, number>();
    for (const n of order) for (const s of n.inputs) uses.set(s, (uses.get(s) ?? 0) + 1);
    const values = new Map<string, Tensor>([[inputName, tf.zeros([1, h, w, c])]]);
    let shapes: number[][];
    try {
      shapes = order.map((node) => {
        const y = tf.tidy(() => {
          let cur = node.inputs.map((s) => values.get(s)!);
          for (const op of node.ops) cur = [op.forward(cur)];
          return cur[0];
        });
        values.set(node.name, y);
        for (const s of node.inputs) {
          const left = uses.get(s)! - 1;
          uses.set(s, left);
          if (left === 0) values.get(s)!.dispose();
        }
        return y.shape;
      });
    } finally {
      for (const t of values.values()) if (!t.isDisposed) t.dispose();
    }
    const nodes: LayerNode[] = order.map((n, i) => ({
      ...n,
      outputShape: [null, ...shapes[i].slice(1)],
      reducesResolution: n.ops.some(isStrided),
      hasKernel: n.ops.some((o) => KERNEL_KINDS.has(o.kind)),
    }));
    return { graph: buildGraph(inputName, [null, h, w, c], nodes, outName), owned: compiler.owned };
  } catch (e) {
    compiler.owned.forEach((t) => t.dispose());
    throw e;
  }
}
