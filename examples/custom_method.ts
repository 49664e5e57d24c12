/**
 * A custom saliency method in a few lines: "Abs-Grad-CAM" weights each channel by the mean
 * ABSOLUTE gradient (raised to the option `power`, default 1) instead of the signed mean.
 * The CAM base captures the activations A and gradients G from one forward and one backward
 * pass; the method only combines them. It declares its one option, so `--opt
 * abs-grad-cam.power=2` is checked before any image is read and `combine` receives a number.
 *
 * Load it with `deno task cli explain img.png --plugin examples/custom_method.ts
 * --method abs-grad-cam`, or `await registry.load("examples/custom_method.ts")`.
 *
 * @module
 */
import { camMethod, type SaliencyMethod, weightedChannelSum } from "../mod.ts";
import { tf } from "../core/tf.ts"; // outside this repo: "@gradual/saliency/tf"

/** Abs-Grad-CAM: channel weights = spatial mean of |dScore/dA| ** power. */
const absGradCam: SaliencyMethod = camMethod({
  name: "abs-grad-cam",
  description: "Grad-CAM with channel weights from the mean absolute gradient",
  options: {
    power: { type: "number", above: 0, default: 1, doc: "exponent of |gradient|" },
  },
  combine: (a, g, ctx) =>
    tf.tidy(() => weightedChannelSum(a, g!.abs().pow(ctx.options.power).mean([1, 2]))),
});

export default absGradCam;
