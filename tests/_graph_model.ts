/**
 * Test helper: writes a plain Sequential conv net (Conv2D / Activation relu / MaxPooling2D /
 * Flatten / Dense) as a tfjs GraphModel (`format: graph-model`, a GraphDef of Placeholder,
 * Const, Conv2D, BiasAdd, Relu, MaxPool, Reshape, MatMul and Softmax nodes), the way the
 * tfjs converter writes a frozen Keras model. No Python converter is needed.
 *
 * @module
 */
import { tf } from "../core/tensor.ts";

const b64 = (s: string): string => btoa(s);
const ints = (xs: number[]) => ({ list: { i: xs.map(String) } });
const float = { type: "DT_FLOAT" };

/** GraphModel artifacts (model.json object and weight bytes) for a Sequential conv net. */
export function toGraphModel(model: tf.LayersModel): {
  json: Record<string, unknown>;
  weights: Uint8Array;
} {
  const [, h, w, c] = model.inputs[0].shape as number[];
  const nodes: Record<string, unknown>[] = [{
    name: "input",
    op: "Placeholder",
    attr: {
      dtype: float,
      shape: { shape: { dim: [-1, h, w, c].map((s) => ({ size: String(s) })) } },
    },
  }];
  const specs: { name: string; shape: number[]; dtype: string }[] = [];
  const chunks: Uint8Array[] = [];
  const constant = (name: string, t: tf.Tensor, dtype: "float32" | "int32" = "float32"): string => {
    nodes.push({
      name,
      op: "Const",
      attr: {
        value: {
          tensor: {
            dtype: dtype === "int32" ? "DT_INT32" : "DT_FLOAT",
            tensorShape: { dim: t.shape.map((s) => ({ size: String(s) })) },
          },
        },
        dtype: { type: dtype === "int32" ? "DT_INT32" : "DT_FLOAT" },
      },
    });
    specs.push({ name, shape: t.shape, dtype });
    const data = dtype === "int32" ? new Int32Array(t.dataSync()) : new Float32Array(t.dataSync());
    chunks.push(new Uint8Array(data.buffer.slice(0)));
    return name;
  };
  let prev = "input";
  for (const l of model.layers) {
    const cls = l.getClassName();
    const cfg = l.getConfig() as Record<string, unknown>;
    const n = l.name;
    if (cls === "Conv2D") {
      const [k, bias] = l.getWeights();
      const kn = constant(`${n}/kernel`, k);
      const bn = constant(`${n}/bias`, bias);
      const s = cfg.strides as number[];
      nodes.push({
        name: `${n}/Conv2D`,
        op: "Conv2D",
        input: [prev, kn],
        attr: {
          T: float,
          strides: ints([1, s[0], s[1], 1]),
          padding: { s: b64(String(cfg.padding).toUpperCase()) },
          data_format: { s: b64("NHWC") },
          dilations: ints([1, 1, 1, 1]),
        },
      });
      nodes.push({
        name: n,
        op: "BiasAdd",
        input: [`${n}/Conv2D`, bn],
        attr: { T: float, data_format: { s: b64("NHWC") } },
      });
    } else if (cls === "Activation") {
      nodes.push({ name: n, op: "Relu", input: [prev], attr: { T: float } });
    } else if (cls === "MaxPooling2D") {
      const p = cfg.poolSize as number[];
      const s = cfg.strides as number[];
      nodes.push({
        name: n,
        op: "MaxPool",
        input: [prev],
        attr: {
          T: float,
          ksize: ints([1, p[0], p[1], 1]),
          strides: ints([1, s[0], s[1], 1]),
          padding: { s: b64(String(cfg.padding).toUpperCase()) },
          data_format: { s: b64("NHWC") },
        },
      });
    } else if (cls === "Flatten") {
      const shape = tf.tensor1d([-1, (l.outputShape as number[])[1]], "int32");
      const sn = constant(`${n}/shape`, shape, "int32");
      shape.dispose();
      nodes.push({
        name: n,
        op: "Reshape",
        input: [prev, sn],
        attr: { T: float, Tshape: { type: "DT_INT32" } },
      });
    } else if (cls === "Dense") {
      const [k, bias] = l.getWeights();
      const kn = constant(`${n}/kernel`, k);
      const bn = constant(`${n}/bias`, bias);
      nodes.push({
        name: `${n}/MatMul`,
        op: "MatMul",
        input: [prev, kn],
        attr: { T: float, transpose_a: { b: false }, transpose_b: { b: false } },
      });
      nodes.push({
        name: n,
        op: "BiasAdd",
        input: [`${n}/MatMul`, bn],
        attr: { T: float, data_format: { s: b64("NHWC") } },
      });
    } else {
      throw new Error(`toGraphModel: layer class ${cls} not handled`);
    }
    prev = n;
  }
  nodes.push({ name: "probs", op: "Softmax", input: [prev], attr: { T: float } });
  nodes.push({ name: "Identity", op: "Identity", input: ["probs"], attr: { T: float } });
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
        input: {
          name: "input:0",
          dtype: "DT_FLOAT",
          tensorShape: { dim: [-1, h, w, c].map((s) => ({ size: String(s) })) },
        },
      },
      outputs: { output: { name: "Identity:0", dtype: "DT_FLOAT" } },
    },
  };
  return { json, weights };
}
