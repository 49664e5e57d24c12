/**
 * Front ends: each compiles one kind of model into the executor's graph
 * ({@linkcode ModelGraph}), so that one executor ({@linkcode ModelSession}) runs every
 * method on every model. Built in: tfjs LayersModels (`readGraph` over `core/layer_ops.ts`),
 * tfjs GraphModels (`graph_model.ts`) and ONNX models (`onnx_model.ts` reads the file,
 * `onnx.ts` compiles it, NCHW converted to NHWC at load time). Another format plugs in with
 * {@linkcode registerFrontEnd}: it recognises its model objects and compiles them with the
 * op constructors of `core/frontends/ops.ts` (NHWC layouts, converted once at load time).
 *
 * @module
 */
import { type ModelGraph, readGraph } from "../graph.ts";
import { ModelSession } from "../session.ts";
import { type GraphModel, type LayersModel, type Tensor, tf } from "../tensor.ts";
import { compileGraphModel } from "./graph_model.ts";
import { compileOnnxModel } from "./onnx.ts";
import { OnnxModel } from "./onnx_model.ts";

export { type CompiledGraph, compileGraphModel, type GraphModelOptions } from "./graph_model.ts";
export { compileOnnxModel } from "./onnx.ts";
export {
  type AttributeProto,
  type GraphProto,
  loadOnnxModel,
  type ModelProto,
  type NodeProto,
  onnxFromBytes,
  OnnxModel,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx_model.ts";

/** Options every front end understands. */
export interface CompileOptions {
  /**
   * Input height and width for models whose input shape leaves them open; a model with a
   * fixed size must be given that size or none.
   */
  readonly inputSize?: readonly [number, number];
}

/** A model format the executor can run. */
export interface FrontEnd {
  /** Format name, for messages (`layers-model`, `graph-model`, ...). */
  readonly name: string;
  /** Whether `model` is a model object of this format. */
  accepts(model: object): boolean;
  /**
   * Compiles the model: the executable graph and the tensors created for it (owned by the
   * session, freed by its `dispose`).
   */
  compile(model: object, opts: CompileOptions): { graph: ModelGraph; owned: readonly Tensor[] };
  /** Whether the model's input size is open (then `inputSize` is needed). */
  dynamicInput?(model: object): boolean;
}

const layersFrontEnd: FrontEnd = {
  name: "layers-model",
  accepts: (model) => model instanceof tf.LayersModel,
  compile: (model, opts) => {
    const graph = readGraph(model as LayersModel);
    const [h, w] = [graph.inputShape[1], graph.inputShape[2]];
    if (opts.inputSize && (opts.inputSize[0] !== h || opts.inputSize[1] !== w)) {
      throw new Error(
        `input size ${opts.inputSize[0]}x${opts.inputSize[1]} does not fit the model's ` +
          `input ${h}x${w}`,
      );
    }
    return { graph, owned: [] };
  },
};

const graphFrontEnd: FrontEnd = {
  name: "graph-model",
  accepts: (model) => model instanceof tf.GraphModel,
  compile: (model, opts) => compileGraphModel(model as GraphModel, opts),
  dynamicInput: (model) => {
    const s = (model as GraphModel).inputs[0]?.shape ?? [];
    return !(Number(s[1]) > 0 && Number(s[2]) > 0);
  },
};

const onnxFrontEnd: FrontEnd = {
  name: "onnx",
  accepts: (model) => model instanceof OnnxModel,
  compile: (model, opts) => compileOnnxModel(model as OnnxModel, opts),
  dynamicInput: (model) => {
    const [h, w] = (model as OnnxModel).inputDims().slice(2);
    return !(h > 0 && w > 0);
  },
};

const frontEnds: FrontEnd[] = [layersFrontEnd, graphFrontEnd, onnxFrontEnd];

/** Adds a front end (tried before the built-in ones). */
export function registerFrontEnd(frontEnd: FrontEnd): void {
  frontEnds.unshift(frontEnd);
}

/** The front end that accepts `model`; throws when none does. */
export function frontEndOf(model: object): FrontEnd {
  const fe = frontEnds.find((f) => f.accepts(model));
  if (!fe) {
    throw new Error(
      `not a model the executor can run (known formats: ${
        frontEnds.map((f) => f.name).join(", ")
      })`,
    );
  }
  return fe;
}

/**
 * Compiles a model (LayersModel, GraphModel, or any registered format) into a
 * {@linkcode ModelSession}. Call the session's `dispose` when disposing the model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend, loadLayersModel } from "../../mod.ts";
 * import { tf } from "../tf.ts";
 * import { BUILTIN_MODELS } from "../../models/builtin.ts";
 * import { createSession } from "./mod.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const session = createSession(await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl));
 * const x = tf.zeros([2, 128, 128, 3]) as tf.Tensor4D;
 * const scores = session.predict(x); // the logits
 * assert.deepEqual(scores.shape, [2, 10]);
 * tf.dispose([x, scores]);
 * session.dispose();
 * ```
 */
export function createSession(
  model: LayersModel | GraphModel | object,
  opts: CompileOptions = {},
): ModelSession {
  const { graph, owned } = frontEndOf(model).compile(model, opts);
  return new ModelSession(graph, { owned });
}
