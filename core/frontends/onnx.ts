/**
 * The ONNX front end: reads a `.onnx` file (protobuf, decoded with the `onnx-proto`
 * package's generated ONNX schema) and compiles its graph into the executor's graph, so that
 * PyTorch models exported with `torch.onnx.export` run every method.
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
 * `Clip` (to ReLU / ReLU6), `LeakyRelu`, `HardSigmoid`, `HardSwish`, `Elu`, `Selu`,
 * `Softplus`, `Sigmoid`, `Tanh`, `Softmax`, `BatchNormalization`, `MaxPool`,
 * `AveragePool`, `GlobalAveragePool`, `GlobalMaxPool`, `ReduceMean` over H and W, `Flatten`,
 * `Reshape` to `[N, -1]`, `Gemm`, `MatMul` by a constant, `Add`, `Mul`, `Sum`, `Concat`,
 * `Pad` (zeros, H and W), `Dropout`, `Identity`, `Cast` to a float type, `Transpose` by the
 * identity permutation, `Constant`. Any other op, and any attribute an op does not read, is
 * one error naming the op, the attribute and the node.
 *
 * Weights load from the model file (raw bytes or typed fields; float32, float16, float64 and
 * integer types) or, with {@linkcode loadOnnxModel}, from external data files next to it.
 *
 * Node names: the ONNX node name turned into the PyTorch module path where the exporter
 * recorded one (`/layer1/layer1.0/conv1/Conv` becomes `layer1.0.conv1`; an op written in a
 * module's `forward`, such as a residual `Add`, becomes `layer1.0/Add`, unless it is the
 * module's last node: a module's output takes the module's name, so that SqueezeNet's
 * `features.7` is its Fire module's `Concat` and DenseNet's `features.denseblock3` the
 * block's last `Concat`).
 *
 * @module
 */
import onnxProto from "onnx-proto";
import { buildGraph, type LayerNode, type ModelGraph } from "../graph.ts";
import type { Op } from "../layer_ops.ts";
import {
  companionUrl,
  displayName,
  fetchBytes,
  ModelLoadError,
  type ModelLoadOptions,
} from "../model_io.ts";
import { toModuleUrl } from "../registry.ts";
import { type Tensor, type Tensor4D, tf, windowPads } from "../tensor.ts";
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

const { onnx } = onnxProto;

/** An ONNX `TensorProto` (the fields read; 64-bit integers may be `Long` objects). */
export interface TensorProto {
  /** Tensor name. */
  name: string;
  /** Dimensions. */
  dims: unknown[];
  /** `TensorProto.DataType` code. */
  dataType: number;
  /** Little-endian raw bytes (empty when a typed field holds the values). */
  rawData: Uint8Array;
  /** float values. */
  floatData: number[];
  /** int32 (and float16 bit pattern) values. */
  int32Data: number[];
  /** int64 values. */
  int64Data: unknown[];
  /** double values. */
  doubleData: number[];
  /** `TensorProto.DataLocation` code (1 = external file). */
  dataLocation: number;
  /** Where external data lives: `location`, `offset`, `length` entries. */
  externalData: { key: string; value: string }[];
}

/** An ONNX `AttributeProto` (the fields read). */
export interface AttributeProto {
  /** Attribute name. */
  name: string;
  /** `AttributeProto.AttributeType` code. */
  type: number;
  /** float value. */
  f: number;
  /** int value. */
  i: unknown;
  /** ints value. */
  ints: unknown[];
  /** floats value. */
  floats: number[];
  /** string value (bytes). */
  s: Uint8Array;
  /** tensor value. */
  t: TensorProto | null;
}

/** An ONNX `NodeProto` (the fields read). */
export interface NodeProto {
  /** Node name. */
  name: string;
  /** Op type, e.g. `Conv`. */
  opType: string;
  /** Input value names ("" for an omitted optional input). */
  input: string[];
  /** Output value names. */
  output: string[];
  /** Attributes. */
  attribute: AttributeProto[];
}

/** An ONNX `ValueInfoProto` (the fields read). */
export interface ValueInfoProto {
  /** Value name. */
  name: string;
  /** Its tensor type and shape. */
  type?: { tensorType?: { shape?: { dim?: { dimValue?: unknown }[] } } } | null;
}

/** An ONNX `GraphProto` (the fields read). */
export interface GraphProto {
  /** Nodes in topological order. */
  node: NodeProto[];
  /** Weights. */
  initializer: TensorProto[];
  /** Inputs (initializers may be listed too). */
  input: ValueInfoProto[];
  /** Outputs. */
  output: ValueInfoProto[];
}

/** The decoded `ModelProto` fields the front end reads. */
export interface ModelProto {
  /** The model's graph. */
  graph: GraphProto;
}

type AttrValue = number | number[] | string | TensorProto | undefined;

/** A constant of the graph (initializer or `Constant` output), in ONNX layout. */
interface Constant {
  readonly dims: number[];
  readonly data: Float32Array | Int32Array;
}

/** A loaded ONNX model: its decoded protobuf and where it came from. */
export class OnnxModel {
  /** The decoded `ModelProto`. */
  readonly proto: ModelProto;
  /** File name or URL, for messages. */
  readonly source: string;

  /** Wraps a decoded model. */
  constructor(proto: ModelProto, source: string) {
    this.proto = proto;
    this.source = source;
  }

  /** Decodes `.onnx` bytes (throws a one-line error when they are not an ONNX model). */
  static decode(bytes: Uint8Array, source = "model.onnx"): OnnxModel {
    let proto: ModelProto;
    try {
      proto = onnx.ModelProto.decode(bytes) as unknown as ModelProto;
    } catch (e) {
      throw new Error(`${source}: not an ONNX model (${(e as Error).message.split("\n")[0]})`);
    }
    if (!proto.graph || !proto.graph.node?.length) {
      throw new Error(`${source}: not an ONNX model (no graph)`);
    }
    return new OnnxModel(proto, source);
  }

  /** The input's dimensions `[N, C, H, W]` (0 where dynamic). */
  inputDims(): number[] {
    const g = this.proto.graph;
    const init = new Set(g.initializer.map((t) => t.name));
    const input = g.input.find((i) => !init.has(i.name));
    return (input?.type?.tensorType?.shape?.dim ?? []).map((d) => num(d.dimValue ?? 0) || 0);
  }

  /** Nothing to free: weights become tensors in the session that compiles the model. */
  dispose(): void {}
}

/** Largest `.onnx` file read (protobuf's limit: bigger models keep weights outside). */
const MAX_ONNX_BYTES = 2 ** 31;

/** Bytes per element of the `TensorProto.DataType` codes the front end reads. */
const ELEMENT_BYTES: Readonly<Record<number, number>> = { 1: 4, 6: 4, 7: 8, 10: 2, 11: 8 };

/**
 * Reads and decodes an `.onnx` file from a path or URL, with weights stored in external data
 * files next to it. The reliability rules of the tfjs loaders apply (`core/model_io.ts`):
 * only regular files, sizes checked before reading (an external file may hold no more than
 * its tensors need), and external data paths inside the model's folder unless
 * `opts.allowOutsideFolder`. Failures are one-line {@linkcode ModelLoadError}s naming the file.
 *
 * @example
 * ```ts
 * import { loadOnnxModel } from "./onnx.ts";
 * // const model = await loadOnnxModel("resnet18.onnx"); // then createSession(model)
 * ```
 */
export async function loadOnnxModel(
  pathOrUrl: string | URL,
  opts: ModelLoadOptions = {},
): Promise<OnnxModel> {
  const url = toModuleUrl(pathOrUrl);
  const name = displayName(url);
  const model = OnnxModel.decode(await fetchBytes(url, name, MAX_ONNX_BYTES), name);
  // Weights in external data files: what each file must hold, then each file read once.
  const external = model.proto.graph.initializer.filter((t) =>
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL
  );
  const spans = external.map((t) => {
    const entry = (key: string): string | undefined =>
      t.externalData.find((e) => e.key === key)?.value;
    const location = entry("location");
    if (!location) {
      throw new ModelLoadError(`${name}: tensor '${t.name}' has no external data location`);
    }
    const what = `${name}: external data '${location}'`;
    const fileUrl = companionUrl(url, location, what, opts);
    const count = (t.dims ?? []).map(num).reduce((a, b) => a * b, 1);
    const offset = Number(entry("offset") ?? 0);
    const length = entry("length") !== undefined
      ? Number(entry("length"))
      : count * (ELEMENT_BYTES[t.dataType] ?? 0);
    if (!(offset >= 0 && length >= 0)) {
      throw new ModelLoadError(
        `${what}: tensor '${t.name}' has offset ${offset}, length ${length}`,
      );
    }
    return { t, fileUrl, what, location, offset, length };
  });
  const need = new Map<string, number>();
  for (const s of spans) {
    need.set(s.fileUrl, Math.max(need.get(s.fileUrl) ?? 0, s.offset + s.length));
  }
  const files = new Map<string, Uint8Array>();
  for (const s of spans) {
    let data = files.get(s.fileUrl);
    if (!data) {
      data = await fetchBytes(s.fileUrl, s.what, need.get(s.fileUrl));
      files.set(s.fileUrl, data);
    }
    if (s.offset + s.length > data.length) {
      throw new ModelLoadError(
        `${s.what}: tensor '${s.t.name}' reads bytes ${s.offset}..${s.offset + s.length}, ` +
          `the file has ${data.length}`,
      );
    }
    s.t.rawData = data.subarray(s.offset, s.offset + s.length);
    s.t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }
  return model;
}

const num = (v: unknown): number => Number(typeof v === "object" && v !== null ? String(v) : v);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float16 bits to float32. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The values of a TensorProto (float types as float32, integer types as int32). */
function tensorValues(t: TensorProto, where: string): Constant {
  const dims = (t.dims ?? []).map(num);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const T = onnx.TensorProto.DataType;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new Error(`${where}: tensor '${t.name}' is stored in an external data file`);
  }
  switch (t.dataType) {
    case T.FLOAT: {
      // Aligned little-endian raw bytes are used in place (no copy of the weights).
      if (raw && LITTLE_ENDIAN && raw.byteOffset % 4 === 0 && raw.byteLength >= count * 4) {
        return { dims, data: new Float32Array(raw.buffer, raw.byteOffset, count) };
      }
      const out = new Float32Array(count);
      if (view) { for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true); }
      else out.set(t.floatData ?? []);
      return { dims, data: out };
    }
    case T.FLOAT16: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] = halfToFloat(view ? view.getUint16(i * 2, true) : num(t.int32Data?.[i]));
      }
      return { dims, data: out };
    }
    case T.DOUBLE: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] = view ? view.getFloat64(i * 8, true) : num(t.doubleData?.[i]);
      }
      return { dims, data: out };
    }
    case T.INT64: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] = view ? Number(view.getBigInt64(i * 8, true)) : num(t.int64Data?.[i]);
      }
      return { dims, data: out };
    }
    case T.INT32: {
      const out = new Int32Array(count);
      if (view) { for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true); }
      else out.set(t.int32Data ?? []);
      return { dims, data: out };
    }
    default:
      throw new Error(`${where}: tensor '${t.name}' has unsupported data type ${t.dataType}`);
  }
}

function attrValue(a: AttributeProto): AttrValue {
  const A = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case A.FLOAT:
      return a.f;
    case A.INT:
      return num(a.i);
    case A.INTS:
      return a.ints.map(num);
    case A.FLOATS:
      return a.floats;
    case A.STRING:
      return new TextDecoder().decode(a.s);
    case A.TENSOR:
      return a.t ?? undefined;
    default:
      return undefined;
  }
}

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

/** A value's NHWC shape at batch 1 (what compiling a node needs to know of its input). */
interface Shaped {
  readonly shape: number[];
  readonly rank: number;
}

/** A data value: the executable node producing it and its NHWC shape at batch 1. */
interface Value {
  readonly node: string;
  readonly probe: Shaped;
}

class OnnxCompiler {
  readonly owned: Tensor[] = [];
  /** Constants by value name, decoded when a node reads them (no decoded copy is kept). */
  readonly consts = new Map<string, TensorProto>();
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
    return tensorValues(c, this.#source);
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
    const x = data.length ? this.values.get(data[0])!.probe : undefined;
    const one = (...ops: Op[]) => {
      if (data.length !== 1) this.fail(n, name, `expected one data input, got ${data.length}`);
      this.emit(name, n, ops, data);
    };
    const spatial = (): Shaped => {
      if (!x || x.rank !== 4) this.fail(n, name, "needs a 4-D (N, C, H, W) input");
      return x;
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
      case "HardSigmoid":
        return one(...this.hardSigmoid(o, num(a.alpha ?? 0.2), num(a.beta ?? 0.5)));
      case "HardSwish": // x * HardSigmoid(x; 1/6, 1/2) = x * relu6(x + 3) / 6
        return one(activationOp(...o, "hard_silu"));
      case "Transpose": {
        const perm = (a.perm as number[] | undefined) ?? [];
        if (perm.some((p, i) => p !== i)) {
          this.fail(n, name, `perm [${perm}]: only the identity permutation is supported`);
        }
        return one(identityOp(...o));
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
        return one(this.flatten(o, x!));
      }
      case "Reshape": {
        const shape = Array.from(this.constant(n, name, 1, "shape").data);
        const flat = shape.length === 2 && (shape[1] === -1 || shape[0] === -1 || shape[0] === 0);
        if (!flat) this.fail(n, name, `reshape to [${shape}]: only [N, -1] is supported`);
        return one(this.flatten(o, x!));
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

  /** ONNX `HardSigmoid`: `clip(alpha x + beta, 0, 1)`, as an affine op and a clipped ReLU. */
  hardSigmoid(o: Origin, alpha: number, beta: number): Op[] {
    const [g, b] = [
      this.weight(new Float32Array([alpha]), []),
      this.weight(new Float32Array([beta]), []),
    ];
    return [affineOp(...o, { gamma: g, beta: b }), activationOp(...o, "relu", { maxValue: 1 })];
  }

  emit(name: string, n: NodeProto, ops: Op[], data: string[]): void {
    const ins = data.map((d) => this.values.get(d)!);
    // Output shape from a forward pass on zeros (only one node's tensors alive at a time).
    const shape = tf.tidy(() => {
      let cur = ins.map((v) => tf.zeros(v.probe.shape));
      for (const op of ops) cur = [op.forward(cur)];
      return cur[0].shape;
    });
    const probe = { shape, rank: shape.length };
    this.values.set(n.output[0], { node: name, probe });
    this.nodes.push({
      name,
      className: n.opType,
      inputs: ins.map((v) => v.node),
      outputShape: [null, ...probe.shape.slice(1)],
      ops,
      reducesResolution: ops.some(isStrided),
      hasKernel: ops.some((o) => KERNEL_KINDS.has(o.kind)),
    });
  }

  /** Padding of a window op: `same`/`valid` where they match, else explicit amounts. */
  windowPadding(
    n: NodeProto,
    name: string,
    a: Record<string, AttrValue>,
    x: Shaped,
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
    x: Shaped,
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
    // Layouts change in JS, so that only the converted kernel is ever a tensor.
    let kernel: Tensor;
    if (group === 1) {
      kernel = tf.tensor(permute(w.data, w.dims, [2, 3, 1, 0]), [kh, kw, cg, m]); // -> HWIO
    } else if (group === cin && cg === 1) {
      // Depthwise: output channel c * mult + j reads input channel c (-> HWCM).
      const mult = m / cin;
      kernel = tf.tensor(permute(w.data, [cin, mult, kh, kw], [2, 3, 0, 1]), [kh, kw, cin, mult]);
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
    x: Shaped,
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
  flatten(o: Origin, x: Shaped): Op {
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
    const [rows, cols] = w.dims;
    const kernel = transB
      ? tf.tensor(permute(w.data, w.dims, [1, 0]), [cols, rows])
      : tf.tensor(w.data, w.dims, "float32");
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

/** `data` of shape `dims` with its axes permuted (`out` axis k is `dims` axis `perm[k]`). */
function permute(
  data: Float32Array | Int32Array,
  dims: readonly number[],
  perm: readonly number[],
): Float32Array {
  const rank = dims.length;
  const stride = new Array<number>(rank).fill(1);
  for (let k = rank - 2; k >= 0; k--) stride[k] = stride[k + 1] * dims[k + 1];
  const outDims = perm.map((p) => dims[p]);
  const srcStride = perm.map((p) => stride[p]); // source step of each output axis
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    // Next output index, carrying from the last axis.
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]++;
      src += srcStride[k];
      if (idx[k] < outDims[k]) break;
      src -= srcStride[k] * outDims[k];
      idx[k] = 0;
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
    const probe = { shape: [1, hw[0], hw[1], c], rank: 4 };
    compiler.values.set(input.name, { node: input.name, probe });
    const names = nodeNames(g.node);
    g.node.forEach((n, i) => compiler.compile(n, names[i]));
    const out = compiler.values.get(g.output[0].name);
    if (!out) throw new Error(`${model.source}: output '${g.output[0].name}' is never computed`);
    const graph = buildGraph(input.name, [null, hw[0], hw[1], c], compiler.nodes, out.node);
    return { graph, owned: compiler.owned };
  } catch (e) {
    compiler.owned.forEach((t) => t.dispose());
    throw e;
  }
}
