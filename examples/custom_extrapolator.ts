/**
 * A custom extrapolator: "upsample" resizes any method's map to the input resolution with
 * plain bilinear interpolation and scales it to [0, 1]: the baseline gradual extrapolation
 * should beat. It needs no activations, so it asks the forward pass to record nothing.
 *
 * Load it with `--plugin examples/custom_extrapolator.ts --extrapolate upsample`, or
 * `await registry.load("examples/custom_extrapolator.ts")`.
 *
 * @module
 */
import {
  type Extrapolator,
  minMaxPerImage,
  PLUGIN_API_VERSION,
  resizeMaps,
  type SaliencyMaps,
} from "../mod.ts";
import { tf } from "../core/tf.ts"; // outside this repo: "@gradual/saliency/tf"

/** Bilinear upsampling to the input size, then per-image min-max. */
const upsample: Extrapolator = {
  kind: "extrapolator",
  apiVersion: PLUGIN_API_VERSION,
  name: "upsample",
  description: "plain bilinear upsampling to the input resolution (a baseline)",
  requires: () => ({}),
  refine(maps, ctx): SaliencyMaps {
    const [h, w] = ctx.session.inputSize;
    const out = tf.tidy(() => minMaxPerImage(resizeMaps(maps.maps, h, w)));
    return {
      ...maps,
      maps: out,
      method: `${maps.method}+upsample`,
      layer: "input",
      resolution: [h, w],
      normalized: true,
    };
  },
};

export default upsample;
