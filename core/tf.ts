/**
 * The TensorFlow.js namespace gradual runs on (`@tensorflow/tfjs` 4.22, the package's own
 * instance). Plugins and callers that build tensors must use this instance so that tensors,
 * backends and kernels are shared: `import { tf } from "@gradual/saliency/tf"`.
 *
 * @module
 */
export { tf } from "./tensor.ts";
