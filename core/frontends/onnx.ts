/**
 * The ONNX front end: compiles a loaded `.onnx` model (see `onnx_model.ts`) into the
 * executor's graph, so that PyTorch models exported with `torch.onnx.export` run every
 * method.
 *
 * Layouts convert once, at compile time: the NCHW input becomes NHWC (`[N, H, W, C]`, as for
 * every other model), convolution weights `[M, C/g, kh, kw]` become HWIO (or HWCM for
 * depthwise convolutions), `Gemm` weights become `[in, out]`, constant operands of
 * element-wise ops are permuted to NHWC, and axes are remapped. A `Flatten` of a spatial
 * tensor flattens in ONNX's C, H, W order. Max pools pad with -inf (PyTorch), `ceil_mode`
 * included.
 *
 * Supported ops (opset 11 to 17): `Conv` (grouped and depthwise, dilations, asymmetric
 * pads, `auto_pad`; a grouped convolution runs with a block-diagonal kernel), `Relu`,
 * `Clip` (to ReLU / ReLU6), `Sigmoid`, `HardSigmoid` and `HardSwish` (as an affine map, a
 * ReLU6 and, for HardSwish, a multiplication), `LeakyRelu`, `Elu`, `Selu`, `Softplus`,
 * `Tanh`, `Softmax`, `BatchNormalization`, `MaxPool`, `AveragePool`, `GlobalAveragePool`,
 * `GlobalMaxPool`, `ReduceMean` over H and W, `Flatten`, `Reshape` to `[N, -1]`, `Gemm`,
 * `MatMul` by a constant, `Add`, `Mul`, `Sum`, `Concat`, `Pad` (zeros, H and W), `Dropout`,
 * `Identity`, `Cast` to a float type, `Transpose` by the identity permutation, `Constant`.
 * Any other op, and any attribute an op does not read, is one error naming the op, the
 * attribute and the node.
 *
 * Reading the file (weights in it or in external data files) is `onnx_model.ts`.
 *
 * Node names: the ONNX node name turned into the PyTorch module path where the exporter
 * recorded one (`/layer1/layer1.0/conv1/Conv` becomes `layer1.0.conv1`; an op written in a
 * module's `forward`, such as a residual `Add`, becomes `layer1.0/Add`, unless it is the
 * module's last node: a module's output takes the module's name, so that SqueezeNet's
 * `features.7` is its Fire module's `Concat`, DenseNet's `features.denseblock3` the block's
 * last `Concat`, and SiLU's `Mul` the SiLU module).
 *
 * @module
 */
import { buildGraph, type LayerNode, type ModelGraph } from "../graph.ts";
import type { Op } from "../layer_ops.ts";
import { type Tensor, type Tensor4D, tf, windowPads } from "../tensor.ts";
import {
  type AttrValue,
  attrValue,
  type Constant,
  type NodeProto,
  num,
  type OnnxModel,
  type TensorProto,
  tensorValues,
} from "./onnx_model.ts";
import { FOLDABLE, foldConstant } from "./onnx_const.ts";
import {
  activationOp,
  affineOp,
  batchNormOp,
  concatOp,
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
} from "./ops.ts";

/** An op's layer (node) name and source op type. */
type Origin = [layer: string, className: string];

/** Executable-graph names from PyTorch scope names (see the module doc). */
function nodeNames(nodes: readonly NodeProto[]): string[] {
  const scoped = nodes.map((n, i) => {
    const raw = n.name || n.output[0] || `${n.opType}_${i}`;
    // Constants become no node: they must not take their module's name.
    if (!raw.startsWith("/") || n.opType === "Constant") {
      return { raw, path: undefined as string | undefined, op: "" };
    }
    const parts = raw.slice(1).split("/");
    const op = parts.pop()!;
    // A child of a Sequential carries its parent's name ("layer1" then "layer1.0").
    let path = "";
    let prev = "";
    for (const p of parts) {
      path = !path
        ? p
        : prev && p.startsWith(`${prev}.`)
        ? path + p.slice(prev.length)
        : `${path}.${p}`;
      prev = p;
    }
    return { raw, path: path || undefined, op };
  });
  // The last node of each module's subtree (nested modules included) gives its output.
  const lastOf = new Map<string, number>();
  scoped.forEach((s, i) => {
    if (!s.path) return;
    const segs = s.path.split(".");
    for (let k = 1; k <= segs.length; k++) {
      lastOf.set(segs.slice(0, k).join("."), i);
    }
  });
  const used = new Map<string, number>();
  return scoped.map((s, i) => {
    const own = s.path !== undefined && lastOf.get(s.path) === i;
    let name = s.path === undefined ? s.raw : own ? s.path : `${s.path}/${s.op}`;
    if (s.path === undefined && s.raw.startsWith("/")) name = s.raw.slice(1);
    const k = used.get(name) ?? 0;
    used.set(name, k + 1);
    return k === 0 ? name : `${name}#${k}`;
  });
}

/** SELU's alpha and gamma (ONNX defaults). */
const SELU = [1.67326319217681884765625, 1.05070102214813232421875];

/** `TensorProto.DataType` codes of float types (`Cast` to them keeps the values). */
const FLOAT_TYPES = new Set([1, 10, 11]);

/**
 * The attributes each op accepts (any other is an error naming it). Ops not listed have
 * their attributes checked where they are read.
 */
const ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  Conv: ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
  MaxPool: ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"],
  AveragePool: ["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"],
  BatchNormalization: ["epsilon", "momentum", "spatial", "training_mode"],
  Relu: [],
  Sigmoid: [],
  Tanh: [],
  Softplus: [],
  HardSwish: [],
  Elu: ["alpha"],
  Selu: ["alpha", "gamma"],
  LeakyRelu: ["alpha"],
  HardSigmoid: ["alpha", "beta"],
  Clip: ["min", "max"],
  Softmax: ["axis"],
  GlobalAveragePool: [],
  GlobalMaxPool: [],
  ReduceMean: ["axes", "keepdims"],
  Flatten: ["axis"],
  Reshape: ["allowzero"],
  Gemm: ["alpha", "beta", "transA", "transB"],
  MatMul: [],
  Add: [],
  Mul: [],
  Sum: [],
  Concat: ["axis"],
  Pad: ["mode", "pads", "value"],
  Dropout: ["ratio", "seed"],
  Identity: [],
  Constant: ["value"],
  Transpose: ["perm"],
  Cast: ["to", "saturate"],
};

/** An attribute value for messages. */
function attrText(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v}]`;
  if (typeof v === "object") return "a tensor";
  return String(v);
}

/** A data value: the executable node producing it and its NHWC shape at batch 1. */
interface Value {
  readonly node: string;
  readonly probe: Tensor;
  /** The value was transposed to NHWC (its stored layout): only a flatten may read it. */
  readonly nhwc?: boolean;
}

class OnnxCompiler {
  readonly owned: Tensor[] = [];
  readonly probes: Tensor[] = [];
  /** Constants by value name, decoded when a node reads them (no decoded copy is kept). */
  readonly consts = new Map<string, TensorProto | Constant>();
  readonly values = new Map<string, Value>();
  readonly nodes: LayerNode[] = [];
  readonly #source: string;

  constructor(source: string) {
    this.#source = source;
  }

  fail(n: NodeProto, name: string, what: string): never {
    throw new Error(`${this.#source}: node '${name}' (${n.opType}): ${what}`);
  }

  attrs(n: NodeProto): Record<string, AttrValue> {
    const out: Record<string, AttrValue> = {};
    for (const a of n.attribute) out[a.name] = attrValue(a);
    return out;
  }

  /** A weight tensor the session owns. */
  weight(values: Float32Array | Int32Array, shape: number[]): Tensor {
    const t = tf.tensor(values, shape, "float32");
    this.owned.push(t);
    return t;
  }

  /** A constant input (`what` for messages); throws when the input is data. */
  constant(n: NodeProto, name: string, i: number, what: string): Constant {
    const c = this.consts.get(n.input[i]);
    if (!c) this.fail(n, name, `the ${what} (input ${i}) must be a constant`);
    return this.decoded(c);
  }

  /** A constant's values (initializers are decoded each time they are read). */
  decoded(c: TensorProto | Constant): Constant {
    return "data" in c ? c : tensorValues(c, this.#source);
  }

  /** Compiles one node: its ops (possibly none for constants) and data inputs. */
  compile(n: NodeProto, name: string): void {
    const o: Origin = [name, n.opType];
    const a = this.attrs(n);
    const known = ATTRIBUTES[n.opType];
    const extra = known && n.attribute.find((at) => !known.includes(at.name));
    if (extra) {
      this.fail(
        n,
        name,
        `attribute '${extra.name}' = ${attrText(attrValue(extra))} is not supported`,
      );
    }
    const data = n.input.filter((s) => s !== "" && !this.consts.has(s));
    for (const d of data) {
      if (!this.values.has(d)) this.fail(n, name, `input '${d}' is not produced by any node`);
    }
    if (FOLDABLE.has(n.opType) && n.input.length && !data.length) {
      // Shape arithmetic on constants: the output is a constant too.
      const ins = n.input.map((s) => (s ? this.decoded(this.consts.get(s)!) : undefined));
      try {
        this.consts.set(n.output[0], foldConstant(n.opType, a, ins));
      } catch (e) {
        this.fail(n, name, (e as Error).message.split("\n")[0]);
      }
      return;
    }
    const nhwc = data.find((d) => this.values.get(d)!.nhwc);
    if (nhwc && !["Flatten", "Reshape", "Transpose"].includes(n.opType)) {
      this.fail(
        n,
        name,
        `input '${nhwc}' was transposed to NHWC; only Flatten, Reshape or a Transpose back read it`,
      );
    }
    const x = data.length ? this.values.get(data[0])!.probe : undefined;
    const one = (...ops: Op[]) => {
      if (data.length !== 1) this.fail(n, name, `expected one data input, got ${data.length}`);
      this.emit(name, n, ops, data);
    };
    const spatial = (): Tensor4D => {
      if (!x || x.rank !== 4) this.fail(n, name, "needs a 4-D (N, C, H, W) input");
      return x as Tensor4D;
    };
    switch (n.opType) {
      case "Constant": {
        const t = a.value;
        if (!t || typeof t !== "object" || Array.isArray(t)) {
          this.fail(n, name, "only tensor constants are supported");
        }
        this.consts.set(n.output[0], t as TensorProto);
        return;
      }
      case "Conv":
        return one(...this.conv(n, name, o, a, spatial()));
      case "Relu":
        return one(activationOp(...o, "relu"));
      case "Sigmoid":
        return one(activationOp(...o, "sigmoid"));
      case "HardSigmoid":
        return one(...this.hardSigmoid(o, num(a.alpha ?? 0.2), num(a.beta ?? 0.5)));
      case "HardSwish": {
        // x * hardsigmoid(x) (alpha 1/6, beta 1/2): the gate as a node of its own, then a Mul.
        if (data.length !== 1) this.fail(n, name, "expected one data input");
        const xv = this.values.get(data[0])!;
        const gate = this.node(
          `${name}/HardSigmoid`,
          "HardSigmoid",
          this.hardSigmoid(
            [
              `${name}/HardSigmoid`,
              "HardSigmoid",
            ],
            1 / 6,
            0.5,
          ),
          [xv],
        );
        const out = this.node(name, n.opType, [mergeOp(...o, "multiply")], [xv, gate]);
        this.values.set(n.output[0], out);
        return;
      }
      case "Tanh":
        return one(activationOp(...o, "tanh"));
      case "Softplus":
        return one(activationOp(...o, "softplus"));
      case "Elu":
        return one(activationOp(...o, "elu", { alpha: num(a.alpha ?? 1) }));
      case "Selu": {
        const [alpha, gamma] = [num(a.alpha ?? SELU[0]), num(a.gamma ?? SELU[1])];
        if (Math.abs(alpha - SELU[0]) > 1e-6 || Math.abs(gamma - SELU[1]) > 1e-6) {
          this.fail(n, name, `alpha ${alpha} / gamma ${gamma}: only SELU's own constants`);
        }
        return one(activationOp(...o, "selu"));
      }
      case "LeakyRelu":
        return one(activationOp(...o, "leaky_relu", { alpha: num(a.alpha ?? 0.01) }));
      case "Transpose": {
        const perm = ((a.perm as number[] | undefined) ?? []).join();
        const from = data.length === 1 && this.values.get(data[0])!.nhwc === true;
        // The stored layout is NHWC: a transpose to NHWC (before a flatten) moves nothing.
        const to = perm === "0,2,3,1" && !from && x?.rank === 4
          ? true
          : perm === "0,3,1,2" && from
          ? false
          : [...perm.split(",").keys()].join() === perm
          ? from
          : undefined;
        if (to === undefined) {
          this.fail(n, name, `perm [${perm}]: only the identity or NCHW <-> NHWC (then a flatten)`);
        }
        one(identityOp(...o));
        return void this.values.set(n.output[0], { ...this.values.get(n.output[0])!, nhwc: to });
      }
      case "Cast": {
        const to = num(a.to);
        if (!FLOAT_TYPES.has(to)) this.fail(n, name, `cast to data type ${to}: only to floats`);
        const c = this.consts.get(n.input[0]);
        if (c) return void this.consts.set(n.output[0], c);
        return one(identityOp(...o));
      }
      case "Sum":
        if (data.length !== n.input.length) this.fail(n, name, "constant inputs");
        return data.length === 1
          ? one(identityOp(...o))
          : this.emit(name, n, [mergeOp(...o, "add")], data);
      case "Clip": {
        const lo = n.input[1]
          ? this.constant(n, name, 1, "minimum").data[0]
          : num(a.min ?? -Infinity);
        const hi = n.input[2]
          ? this.constant(n, name, 2, "maximum").data[0]
          : num(a.max ?? Infinity);
        if (lo === 0 && hi === 6) return one(activationOp(...o, "relu6"));
        if (lo === 0 && hi === Infinity) return one(activationOp(...o, "relu"));
        return this.fail(n, name, `clipping to [${lo}, ${hi}] is not supported (ReLU, ReLU6)`);
      }
      case "Softmax": {
        const axis = num(a.axis ?? -1);
        if (!x || !(axis === -1 || axis === x.rank - 1)) {
          this.fail(n, name, `softmax over axis ${axis} is not supported (last axis only)`);
        }
        return one(activationOp(...o, "softmax"));
      }
      case "BatchNormalization": {
        spatial();
        if (num(a.training_mode ?? 0) !== 0) this.fail(n, name, "training_mode 1 is not supported");
        if (num(a.spatial ?? 1) !== 1) this.fail(n, name, "spatial 0 is not supported");
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => {
          const c = this.constant(n, name, i, "statistics");
          return this.weight(c.data, [c.dims[0]]);
        });
        const epsilon = num(a.epsilon ?? 1e-5);
        return one(batchNormOp(...o, { gamma: scale, beta: bias, mean, variance, epsilon }));
      }
      case "MaxPool":
      case "AveragePool":
        return one(...this.pool(n, name, o, a, spatial()));
      case "GlobalAveragePool":
      case "GlobalMaxPool":
        spatial();
        return one(
          globalPoolOp(
            ...o,
            n.opType === "GlobalMaxPool" ? "global_max_pool" : "global_avg_pool",
            true,
          ),
        );
      case "ReduceMean": {
        const axes = ((a.axes as number[] | undefined) ??
          (n.input[1] ? Array.from(this.constant(n, name, 1, "axes").data) : [])).map((v) =>
            v < 0 ? v + 4 : v
          ).sort();
        spatial();
        if (axes.join() !== "2,3") this.fail(n, name, `mean over axes [${axes}]: only H and W`);
        return one(globalPoolOp(...o, "global_avg_pool", num(a.keepdims ?? 1) === 1));
      }
      case "Flatten": {
        if (num(a.axis ?? 1) !== 1) this.fail(n, name, "only axis 1 is supported");
        return one(nhwc ? reshapeOp(...o, [-1]) : this.flatten(o, x!));
      }
      case "Reshape": {
        const shape = Array.from(this.constant(n, name, 1, "shape").data);
        const flat = shape.length === 2 && (shape[1] === -1 || shape[0] === -1 || shape[0] === 0);
        if (!flat) this.fail(n, name, `reshape to [${shape}]: only [N, -1] is supported`);
        return one(nhwc ? reshapeOp(...o, [-1]) : this.flatten(o, x!));
      }
      case "Gemm":
      case "MatMul":
        return one(this.dense(n, name, o, a));
      case "Add":
      case "Mul":
        return this.binary(n, name, o, data);
      case "Concat": {
        const axis = num(a.axis);
        if (n.input.some((s) => this.consts.has(s))) this.fail(n, name, "constant inputs");
        const rank = x!.rank;
        const ax = axis < 0 ? axis + rank : axis;
        const mapped = rank === 4 ? [0, 3, 1, 2][ax] : ax;
        return this.emit(name, n, [concatOp(...o, mapped)], data);
      }
      case "Pad": {
        const mode = String(a.mode ?? "constant");
        const pads = (a.pads as number[] | undefined) ??
          Array.from(this.constant(n, name, 1, "pads").data);
        const value = n.input[2] ? this.constant(n, name, 2, "value").data[0] : num(a.value ?? 0);
        spatial();
        if (mode !== "constant" || value !== 0 || pads[0] || pads[1] || pads[4] || pads[5]) {
          this.fail(n, name, `padding [${pads}] (${mode}, ${value}): only zeros on H and W`);
        }
        return one(padCropOp(...o, [[pads[2], pads[6]], [pads[3], pads[7]]], false));
      }
      case "Dropout":
      case "Identity": {
        const c = this.consts.get(n.input[0]);
        if (c) return void this.consts.set(n.output[0], c); // a constant, renamed
        return one(identityOp(...o));
      }
      default:
        return this.fail(n, name, `op '${n.opType}' is not supported`);
    }
  }

  emit(name: string, n: NodeProto, ops: Op[], data: string[]): void {
    const v = this.node(name, n.opType, ops, data.map((d) => this.values.get(d)!));
    this.values.set(n.output[0], v);
  }

  /** Adds an executable node fed by `ins`; returns its value. */
  node(name: string, className: string, ops: Op[], ins: Value[]): Value {
    const probe = tf.tidy(() => {
      let cur = ins.map((v) => v.probe);
      for (const op of ops) cur = [op.forward(cur)];
      return cur[0];
    });
    this.probes.push(probe);
    this.nodes.push({
      name,
      className,
      inputs: ins.map((v) => v.node),
      outputShape: [null, ...probe.shape.slice(1)],
      ops,
      reducesResolution: ops.some(isStrided),
      hasKernel: ops.some((o) => KERNEL_KINDS.has(o.kind)),
    });
    return { node: name, probe };
  }

  /** A scalar the session owns. */
  scalar(v: number): Tensor {
    const t = tf.scalar(v);
    this.owned.push(t);
    return t;
  }

  /**
   * `clip(alpha * x + beta, 0, 1)` as ops of known kinds: an affine map to `6 (alpha x +
   * beta)`, a ReLU6, and a division by 6.
   */
  hardSigmoid(o: Origin, alpha: number, beta: number): Op[] {
    return [
      affineOp(...o, { gamma: this.scalar(6 * alpha), beta: this.scalar(6 * beta) }),
      activationOp(...o, "relu6"),
      affineOp(...o, { gamma: this.scalar(1 / 6) }),
    ];
  }

  /** Padding of a window op: `same`/`valid` where they match, else explicit amounts. */
  windowPadding(
    n: NodeProto,
    name: string,
    a: Record<string, AttrValue>,
    x: Tensor4D,
    k: [number, number],
    s: [number, number],
    d: [number, number],
  ): { mode: "same" | "valid"; pads: [[number, number], [number, number]] } {
    const auto = String(a.auto_pad ?? "NOTSET");
    const [h, w] = [x.shape[1], x.shape[2]];
    const same: [[number, number], [number, number]] = [
      windowPads(h, k[0], s[0], d[0], "same"),
      windowPads(w, k[1], s[1], d[1], "same"),
    ];
    if (auto === "SAME_UPPER") return { mode: "same", pads: same };
    if (auto === "VALID") return { mode: "valid", pads: [[0, 0], [0, 0]] };
    if (auto !== "NOTSET") this.fail(n, name, `auto_pad ${auto} is not supported`);
    const p = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
    const pads: [[number, number], [number, number]] = [[p[0], p[2]], [p[1], p[3]]];
    if (pads.flat().every((v) => v === 0)) return { mode: "valid", pads };
    if (pads.flat().join() === same.flat().join()) return { mode: "same", pads };
    return { mode: "valid", pads };
  }

  conv(
    n: NodeProto,
    name: string,
    o: Origin,
    a: Record<string, AttrValue>,
    x: Tensor4D,
  ): Op[] {
    const w = this.constant(n, name, 1, "weight");
    const [m, cg, kh, kw] = w.dims;
    const group = num(a.group ?? 1);
    const cin = x.shape[3];
    const strides = ((a.strides as number[]) ?? [1, 1]) as [number, number];
    const dilations = ((a.dilations as number[]) ?? [1, 1]) as [number, number];
    const { mode, pads } = this.windowPadding(n, name, a, x, [kh, kw], strides, dilations);
    const pre = mode === "valid" && pads.flat().some((v) => v)
      ? [padCropOp(...o, pads, false)]
      : [];
    const bias = n.input[2] ? this.constant(n, name, 2, "bias") : undefined;
    const b = bias ? this.weight(bias.data, [m]) : undefined;
    // Layouts change in JS, one weight at a time: no second copy on the backend.
    let kernel: Tensor;
    if (group === 1) {
      kernel = tf.tensor4d(permute(w.data, w.dims, [2, 3, 1, 0]), [kh, kw, cg, m]);
    } else if (group === cin && cg === 1) {
      // Depthwise: output channel c * mult + j reads input channel c -> [kh, kw, C, mult].
      const dims = [cin, m / cin, kh, kw];
      kernel = tf.tensor4d(permute(w.data, dims, [2, 3, 0, 1]), [kh, kw, cin, m / cin]);
    } else if (cin % group === 0 && m % group === 0 && cg === cin / group) {
      kernel = groupedAsDense(w, group, cin);
    } else {
      return this.fail(n, name, `convolution with group ${group} on ${cin} channels`);
    }
    this.owned.push(kernel);
    const spec = { kernel, bias: b, strides, padding: mode, dilations };
    const depthwise = group !== 1 && group === cin && cg === 1;
    return [...pre, depthwise ? depthwiseOp(...o, spec) : convOp(...o, spec)];
  }

  pool(
    n: NodeProto,
    name: string,
    o: Origin,
    a: Record<string, AttrValue>,
    x: Tensor4D,
  ): Op[] {
    const k = a.kernel_shape as [number, number];
    const s = ((a.strides as number[]) ?? [1, 1]) as [number, number];
    if (a.dilations && (a.dilations as number[]).some((v) => v !== 1)) {
      this.fail(n, name, "dilated pooling is not supported");
    }
    const { mode, pads } = this.windowPadding(n, name, a, x, k, s, [1, 1]);
    const ceil = num(a.ceil_mode ?? 0) === 1;
    // ceil_mode: pad the end so that the last (partial) window exists; PyTorch drops a
    // window that would start in the end padding.
    const extra = [0, 1].map((i) => {
      if (!ceil) return 0;
      const size = x.shape[1 + i] + pads[i][0] + pads[i][1];
      let out = Math.ceil((size - k[i]) / s[i]) + 1;
      if ((out - 1) * s[i] >= x.shape[1 + i] + pads[i][0]) out--;
      return Math.max(0, (out - 1) * s[i] + k[i] - size);
    });
    const explicit = mode === "valid" && (pads.flat().some((v) => v) || extra.some((v) => v));
    if (n.opType === "MaxPool") {
      if (!explicit) return [poolOp(...o, "max_pool", k, s, mode)];
      const p: [[number, number], [number, number]] = [
        [pads[0][0], pads[0][1] + extra[0]],
        [pads[1][0], pads[1][1] + extra[1]],
      ];
      return [paddedMaxPoolOp(o, k, s, p)];
    }
    const includePad = num(a.count_include_pad ?? 0) === 1;
    if (!explicit) {
      if (mode === "same" && includePad) {
        return [padCropOp(...o, pads, false), poolOp(...o, "avg_pool", k, s, "valid")];
      }
      return [poolOp(...o, "avg_pool", k, s, mode)];
    }
    if (!includePad || extra.some((v) => v)) {
      this.fail(n, name, "average pooling with this padding (count_include_pad=0 or ceil_mode)");
    }
    return [padCropOp(...o, pads, false), poolOp(...o, "avg_pool", k, s, "valid")];
  }

  /** ONNX-order flatten of `[N, H, W, C]` (C, H, W order), or a plain reshape. */
  flatten(o: Origin, x: Tensor): Op {
    if (x.rank !== 4 || (x.shape[1] === 1 && x.shape[2] === 1)) return reshapeOp(...o, [-1]);
    return {
      kind: "reshape",
      layer: o[0],
      className: o[1],
      params: {},
      forward: ([t]) => tf.tidy(() => t.transpose([0, 3, 1, 2]).reshape([t.shape[0], -1])),
      backward: (dy, [t]) =>
        tf.tidy(() => {
          const [b, h, w, c] = t.shape;
          return [dy.reshape([b, c, h, w]).transpose([0, 2, 3, 1])];
        }),
    };
  }

  dense(n: NodeProto, name: string, o: Origin, a: Record<string, AttrValue>): Op {
    const w = this.constant(n, name, 1, "weight");
    if (num(a.transA ?? 0) !== 0) this.fail(n, name, "transA is not supported");
    if (num(a.alpha ?? 1) !== 1 || num(a.beta ?? 1) !== 1) {
      this.fail(n, name, "alpha / beta other than 1 are not supported");
    }
    if (w.dims.length !== 2) this.fail(n, name, `weight of shape [${w.dims}] is not 2-D`);
    const transB = num(a.transB ?? 0) === 1;
    const [r, c2] = w.dims;
    const kernel = transB
      ? tf.tensor2d(permute(w.data, w.dims, [1, 0]), [c2, r])
      : tf.tensor2d(w.data, [r, c2]);
    this.owned.push(kernel);
    const c = n.opType === "Gemm" && n.input[2] ? this.constant(n, name, 2, "bias") : undefined;
    const bias = c ? this.weight(c.data, c.dims) : undefined;
    return denseOp(...o, kernel, bias);
  }

  binary(n: NodeProto, name: string, o: Origin, data: string[]): void {
    const kind = n.opType === "Mul" ? "multiply" : "add";
    if (data.length === 2) return this.emit(name, n, [mergeOp(...o, kind)], data);
    if (data.length !== 1) this.fail(n, name, `expected one or two data inputs`);
    const ci = n.input.findIndex((s) => this.consts.has(s));
    const c = this.constant(n, name, ci, "operand");
    const x = this.values.get(data[0])!.probe;
    // NCHW-broadcast constant -> NHWC: left-pad to rank 4, move C last.
    let dims = c.dims;
    let t: Tensor;
    if (x.rank === 4 && dims.length >= 3) {
      dims = [...Array(4 - dims.length).fill(1), ...dims];
      t = tf.tidy(() => tf.tensor(c.data, dims, "float32").transpose([0, 2, 3, 1]));
    } else t = tf.tensor(c.data, dims, "float32");
    this.owned.push(t);
    const spec = kind === "multiply" ? { gamma: t } : { beta: t };
    this.emit(name, n, [affineOp(...o, spec)], data);
  }
}

/** `data` of shape `dims` with its axes permuted (`perm[i]` = source axis of axis i). */
function permute(data: Float32Array | Int32Array, dims: number[], perm: number[]): Float32Array {
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p]);
  const srcStrides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const step = perm.map((p) => srcStrides[p]); // source stride of each output axis
  const out = new Float32Array(data.length);
  const idx = new Array(rank).fill(0);
  let src = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = data[src];
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      src += step[a];
      if (idx[a] < outDims[a]) break;
      src -= step[a] * outDims[a];
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * The HWIO kernel `[kh, kw, C, M]` of a grouped convolution (ONNX weight `[M, C/g, kh, kw]`):
 * block-diagonal, zero between groups, so that the op is an ordinary `conv2d` for every rule.
 */
function groupedAsDense(w: Constant, group: number, cin: number): Tensor {
  const [m, cg, kh, kw] = w.dims;
  const mg = m / group;
  const out = new Float32Array(kh * kw * cin * m);
  for (let o = 0; o < m; o++) {
    const g = Math.floor(o / mg);
    for (let c = 0; c < cg; c++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const v = w.data[((o * cg + c) * kh + i) * kw + j];
          out[((i * kw + j) * cin + g * cg + c) * m + o] = v;
        }
      }
    }
  }
  return tf.tensor4d(out, [kh, kw, cin, m]);
}

/** A max pool with explicit -inf padding (PyTorch semantics), kind `max_pool`. */
function paddedMaxPoolOp(
  o: Origin,
  pool: [number, number],
  strides: [number, number],
  pads: [[number, number], [number, number]],
): Op {
  const padded = (x: Tensor): Tensor4D =>
    tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]], -Infinity) as Tensor4D;
  const inner = poolOp(...o, "max_pool", pool, strides, "valid");
  return {
    ...inner,
    params: { ...inner.params, pads },
    forward: ([x]) => tf.tidy(() => inner.forward([padded(x)])),
    backward: (dy, [x], y) =>
      tf.tidy(() => {
        const xp = padded(x);
        const [g] = inner.backward(dy, [xp], y);
        const [n, h, w, c] = x.shape;
        return [g.slice([0, pads[0][0], pads[1][0], 0], [n, h, w, c])];
      }),
  };
}

/**
 * Compiles an ONNX model into the executor's graph (see the module doc). Weights are
 * converted to NHWC tensors once; they are returned in `owned`.
 */
export function compileOnnxModel(
  model: OnnxModel,
  opts: { inputSize?: readonly [number, number] } = {},
): { graph: ModelGraph; owned: Tensor[] } {
  const g = model.proto.graph;
  const compiler = new OnnxCompiler(model.source);
  try {
    for (const init of g.initializer) {
      compiler.consts.set(init.name, init);
    }
    const inputs = g.input.filter((i) => !compiler.consts.has(i.name));
    if (inputs.length !== 1 || g.output.length !== 1) {
      throw new Error(
        `${model.source}: models with one input and one output are supported ` +
          `(this one has ${inputs.length} and ${g.output.length})`,
      );
    }
    const input = inputs[0];
    const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d) =>
      d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue) > 0
        ? num(d.dimValue)
        : undefined
    );
    if (dims.length !== 4 || dims[1] === undefined) {
      throw new Error(`${model.source}: input '${input.name}' is not an image batch [N, C, H, W]`);
    }
    const want = opts.inputSize;
    const hw = [dims[2], dims[3]].map((d, i) => {
      if (d !== undefined) {
        if (want && want[i] !== d) {
          throw new Error(`input size ${want[0]}x${want[1]} does not fit the ONNX input ${dims}`);
        }
        return d;
      }
      if (!want) {
        throw new Error(
          `${model.source}: input '${input.name}' has a dynamic size: give the input size ` +
            `(--input-size HxW, or the inputSize option)`,
        );
      }
      return want[i];
    });
    const c = dims[1];
    const probe = tf.zeros([1, hw[0], hw[1], c]);
    compiler.probes.push(probe);
    compiler.values.set(input.name, { node: input.name, probe });
    const names = nodeNames(g.node);
    // Shape probes (batch 1) are freed once their last consumer is compiled.
    const uses = new Map<string, number>([[g.output[0].name, 1]]);
    for (const n of g.node) for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
    g.node.forEach((n, i) => {
      compiler.compile(n, names[i]);
      for (const inp of n.input) {
        const left = (uses.get(inp) ?? 1) - 1;
        uses.set(inp, left);
        if (left === 0) compiler.values.get(inp)?.probe.dispose();
      }
    });
    const out = compiler.values.get(g.output[0].name);
    if (!out) throw new Error(`${model.source}: output '${g.output[0].name}' is never computed`);
    const graph = buildGraph(input.name, [null, hw[0], hw[1], c], compiler.nodes, out.node);
    model.adopt(compiler.owned);
    return { graph, owned: compiler.owned };
  } catch (e) {
    compiler.owned.forEach((t) => t.dispose());
    throw e;
  } finally {
    compiler.probes.forEach((t) => t.dispose());
  }
}
