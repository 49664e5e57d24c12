/**
 * Reading ONNX files: the `ModelProto` decoded with the `onnx-proto` package's generated
 * ONNX schema (no hand-written decoder), weights from the file (raw bytes or typed fields;
 * float32, float16, float64 and integer types) or from external data files next to it, and
 * attribute values. The compilation into the executor's graph is `onnx.ts`.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import { toModuleUrl } from "../registry.ts";
import type { Tensor } from "../tensor.ts";

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

/** A decoded attribute value. */
export type AttrValue = number | number[] | string | TensorProto | undefined;

/** A constant of the graph (initializer or `Constant` output), in ONNX layout. */
export interface Constant {
  /** Dimensions (ONNX layout). */
  readonly dims: number[];
  /** Values, float types as float32, integer types as int32. */
  readonly data: Float32Array | Int32Array;
}

/**
 * A loaded ONNX model: its decoded protobuf and where it came from. Its weights become
 * tensors when a session compiles it; `dispose` frees them (as a tfjs model's `dispose`).
 */
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

  /** Weight tensors of the sessions compiled from this model. */
  readonly #owned: Tensor[][] = [];

  /** @internal Records the weight tensors a compilation made (freed by `dispose`). */
  adopt(tensors: Tensor[]): void {
    this.#owned.push(tensors);
  }

  /** Frees the weight tensors of every session compiled from this model. */
  dispose(): void {
    for (const list of this.#owned) for (const t of list) if (!t.isDisposed) t.dispose();
    this.#owned.length = 0;
  }
}

/** Reads and decodes an `.onnx` file from a path or URL. */
export async function loadOnnxModel(pathOrUrl: string | URL): Promise<OnnxModel> {
  const url = toModuleUrl(pathOrUrl);
  const display = (u: string): string =>
    u.startsWith("file://") ? decodeURIComponent(new URL(u).pathname) : u;
  const name = display(url);
  const read = async (u: string, what: string): Promise<Uint8Array> => {
    try {
      const res = await fetch(u);
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new Error(`${what}: cannot read (${(e as Error).message.split("\n")[0]})`);
    }
  };
  const model = OnnxModel.decode(await read(url, name), name);
  // Weights in external data files (next to the model): read each file once.
  const files = new Map<string, Uint8Array>();
  for (const t of model.proto.graph.initializer) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = (key: string): string | undefined =>
      t.externalData.find((e) => e.key === key)?.value;
    const location = entry("location");
    if (!location) throw new Error(`${name}: tensor '${t.name}' has no external data location`);
    const fileUrl = new URL(location, url).href;
    let data = files.get(fileUrl);
    if (!data) {
      data = await read(fileUrl, `${name}: external data '${location}'`);
      files.set(fileUrl, data);
    }
    const offset = Number(entry("offset") ?? 0);
    const length = entry("length") !== undefined ? Number(entry("length")) : data.length - offset;
    if (offset + length > data.length) {
      throw new Error(
        `${name}: tensor '${t.name}' reads bytes ${offset}..${offset + length} of ` +
          `'${location}', which has ${data.length}`,
      );
    }
    t.rawData = data.subarray(offset, offset + length);
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }
  return model;
}

/** A number from a protobuf scalar (64-bit integers may be `Long` objects). */
export const num = (v: unknown): number =>
  Number(typeof v === "object" && v !== null ? String(v) : v);

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
export function tensorValues(t: TensorProto, where: string): Constant {
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

/** The value of an attribute (ints, floats, string, tensor). */
export function attrValue(a: AttributeProto): AttrValue {
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
