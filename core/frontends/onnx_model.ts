/**
 * Reading ONNX files: the `ModelProto` decoded with the `onnx-proto` package's generated
 * ONNX schema (no hand-written decoder), weights from the file (raw bytes or typed fields;
 * float32, float16, float64 and integer types) or from external data files next to it, and
 * attribute values. The compilation into the executor's graph is `onnx.ts`.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import {
  companionUrl,
  displayName,
  fetchBytes,
  ModelLoadError,
  type ModelLoadOptions,
} from "../model_io.ts";
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
 * import assert from "node:assert/strict";
 * import { createSession, initBackend } from "../../mod.ts";
 * import { loadOnnxModel } from "./onnx_model.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadOnnxModel("tests/fixtures/onnx/resnet_tiny.onnx"); // a torch.onnx export
 * const session = createSession(model);
 * assert.deepEqual(session.inputSize, [64, 64, 3]); // NHWC, converted from NCHW at load time
 * assert.ok(session.graph.nodes.some((n) => n.name === "layer1.0.conv1")); // PyTorch's names
 * session.dispose();
 * ```
 */
export async function loadOnnxModel(
  pathOrUrl: string | URL,
  opts: ModelLoadOptions = {},
): Promise<OnnxModel> {
  const url = toModuleUrl(pathOrUrl);
  const name = displayName(url);
  const model = OnnxModel.decode(await fetchBytes(url, name, MAX_ONNX_BYTES), name);
  await attachExternalData(
    model,
    (location, what, need) => fetchBytes(companionUrl(url, location, what, opts), what, need),
  );
  return model;
}

/**
 * Decodes an `.onnx` model given as bytes, with its external data files given by name (the
 * browser playground's dropped files). A missing file is a {@linkcode ModelLoadError}.
 */
export async function onnxFromBytes(
  bytes: Uint8Array,
  files: ReadonlyMap<string, Uint8Array>,
  name = "model.onnx",
): Promise<OnnxModel> {
  const model = OnnxModel.decode(bytes, name);
  await attachExternalData(model, (location, what, need) => {
    const data = files.get(location.split("/").pop() ?? location);
    if (!data) throw new ModelLoadError(`${what}: not among the given files`);
    if (data.length > need) {
      throw new ModelLoadError(`${what}: ${data.length} bytes, more than the ${need} expected`);
    }
    return Promise.resolve(data);
  });
  return model;
}

/**
 * Points the model's external initializers at their bytes: what each file must hold is
 * computed first, then `read(location, what, need)` gives each file once (`need`: the most
 * bytes its tensors use).
 */
async function attachExternalData(
  model: OnnxModel,
  read: (location: string, what: string, need: number) => Promise<Uint8Array>,
): Promise<void> {
  const name = model.source;
  const spans = model.proto.graph.initializer.filter((t) =>
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL
  ).map((t) => {
    const entry = (key: string): string | undefined =>
      t.externalData.find((e) => e.key === key)?.value;
    const location = entry("location");
    if (!location) {
      throw new ModelLoadError(`${name}: tensor '${t.name}' has no external data location`);
    }
    const count = (t.dims ?? []).map(num).reduce((a, b) => a * b, 1);
    const offset = Number(entry("offset") ?? 0);
    const length = entry("length") !== undefined
      ? Number(entry("length"))
      : count * (ELEMENT_BYTES[t.dataType] ?? 0);
    const what = `${name}: external data '${location}'`;
    if (!(offset >= 0 && length >= 0)) {
      throw new ModelLoadError(
        `${what}: tensor '${t.name}' has offset ${offset}, length ${length}`,
      );
    }
    return { t, location, what, offset, length };
  });
  const need = new Map<string, number>();
  for (const s of spans) {
    need.set(s.location, Math.max(need.get(s.location) ?? 0, s.offset + s.length));
  }
  const files = new Map<string, Uint8Array>();
  for (const s of spans) {
    let data = files.get(s.location);
    if (!data) {
      data = await read(s.location, s.what, need.get(s.location)!);
      files.set(s.location, data);
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
        // Clamped to int32 (exporters write INT64_MAX / MIN as "to the end" in slices).
        const v = view ? Number(view.getBigInt64(i * 8, true)) : num(t.int64Data?.[i]);
        out[i] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v));
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
