/**
 * gradual: explain what a convolutional image classifier looks at, in TypeScript, on
 * TensorFlow.js (WASM or CPU), with no Python and no GPU.
 *
 * Methods (Grad-CAM, excitation backprop, c-EB, ...) and extrapolators (gradual
 * extrapolation) are plugins in a registry; {@linkcode explain} is the one entry point.
 *
 * @example
 * ```ts
 * import { explain, initBackend, loadLayersModel, tf } from "@gradual/saliency";
 *
 * await initBackend({ backend: "wasm" });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const x = tf.zeros([1, 128, 128, 3]) as tf.Tensor4D; // a preprocessed image batch
 * const [e] = await explain(model, x, { method: "grad-cam", extrapolator: "gradual" });
 * console.log(e.className, e.width, e.height, e.map.length);
 * x.dispose();
 * ```
 *
 * @module
 */
import "./plugins/mod.ts";

export * from "./core/types.ts";
export * from "./core/tensor.ts";
export * from "./core/graph.ts";
export * from "./core/layer_ops.ts";
export * from "./core/session.ts";
export * from "./core/targets.ts";
export * from "./core/registry.ts";
export * from "./core/model_io.ts";
export * from "./core/explain.ts";
export * from "./core/backend.ts";
export * from "./plugins/mod.ts";
export * from "./core/graph_session.ts";
export * from "./core/image.ts";
export * from "./core/npy.ts";
export * from "./render/colormap.ts";
export * from "./render/compose.ts";
export * from "./plugins/cam_base.ts";
