/**
 * Test helper: writes a tfjs LayersModel (Sequential or functional DAG) as a tfjs GraphModel
 * (`format: graph-model`, a GraphDef of Placeholder, Const and TensorFlow op nodes), the way
 * `tensorflowjs_converter` writes a SavedModel or frozen Keras model. No Python converter is
 * needed, and the GraphModel has exactly the LayersModel's weights.
 *
 * Layer classes and the nodes they become:
 * - `Conv2D` / `DepthwiseConv2D` / `Dense`: `Conv2D` / `DepthwiseConv2dNative` / `MatMul`
 *   (`<layer>/Conv2D`) then `BiasAdd`; with `fuse`, one `_FusedConv2D` /
 *   `FusedDepthwiseConv2dNative` / `_FusedMatMul` with the bias and the activation fused.
 *   An activation that is not fused is a node of its own named after the layer (the
 *   `BiasAdd` is then `<layer>/BiasAdd`); `swish` is `Sigmoid` then `Mul`, as TF writes it.
 * - `BatchNormalization`: `FusedBatchNormV3`; `Add`: `AddV2`; `Multiply`: `Mul`;
 *   `Concatenate`: `ConcatV2`; `MaxPooling2D` / `AveragePooling2D`: `MaxPool` / `AvgPool`;
 *   `GlobalAveragePooling2D`: `Mean` over axes 1 and 2; `ZeroPadding2D`: `Pad`;
 *   `Flatten` / `Reshape`: `Reshape` (a dynamic model's `Flatten` reshapes to
 *   `Pack(StridedSlice(Shape(x)), -1)`, as Keras writes it); `Activation` / `ReLU`: `Relu`,
 *   `Relu6`, `Sigmoid`, ...
 * The model output gets a `Softmax` node (unless the last layer ends in one) and an
 * `Identity` output node.
 *
 * @module
 */
import { tf } from "../core/tensor.ts";

const b64 = (s: string): string => btoa(s);
const ints = (xs: number[]) => ({ list: { i: xs.map(String) } });
const str = (s: string) => ({ s: b64(s) });
const float = { type: "DT_FLOAT" };

/** Options of {@linkcode toGraphModel}. */
export interface GraphModelWriteOptions {
  /** Fuse bias and activation into `_FusedConv2D` / `_FusedMatMul` nodes. */
  fuse?: boolean;
  /** Write the input shape as `[-1, -1, -1, C]` (a dynamic SavedModel signature). */
  dynamic?: boolean;
  /** Normalise the input first, `(x - mean) / std` per channel, as `Sub` and `RealDiv` nodes. */
  normalize?: { mean: number[]; std: number[] };
}

const TF_ACTIVATIONS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  elu: "Elu",
  softmax: "Softmax",
};

/** GraphModel artifacts (model.json object and weight bytes) for a LayersModel. */
export function toGraphModel(model: tf.LayersModel, opts: GraphModelWriteOptions = {}): {
  json: Record<string, unknown>;
  weights: Uint8Array;
} {
  const [, h, w, c] = model.inputs[0].shape as number[];
  const inShape = opts.dynamic ? [-1, -1, -1, c] : [-1, h, w, c];
  const dims = (s: number[]) => ({ dim: s.map((d) => ({ size: String(d) })) });
  const inputName = model.inputs[0].sourceLayer.name;
  const nodes: Record<string, unknown>[] = [{
    name: inputName,
    op: "Placeholder",
    attr: { dtype: float, shape: { shape: dims(inShape) } },
  }];
  const specs: { name: string; shape: number[]; dtype: string }[] = [];
  const chunks: Uint8Array[] = [];
  const constant = (name: string, t: tf.Tensor, dtype: "float32" | "int32" = "float32"): string => {
    const dt = dtype === "int32" ? "DT_INT32" : "DT_FLOAT";
    nodes.push({
      name,
      op: "Const",
      attr: { value: { tensor: { dtype: dt, tensorShape: dims(t.shape) } }, dtype: { type: dt } },
    });
    specs.push({ name, shape: t.shape, dtype });
    const data = dtype === "int32" ? new Int32Array(t.dataSync()) : new Float32Array(t.dataSync());
    chunks.push(new Uint8Array(data.buffer.slice(0)));
    return name;
  };
  const intConst = (name: string, values: number[], shape = [values.length]): string => {
    const t = tf.tensor(values, shape, "int32");
    constant(name, t, "int32");
    t.dispose();
    return name;
  };
  const node = (name: string, op: string, input: string[], attr: Record<string, unknown> = {}) => {
    nodes.push({ name, op, input, attr: { T: float, ...attr } });
    return name;
  };
  /** Emits activation `act` of `x` as node(s) ending in `name`. */
  const activate = (name: string, act: string, x: string): string => {
    if (act === "swish") {
      const s = node(`${name}/Sigmoid`, "Sigmoid", [x]);
      return node(name, "Mul", [x, s]);
    }
    const op = TF_ACTIVATIONS[act];
    if (!op) throw new Error(`toGraphModel: activation ${act} not handled`);
    return node(name, op, [x]);
  };
  const windowAttrs = (cfg: Record<string, unknown>) => {
    const s = (cfg.strides ?? [1, 1]) as number[];
    return {
      strides: ints([1, s[0], s[1], 1]),
      padding: str(String(cfg.padding ?? "valid").toUpperCase()),
      data_format: str("NHWC"),
    };
  };
  const outName = new Map<string, string>();
  outName.set(inputName, inputName);
  let last = inputName;
  if (opts.normalize) {
    const m = tf.tensor1d(opts.normalize.mean), sd = tf.tensor1d(opts.normalize.std);
    const sub = node("normalize/sub", "Sub", [inputName, constant("normalize/mean", m)]);
    last = node("normalize/div", "RealDiv", [sub, constant("normalize/std", sd)]);
    tf.dispose([m, sd]);
    outName.set(inputName, last);
  }
  let endsInSoftmax = false;
  for (const l of model.layers) {
    const cls = l.getClassName();
    if (cls === "InputLayer") continue;
    const cfg = l.getConfig() as Record<string, unknown>;
    const n = l.name;
    // deno-lint-ignore no-explicit-any
    const inbound = (l as any).inboundNodes[0].inboundLayers as tf.layers.Layer[];
    const ins = inbound.map((x) => outName.get(x.name)!);
    const x = ins[0];
    let out: string;
    const act = typeof cfg.activation === "string" ? cfg.activation : "linear";
    endsInSoftmax = act === "softmax" || (cls === "Activation" && cfg.activation === "softmax");
    if (cls === "Conv2D" || cls === "DepthwiseConv2D" || cls === "Dense") {
      const [k, bias] = l.getWeights();
      const kn = constant(`${n}/kernel`, k);
      const bn = bias ? constant(`${n}/bias`, bias) : undefined;
      const dil = (cfg.dilationRate ?? [1, 1]) as number[];
      const attrs: Record<string, unknown> = cls === "Dense"
        ? { transpose_a: { b: false }, transpose_b: { b: false } }
        : { ...windowAttrs(cfg), dilations: ints([1, dil[0], dil[1], 1]) };
      const plain = { Conv2D: "Conv2D", DepthwiseConv2D: "DepthwiseConv2dNative", Dense: "MatMul" }[
        cls
      ];
      const fused = {
        Conv2D: "_FusedConv2D",
        DepthwiseConv2D: "FusedDepthwiseConv2dNative",
        Dense: "_FusedMatMul",
      }[cls];
      const fusable = act === "linear" || (act in TF_ACTIVATIONS && act !== "softmax");
      if (opts.fuse && bn && fusable) {
        const ops = act === "linear" ? ["BiasAdd"] : ["BiasAdd", TF_ACTIVATIONS[act]];
        out = node(n, fused, [x, kn, bn], {
          ...attrs,
          fused_ops: { list: { s: ops.map(b64) } },
          num_args: { i: "1" },
          epsilon: { f: 0 },
        });
      } else {
        const linName = act === "linear" ? n : `${n}/BiasAdd`;
        const lin = node(bn ? `${n}/${plain}` : linName, plain, [x, kn], attrs);
        out = bn ? node(linName, "BiasAdd", [lin, bn], { data_format: str("NHWC") }) : lin;
        if (act !== "linear") out = activate(n, act, out);
      }
    } else if (cls === "BatchNormalization") {
      // deno-lint-ignore no-explicit-any
      const names: string[] = l.weights.map((v: any) => v.originalName as string);
      const vals = l.getWeights();
      const get = (suffix: string): string => {
        const i = names.findIndex((s) => s.endsWith(suffix));
        return constant(`${n}/${suffix}`, vals[i]);
      };
      const inputs = [x, get("gamma"), get("beta"), get("moving_mean"), get("moving_variance")];
      out = node(n, "FusedBatchNormV3", inputs, {
        epsilon: { f: Number(cfg.epsilon ?? 1e-3) },
        data_format: str("NHWC"),
        is_training: { b: false },
        U: float,
      });
    } else if (cls === "Activation") {
      out = activate(n, String(cfg.activation), x);
    } else if (cls === "ReLU") {
      out = node(n, cfg.maxValue === 6 ? "Relu6" : "Relu", [x]);
    } else if (cls === "MaxPooling2D" || cls === "AveragePooling2D") {
      const p = cfg.poolSize as number[];
      out = node(n, cls === "MaxPooling2D" ? "MaxPool" : "AvgPool", [x], {
        ksize: ints([1, p[0], p[1], 1]),
        ...windowAttrs(cfg),
      });
    } else if (cls === "GlobalAveragePooling2D") {
      const axes = intConst(`${n}/axes`, [1, 2]);
      out = node(n, "Mean", [x, axes], { keep_dims: { b: false }, Tidx: { type: "DT_INT32" } });
    } else if (cls === "ZeroPadding2D") {
      const p = cfg.padding as number[][];
      const pads = intConst(`${n}/paddings`, [0, 0, p[0][0], p[0][1], p[1][0], p[1][1], 0, 0], [
        4,
        2,
      ]);
      out = node(n, "Pad", [x, pads], { Tpaddings: { type: "DT_INT32" } });
    } else if (cls === "Flatten" && opts.dynamic) {
      // Keras' Flatten with an unknown batch size: reshape to (shape(x)[0], -1).
      const shape = node(`${n}/Shape`, "Shape", [x], { out_type: { type: "DT_INT32" } });
      const slice = node(`${n}/strided_slice`, "StridedSlice", [
        shape,
        intConst(`${n}/begin`, [0]),
        intConst(`${n}/end`, [1]),
        intConst(`${n}/strides`, [1]),
      ], { shrink_axis_mask: { i: "1" }, Index: { type: "DT_INT32" } });
      const rest = intConst(`${n}/rest`, [-1], []);
      const pack = node(`${n}/shape`, "Pack", [slice, rest], { N: { i: "2" }, axis: { i: "0" } });
      out = node(n, "Reshape", [x, pack], { Tshape: { type: "DT_INT32" } });
    } else if (cls === "Flatten" || cls === "Reshape") {
      const target = cls === "Flatten"
        ? [(l.outputShape as number[])[1]]
        : (cfg.targetShape as number[]);
      const shape = intConst(`${n}/shape`, [-1, ...target]);
      out = node(n, "Reshape", [x, shape], { Tshape: { type: "DT_INT32" } });
    } else if (cls === "Add") {
      out = node(n, "AddV2", ins);
    } else if (cls === "Multiply") {
      out = node(n, "Mul", ins);
    } else if (cls === "Concatenate") {
      const axis = intConst(`${n}/axis`, [Number(cfg.axis ?? -1)]);
      out = node(n, "ConcatV2", [...ins, axis], {
        N: { i: String(ins.length) },
        Tidx: { type: "DT_INT32" },
      });
    } else {
      throw new Error(`toGraphModel: layer class ${cls} not handled`);
    }
    outName.set(n, out);
    last = out;
  }
  if (!endsInSoftmax) last = node("probs", "Softmax", [last]);
  node("Identity", "Identity", [last]);
  const total = chunks.reduce((a, b) => a + b.length, 0);
  const weights = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    weights.set(ch, off);
    off += ch.length;
  }
  const json = {
    format: "graph-model",
    generatedBy: "gradual tests",
    convertedBy: "tests/_graph_model.ts",
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: specs }],
    signature: {
      inputs: {
        [inputName]: { name: `${inputName}:0`, dtype: "DT_FLOAT", tensorShape: dims(inShape) },
      },
      outputs: { output: { name: "Identity:0", dtype: "DT_FLOAT" } },
    },
  };
  return { json, weights };
}

/** Writes a LayersModel as a GraphModel into `dir` (model.json and one shard). */
export async function writeGraphModel(
  model: tf.LayersModel,
  dir: string,
  opts: GraphModelWriteOptions = {},
): Promise<string> {
  const { json, weights } = toGraphModel(model, opts);
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
  await Deno.writeFile(`${dir}/group1-shard1of1.bin`, weights);
  return `${dir}/model.json`;
}
