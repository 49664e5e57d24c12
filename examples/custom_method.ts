/**
 * A custom saliency method in a few lines: "Abs-Grad-CAM" weights each channel by the mean
 * ABSOLUTE gradient instead of the signed mean. The CAM base captures the activations A and
 * gradients G from one forward and one backward pass; the method only combines them.
 *
 * Load it with `deno task cli explain img.png --plugin examples/custom_method.ts
 * --method abs-grad-cam`, or `await registry.load("examples/custom_method.ts")`.
 *
 * @module
 */
import { camMethod, type SaliencyMethod, weightedChannelSum } from "../mod.ts";
import { tf } from "../core/tf.ts"; // outside this repo: "@gradual/saliency/tf"

/** Abs-Grad-CAM: channel weights = spatial mean of |dScore/dA|. */
const absGradCam: SaliencyMethod = camMethod({
  name: "abs-grad-cam",
  description: "Grad-CAM with channel weights from the mean absolute gradient",
  combine: (a, g) => tf.tidy(() => weightedChannelSum(a, g!.abs().mean([1, 2]))),
});

export default absGradCam;
