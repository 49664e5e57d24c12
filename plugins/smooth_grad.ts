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
 * method; otherwise every option not listed here is passed on to it, e.g. `reduce`).
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
  PLUGIN_API_VERSION,
  type PluginOptions,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";
import { tiledTargets } from "./gradient.ts";

const OWN_OPTIONS = new Set(["base", "samples", "noise", "seed", "batchSize", "baseOptions"]);

/** The wrapped method and the options it receives. */
function baseOf(options: PluginOptions): { base: SaliencyMethod; baseOptions: PluginOptions } {
  const name = String(options.base ?? "gradient");
  if (name === "smooth-grad" || name === "smoothgrad") {
    throw new Error("smooth-grad: the base method cannot be smooth-grad itself");
  }
  const base = registry.method(name);
  if (options.baseOptions && typeof options.baseOptions === "object") {
    return { base, baseOptions: options.baseOptions as PluginOptions };
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!OWN_OPTIONS.has(k)) rest[k] = v;
  return { base, baseOptions: rest };
}

function positiveInt(v: unknown, fallback: number, what: string): number {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`smooth-grad: ${what} must be a positive integer`);
  }
  return n;
}

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
export const smoothGrad: SaliencyMethod = {
  kind: "method",
  apiVersion: PLUGIN_API_VERSION,
  name: "smooth-grad",
  aliases: ["smoothgrad"],
  description: "SmoothGrad: any method's maps averaged over seeded noisy copies of the input",
  defaultLayer(graph: ModelGraph, options: PluginOptions): string | undefined {
    const { base, baseOptions } = baseOf(options);
    return base.defaultLayer(graph, baseOptions);
  },
  requires(): Requirements {
    return {}; // the base runs on forward passes of its own
  },
  async run(ctx: MethodContext): Promise<SaliencyMaps> {
    const { base, baseOptions } = baseOf(ctx.options);
    const samples = positiveInt(ctx.options.samples, 25, "samples");
    const batchSize = positiveInt(ctx.options.batchSize, 32, "batchSize");
    const noise = Number(ctx.options.noise ?? 0.15);
    if (!Number.isFinite(noise) || noise < 0) {
      throw new Error("smooth-grad: noise must be a non-negative number");
    }
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
    const normal = normalGenerator(Number(ctx.options.seed ?? 0));
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
