/**
 * gradual: explain what a convolutional image classifier looks at, in TypeScript, on
 * TensorFlow.js (WASM or CPU), with no Python and no GPU.
 *
 * Methods (Grad-CAM, excitation backprop, c-EB, ...) and extrapolators (gradual
 * extrapolation) are plugins in a registry; {@linkcode explain} is the one entry point.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explain, initBackend, loadLayersModel, type Tensor4D } from "@gradual/saliency";
 * import { tf } from "@gradual/saliency/tf";
 *
 * await initBackend({ backend: "wasm" });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const x = tf.zeros([1, 128, 128, 3]) as Tensor4D; // a preprocessed image batch
 * const [e] = await explain(model, x, { method: "grad-cam", extrapolator: "gradual" });
 * x.dispose();
 * assert.deepEqual([e.width, e.height, e.map.length], [128, 128, 128 * 128]); // input size
 * assert.ok(e.classIndex >= 0 && e.classIndex < 10); // top-1 of the 10 shape classes
 * ```
 *
 * @module
 */
import "./plugins/mod.ts";

export * from "./core/types.ts";
export {
  as4d,
  channelSum,
  type GraphModel,
  type LayersModel,
  maxPoolInputGrad,
  minMaxPerImage,
  resizeMaps,
  type Tensor,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  type Tensor4D,
  windowPads,
} from "./core/tensor.ts";
export * from "./core/graph.ts";
export type { Op, OpKind, OpParams } from "./core/layer_ops.ts";
export * from "./core/session.ts";
export * from "./core/targets.ts";
export * from "./core/registry.ts";
export * from "./core/options.ts";
export * from "./core/model_io.ts";
export * from "./core/explain.ts";
export * from "./backend/mod.ts";
export * from "./plugins/mod.ts";
export * from "./core/frontends/mod.ts";
export * from "./io/mod.ts";
export * from "./render/colormap.ts";
export * from "./render/compose.ts";
export * from "./plugins/cam_base.ts";
export {
  type ChannelReduction,
  gradientAtLayer,
  type InputGradientDefinition,
  inputGradientMethod,
  type InputGradientOptions,
  inputLayer,
  reduceChannels,
  REDUCTIONS,
  tiledTargets,
} from "./plugins/gradient.ts";
export * from "./metrics/mod.ts";
