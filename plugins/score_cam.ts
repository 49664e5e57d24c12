/**
 * Score-CAM (Wang et al. 2020), as pytorch-grad-cam computes it: no gradient. Each channel
 * A_c of the layer's activations is upsampled to the input size with align-corners bilinear
 * interpolation, min-max normalised per channel (`(U - min) / (max - min + 1e-8)`), and
 * multiplied into the (preprocessed) input; the masked images are run through the model
 * and `s_c` is the target score of each. Weights are the softmax over channels of s, the
 * map is ReLU(sum_c w_c A_c).
 *
 * Costs one forward pass per channel and image, batched (option `batchSize`, default 16
 * masked images per forward). For class targets the score is the class logit; for a custom
 * score function it is the seed of the original pass (its gradient there) dotted with the
 * masked scores (exact for score functions linear in the logits).
 *
 * Options: `batchSize`, `raw` (no final ReLU), `inplaceRelu` as for Grad-CAM.
 *
 * @example Score-CAM on the built-in shapes model
 * ```ts
 * import assert from "node:assert/strict";
 * import { explain, initBackend, loadLayersModel, pointingGame } from "../mod.ts";
 * import { tf } from "../core/tf.ts";
 * import { BUILTIN_MODELS } from "../models/builtin.ts";
 * import { generateScene } from "../models/scenes.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl);
 * const scene = generateScene(3000003); // a square among other shapes, with its mask
 * const x = tf.tensor4d(scene.image, [1, 128, 128, 3]);
 * const [e] = await explain(model, x, { method: "score-cam", methodOptions: { batchSize: 32 } });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import { resizeMaps, type Tensor2D, type Tensor3D, type Tensor4D, tf } from "../core/tensor.ts";
import type { MethodContext, SaliencyMethod } from "../core/types.ts";
import { camMethod, weightedChannelSum } from "./cam_base.ts";

/** Per-channel min-max normalised, align-corners upsampled masks `[C, H, W]` of one image. */
function masksOf(a: Tensor4D, b: number, height: number, width: number): Tensor3D {
  return tf.tidy(() => {
    const [, h, w, c] = a.shape;
    const chans = a.slice([b, 0, 0, 0], [1, h, w, c]).reshape([h, w, c]).transpose([2, 0, 1]);
    const up = resizeMaps(chans as Tensor3D, height, width, true);
    const lo = up.min([1, 2], true);
    const hi = up.max([1, 2], true);
    return up.sub(lo).div(hi.sub(lo).add(1e-8)) as Tensor3D;
  });
}

/** Target scores `[N, C]` of every channel's masked input. */
async function channelScores(a: Tensor4D, ctx: MethodContext, batch: number): Promise<Tensor2D> {
  const { session, pass, targets } = ctx;
  const x = pass.input;
  const [n, height, width, ch] = x.shape;
  const c = a.shape[3];
  const seed = targets.seed(pass.scores); // [N, classes]: one-hot for class targets
  const out = new Float32Array(n * c);
  try {
    for (let b = 0; b < n; b++) {
      const masks = masksOf(a, b, height, width);
      const weight = tf.tidy(() => seed.slice([b, 0], [1, -1]));
      try {
        for (let start = 0; start < c; start += batch) {
          const k = Math.min(batch, c - start);
          const masked = tf.tidy(() => {
            const m = masks.slice([start, 0, 0], [k, height, width]).reshape([k, height, width, 1]);
            return x.slice([b, 0, 0, 0], [1, height, width, ch]).mul(m) as Tensor4D;
          });
          const scores = session.predict(masked);
          masked.dispose();
          const s = tf.tidy(() => scores.mul(weight).sum(1));
          scores.dispose();
          out.set(await s.data() as Float32Array, b * c + start);
          s.dispose();
        }
      } finally {
        masks.dispose();
        weight.dispose();
      }
    }
  } finally {
    seed.dispose();
  }
  return tf.tensor2d(out, [n, c]);
}

/** The Score-CAM method plugin (`score-cam`, alias `scorecam`). */
export const scoreCam: SaliencyMethod = camMethod({
  name: "score-cam",
  aliases: ["scorecam"],
  description: "Score-CAM: activations weighted by the softmax of the scores of masked inputs",
  needsGradient: false,
  options: {
    batchSize: {
      type: "integer",
      min: 1,
      default: 16,
      doc: "masked images per forward pass",
    },
  },
  combine: async (a, _g, ctx) => {
    const s = await channelScores(a, ctx, ctx.options.batchSize);
    try {
      return tf.tidy(() => weightedChannelSum(a, tf.softmax(s, -1)));
    } finally {
      s.dispose();
    }
  },
});

export default scoreCam;
