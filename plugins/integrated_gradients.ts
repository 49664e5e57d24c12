/**
 * Integrated gradients (Sundararajan et al. 2017): the input minus a baseline, times the
 * gradient of the target score averaged along the straight path from the baseline to the
 * input, reduced over the channels.
 *
 * The path integral uses `steps` intervals (default 50) and the trapezoid rule by default:
 * `IG = (x - x0) * sum_k w_k grad f(x0 + a_k (x - x0))` with `a_k = k / steps`,
 * `k = 0..steps`, `w = 1 / steps` except `1 / (2 steps)` at both ends (steps + 1 gradient
 * evaluations). `riemann: "right"` uses `a_k = k / steps`, `k = 1..steps` with equal weights
 * (Captum's `riemann_right`), `"left"` `k = 0..steps-1`, `"middle"` `(k + 1/2) / steps`.
 * The path points of all images are batched (`batchSize` images per forward pass).
 *
 * `"gauss-legendre"` uses `steps` Gauss-Legendre nodes on [0, 1] (Captum's default).
 *
 * Completeness: with the default `reduce: "sum"` the map sums to `f(x) - f(x0)` of the
 * target score, up to the discretisation error of the integral. On ReLU networks the
 * integrand is piecewise constant with many jumps, so that error shrinks only like
 * 1 / steps and erratically: on the vgg_tiny fixtures (baseline 0) the trapezoid rule is
 * off by up to 1.5 % with 50 steps, 0.8 % with 128 and 0.2 % with 512. Raise `steps` where
 * completeness matters (the tests use 128 for the 1 % check).
 *
 * Options: `baseline` (a number, a number array of length C (one value per channel), or a
 * tfjs tensor broadcastable to the input; default 0 everywhere), `steps`, `riemann`,
 * `batchSize` (default 32), `reduce` (default `sum`; see {@linkcode ChannelReduction}).
 *
 * @example Completeness on the built-in shapes model
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
 *   method: "integrated-gradients",
 *   normalize: "none",
 *   methodOptions: { steps: 16 },
 * });
 * const black = tf.zeros([1, 128, 128, 3]);
 * const f0 = (model.predict(black) as tf.Tensor2D).arraySync()[0][scene.label];
 * tf.dispose([x, black]);
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * // The attributions sum to f(x) - f(black image), up to the integral's error (1 % here).
 * const sum = e.map.reduce((a, b) => a + b, 0);
 * assert.ok(Math.abs(sum - (e.score - f0)) < 0.02 * Math.abs(e.score - f0));
 * ```
 *
 * @module
 */
import type { ModelGraph } from "../core/graph.ts";
import { type Tensor, type Tensor4D, tf } from "../core/tensor.ts";
import {
  type MethodContext,
  type OptionSpecs,
  type OptionValues,
  PLUGIN_API_VERSION,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";
import {
  type ChannelReduction,
  REDUCE_DOC,
  reduceChannels,
  REDUCTIONS,
  tiledTargets,
} from "./gradient.ts";

export type { ChannelReduction };

/** Discretisations of the path integral. */
export type RiemannRule = "trapezoid" | "right" | "left" | "middle" | "gauss-legendre";

const RULES: readonly RiemannRule[] = ["trapezoid", "right", "left", "middle", "gauss-legendre"];

function baselineProblem(b: unknown): string | undefined {
  if (b === "zeros" || typeof b === "number" || b instanceof tf.Tensor) return undefined;
  if (Array.isArray(b) && b.length > 0 && b.every((v) => Number.isFinite(Number(v)))) {
    return undefined;
  }
  return "'zeros', a number, a per-channel number array or a tensor";
}

/** The options integrated gradients declares. */
export const INTEGRATED_GRADIENTS_OPTIONS = {
  baseline: {
    type: "value",
    accepts: "zeros|a number|one number per channel|a tensor",
    doc: "the path's start (default: 0 everywhere)",
    check: (v: unknown): string | undefined => baselineProblem(v),
  },
  steps: { type: "integer", min: 1, default: 50, doc: "intervals of the path integral" },
  riemann: {
    type: "string",
    values: RULES,
    default: "trapezoid",
    doc: "discretisation of the integral (gauss-legendre: Captum's default)",
  },
  batchSize: { type: "integer", min: 1, default: 32, doc: "images per forward pass" },
  reduce: { type: "string", values: REDUCTIONS, default: "sum", doc: REDUCE_DOC },
} as const satisfies OptionSpecs;

/** Validated options of {@linkcode integratedGradients}. */
export type IntegratedGradientsOptions = OptionValues<typeof INTEGRATED_GRADIENTS_OPTIONS>;

/** Gauss-Legendre nodes and weights on [0, 1] (Newton iteration on P_n, float64). */
export function gaussLegendre(n: number): { alphas: number[]; weights: number[] } {
  const alphas: number[] = [];
  const weights: number[] = [];
  for (let i = 1; i <= n; i++) {
    let z = Math.cos(Math.PI * (i - 0.25) / (n + 0.5));
    let dp = 1;
    for (let it = 0; it < 100; it++) {
      let p0 = 1, p1 = z;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      if (n === 1) p0 = 1;
      dp = n * (z * p1 - p0) / (z * z - 1);
      const dz = p1 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-15) break;
    }
    alphas.push((1 - z) / 2);
    weights.push(1 / ((1 - z * z) * dp * dp));
  }
  return { alphas, weights };
}

/** The path points `a_k` and their weights for a rule and a number of steps. */
export function pathPoints(
  steps: number,
  rule: RiemannRule,
): { alphas: number[]; weights: number[] } {
  const alphas: number[] = [];
  const weights: number[] = [];
  switch (rule) {
    case "trapezoid":
      for (let k = 0; k <= steps; k++) {
        alphas.push(k / steps);
        weights.push(k === 0 || k === steps ? 0.5 / steps : 1 / steps);
      }
      break;
    case "right":
    case "left":
    case "middle": {
      const off = rule === "right" ? 1 : rule === "left" ? 0 : 0.5;
      for (let k = 0; k < steps; k++) {
        alphas.push((k + off) / steps);
        weights.push(1 / steps);
      }
      break;
    }
    case "gauss-legendre":
      return gaussLegendre(steps);
    default:
      throw new Error(`integrated-gradients: unknown riemann rule '${String(rule)}'`);
  }
  return { alphas, weights };
}

/** The baseline as a tensor broadcastable to `x` (caller disposes). */
function baselineOf(x: Tensor4D, b: unknown): Tensor {
  if (b === undefined || b === null || b === "zeros") return tf.zerosLike(x);
  if (typeof b === "number") return tf.fill(x.shape, b);
  if (Array.isArray(b)) {
    if (b.length !== x.shape[3]) {
      throw new Error(
        `integrated-gradients: baseline has ${b.length} values, the input ${x.shape[3]} channels`,
      );
    }
    return tf.tensor1d(b.map(Number));
  }
  if (b instanceof tf.Tensor) return b.clone();
  throw new Error(
    "integrated-gradients: baseline must be a number, a per-channel array or a tensor",
  );
}

/** The integrated gradients method plugin (`integrated-gradients`, aliases `ig`). */
export const integratedGradients: SaliencyMethod<IntegratedGradientsOptions> = {
  kind: "method",
  apiVersion: PLUGIN_API_VERSION,
  name: "integrated-gradients",
  aliases: ["ig", "integrated_gradients"],
  description: "Integrated gradients: (x - baseline) times the path-averaged gradient",
  options: INTEGRATED_GRADIENTS_OPTIONS,
  defaultLayer: (graph: ModelGraph): string => graph.inputName,
  requires(graph: ModelGraph, layer: string | undefined): Requirements {
    if (layer !== undefined && layer !== graph.inputName) {
      throw new Error(
        `integrated-gradients works at the model input ('${graph.inputName}'), not '${layer}'`,
      );
    }
    return {}; // the path points run on forward passes of their own
  },
  run(ctx: MethodContext<IntegratedGradientsOptions>): SaliencyMaps {
    const { reduce: how, steps, batchSize, riemann } = ctx.options;
    const { alphas, weights } = pathPoints(steps, riemann);
    const session = ctx.session;
    const inputName = session.graph.inputName;
    const x = ctx.pass.input;
    const n = x.shape[0];
    const base = baselineOf(x, ctx.options.baseline);
    const delta = tf.tidy(() => x.sub(base) as Tensor4D);
    const start = tf.tidy(() => base.add(tf.zerosLike(x)) as Tensor4D);
    base.dispose();
    const perForward = Math.max(1, Math.floor(batchSize / n));
    let acc = tf.zerosLike(x) as Tensor4D;
    try {
      for (let k0 = 0; k0 < alphas.length; k0 += perForward) {
        const k = Math.min(perForward, alphas.length - k0);
        const a = alphas.slice(k0, k0 + k);
        const wts = weights.slice(k0, k0 + k);
        const points = tf.tidy(() => {
          const al = tf.tensor1d(a).reshape([k, 1, 1, 1, 1]);
          return start.expandDims(0).add(delta.expandDims(0).mul(al))
            .reshape([k * n, ...x.shape.slice(1)]) as Tensor4D;
        });
        const pass = session.forward(points, { gradientsFrom: [inputName] });
        let g: Tensor;
        try {
          const targets = tiledTargets(ctx.targets, n, k);
          const seed = targets.seed(pass.scores);
          try {
            [g] = pass.backward(seed, { wrt: [inputName] });
          } finally {
            seed.dispose();
          }
        } finally {
          pass.dispose();
          points.dispose();
        }
        const prev = acc;
        acc = tf.tidy(() => {
          const wt = tf.tensor1d(wts).reshape([k, 1, 1, 1, 1]);
          return prev.add(g.reshape([k, ...x.shape]).mul(wt).sum(0)) as Tensor4D;
        });
        prev.dispose();
        g.dispose();
      }
      const maps = tf.tidy(() => reduceChannels(acc.mul(delta), how));
      return {
        maps,
        method: "integrated-gradients",
        layer: inputName,
        classes: ctx.targets.classes,
        resolution: [maps.shape[1], maps.shape[2]],
      };
    } finally {
      acc.dispose();
      delta.dispose();
      start.dispose();
    }
  },
};

export default integratedGradients;
