/**
 * SmoothGrad (Smilkov et al. 2017): the average of a base method's maps over noisy copies
 * of the input, `x + N(0, sigma^2)` with `sigma = noise * (max(x) - min(x))` per image.
 * Wraps ANY registered method by name (default `gradient`; `guided-backprop`, `grad-cam`,
 * ... work the same way): the base runs on its own forward passes of the noisy copies,
 * batched, with the same targets, and its maps are averaged per image.
 *
 * The noise comes from the toolkit's own seeded generator (independent of the tfjs backend
 * and of the batch size), so the same `seed` always gives the same map; with `noise: 0`
 * the result equals the base method's map.
 *
 * Options: `base` (method name, default `gradient`), `samples` (default 25), `noise` (std
 * as a fraction of each image's value range, default 0.15), `seed` (default 0),
 * `batchSize` (images per forward pass, default 32), `baseOptions` (options of the base
 * method); every other option is passed on to the base method (e.g. `reduce`) and
 * validated against its declarations.
 *
 * @example SmoothGrad over guided backpropagation on the built-in shapes model
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
 * const [e] = await explain(model, x, {
 *   method: "smooth-grad",
 *   methodOptions: { base: "guided-backprop", samples: 16, noise: 0.1 },
 * });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * ```
 *
 * @module
 */
import type { ModelGraph } from "../core/graph.ts";
import { registry } from "../core/registry.ts";
import { type Tensor3D, type Tensor4D, tf } from "../core/tensor.ts";
import {
  type MethodContext,
  type OptionSpecs,
  type OptionValues,
  PLUGIN_API_VERSION,
  type PluginOptions,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";
import { tiledTargets } from "./gradient.ts";

/** The base method named by `base` (any registered method but smooth-grad itself). */
function baseMethod(name: unknown): SaliencyMethod {
  const base = registry.method(String(name ?? "gradient"));
  if (base.name === "smooth-grad") {
    throw new Error("smooth-grad: the base method cannot be smooth-grad itself");
  }
  return base;
}

function baseProblem(name: unknown): string | undefined {
  try {
    baseMethod(name);
    return undefined;
  } catch (e) {
    return `a registered method other than smooth-grad (${(e as Error).message})`;
  }
}

/** The options SmoothGrad declares (undeclared ones go to the base method). */
export const SMOOTH_GRAD_OPTIONS = {
  base: {
    type: "string",
    accepts: "a method name",
    default: "gradient",
    doc: "the method whose maps are averaged (any registered method)",
    check: (v: unknown): string | undefined => baseProblem(v),
  },
  samples: { type: "integer", min: 1, default: 25, doc: "noisy copies averaged" },
  noise: {
    type: "number",
    min: 0,
    default: 0.15,
    doc: "noise std as a fraction of each image's value range",
  },
  seed: { type: "number", default: 0, doc: "seed of the noise generator" },
  batchSize: { type: "integer", min: 1, default: 32, doc: "images per forward pass" },
  baseOptions: {
    type: "options",
    doc: "options of the base method (other options not listed here go there too)",
    of: (options: PluginOptions): SaliencyMethod => baseMethod(options.base),
  },
} as const satisfies OptionSpecs;

/** Validated options of {@linkcode smoothGrad}. */
export type SmoothGradOptions = OptionValues<typeof SMOOTH_GRAD_OPTIONS>;

/**
 * A seeded standard normal generator (32-bit counter hash + Box-Muller), deterministic on
 * every backend and platform.
 */
export function normalGenerator(seed: number): () => number {
  let state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  const uniform = (): number => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
  };
  let spare: number | undefined;
  return (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

/** The SmoothGrad method plugin (`smooth-grad`, alias `smoothgrad`). */
export const smoothGrad: SaliencyMethod<SmoothGradOptions> = {
  kind: "method",
  apiVersion: PLUGIN_API_VERSION,
  name: "smooth-grad",
  aliases: ["smoothgrad"],
  description: "SmoothGrad: any method's maps averaged over seeded noisy copies of the input",
  options: SMOOTH_GRAD_OPTIONS,
  forwardOthersTo: "baseOptions",
  defaultLayer(graph: ModelGraph, options: SmoothGradOptions): string | undefined {
    return baseMethod(options.base).defaultLayer(graph, options.baseOptions);
  },
  requires(): Requirements {
    return {}; // the base runs on forward passes of its own
  },
  async run(ctx: MethodContext<SmoothGradOptions>): Promise<SaliencyMaps> {
    const { samples, batchSize, noise, seed, baseOptions } = ctx.options;
    const base = baseMethod(ctx.options.base);
    const x = ctx.pass.input;
    const [n, h, w, c] = x.shape;
    const per = h * w * c;
    const graph = ctx.session.graph;
    const need = base.requires(graph, ctx.layer, baseOptions);
    // Per-image noise std.
    const sigma = tf.tidy(() => {
      const flat = x.reshape([n, -1]);
      return flat.max(1).sub(flat.min(1)).mul(noise);
    });
    const sigmas = Array.from(await sigma.data());
    sigma.dispose();
    const normal = normalGenerator(seed);
    const perForward = Math.max(1, Math.floor(batchSize / n));
    let sum: Tensor3D | undefined;
    let first: SaliencyMaps | undefined;
    try {
      for (let s0 = 0; s0 < samples; s0 += perForward) {
        const k = Math.min(perForward, samples - s0);
        const eps = new Float32Array(k * n * per);
        for (let i = 0; i < k * n; i++) {
          const sd = sigmas[i % n];
          for (let j = 0; j < per; j++) eps[i * per + j] = sd * normal();
        }
        const noisy = tf.tidy(() =>
          tf.tile(x, [k, 1, 1, 1]).add(tf.tensor4d(eps, [k * n, h, w, c])) as Tensor4D
        );
        const pass = ctx.session.forward(noisy, {
          record: need.record,
          gradientsFrom: need.gradientsFrom,
        });
        let made: SaliencyMaps;
        try {
          made = await base.run({
            session: ctx.session,
            pass,
            targets: tiledTargets(ctx.targets, n, k),
            layer: ctx.layer,
            options: baseOptions,
          });
        } finally {
          pass.dispose();
          noisy.dispose();
        }
        first ??= made;
        const [, mh, mw] = made.maps.shape;
        const part = tf.tidy(() => made.maps.reshape([k, n, mh, mw]).sum(0) as Tensor3D);
        made.maps.dispose();
        const prev = sum;
        sum = prev ? tf.tidy(() => prev.add(part) as Tensor3D) : part;
        if (prev) {
          prev.dispose();
          part.dispose();
        }
      }
    } catch (e) {
      sum?.dispose();
      throw e;
    }
    const total = sum!;
    const maps = tf.tidy(() => total.div(samples) as Tensor3D);
    total.dispose();
    return {
      maps,
      method: "smooth-grad",
      layer: first!.layer,
      classes: ctx.targets.classes,
      resolution: [maps.shape[1], maps.shape[2]],
    };
  },
};

export default smoothGrad;
