/**
 * The single generic entry point: `explain(model, images, { method, extrapolator, layer,
 * targets })`. It resolves plugins, runs ONE forward pass with everything the method(s)
 * and extrapolator need, one method run per target round, the optional extrapolator on the
 * same pass, then resizing and normalisation, and returns plain typed arrays.
 *
 * @module
 */
import { checkLayer } from "./graph.ts";
import { type Registry, registry as defaultRegistry } from "./registry.ts";
import { GraphSession } from "./graph_session.ts";
import { ModelSession, type Session } from "./session.ts";
import { resolveTargets, type TargetSpec } from "./targets.ts";
import {
  type GraphModel,
  type LayersModel,
  minMaxPerImage,
  resizeMaps,
  type Tensor,
  type Tensor3D,
  type Tensor4D,
  tf,
} from "./tensor.ts";
import type { Extrapolator, PluginOptions, SaliencyMaps, SaliencyMethod } from "./types.ts";

/** One method (with optional extrapolator) to run. */
export interface ExplainRequest {
  /** Method name or object (default `grad-cam`). */
  method?: string | SaliencyMethod;
  /** Extrapolator name or object; `"none"` or absent for none. */
  extrapolator?: string | Extrapolator;
  /** Layer the method works on (default: the method's choice). */
  layer?: string;
  /** Method options. */
  methodOptions?: PluginOptions;
  /** Extrapolator options. */
  extrapolatorOptions?: PluginOptions;
}

/** Options of {@linkcode explain}. */
export interface ExplainOptions extends ExplainRequest {
  /** What to explain (default top-1). */
  targets?: TargetSpec;
  /** Class names, for name targets and for `className` in results. */
  labels?: readonly string[];
  /** Output resolution: the model input (default) or the method's own layer. */
  resize?: "input" | "none";
  /**
   * `minmax` (default): per-image min-max to [0, 1] before and after resizing (what
   * pytorch-grad-cam users expect); `none`: raw values (e.g. TorchRay's logit units).
   */
  normalize?: "minmax" | "none";
  /** Registry to resolve names in (default: the built-in one). */
  registry?: Registry;
}

/** One explanation: a map for one image and one target. */
export interface Explanation {
  /** Index of the image in the batch. */
  image: number;
  /** The map, row-major `[height, width]` (the caller owns it). */
  map: Float32Array;
  /** Map height. */
  height: number;
  /** Map width. */
  width: number;
  /** Method name. */
  method: string;
  /** Extrapolator name, if one ran. */
  extrapolator?: string;
  /** Layer the method worked on. */
  layer: string;
  /** Explained class (-1 for a custom score function). */
  classIndex: number;
  /** Its label, when labels were given. */
  className?: string;
  /** The class score (logit). */
  score: number;
  /** Probability of the class (softmax of the scores; sigmoid for a sigmoid-output model). */
  probability: number;
  /**
   * Whether the map is empty: constant (e.g. all zero, the method found no evidence for the
   * class at this layer). Its values are then all 0, never NaN.
   */
  empty: boolean;
}

/** A model (LayersModel or GraphModel) or a prepared session. */
export type ModelLike = LayersModel | GraphModel | Session;

const sessions = new WeakMap<object, Session>();

/** Returns (and caches) the session of a model. */
export function sessionOf(model: ModelLike): Session {
  if (model instanceof ModelSession || model instanceof GraphSession) return model;
  let s = sessions.get(model);
  if (!s) {
    s = model instanceof tf.GraphModel
      ? GraphSession.create(model)
      : new ModelSession(model as LayersModel);
    sessions.set(model, s);
  }
  return s;
}

function resolve(req: ExplainRequest, reg: Registry): {
  method: SaliencyMethod;
  extrapolator?: Extrapolator;
} {
  const method = typeof req.method === "object" ? req.method : reg.method(req.method ?? "grad-cam");
  const ex = req.extrapolator;
  const extrapolator = ex === undefined || ex === "none"
    ? undefined
    : typeof ex === "object"
    ? ex
    : reg.extrapolator(ex);
  return { method, extrapolator };
}

/** Final resize / normalisation of a method's maps, as configured. */
export function postprocess(
  m: SaliencyMaps,
  size: [number, number],
  resize: "input" | "none",
  normalize: "minmax" | "none",
): Tensor3D {
  return tf.tidy(() => {
    const atInput = m.resolution[0] === size[0] && m.resolution[1] === size[1];
    if (resize === "none" || atInput) {
      if (normalize === "none" || m.normalized) return m.maps.clone();
      return minMaxPerImage(m.maps);
    }
    if (normalize === "none") return resizeMaps(m.maps, size[0], size[1]);
    return minMaxPerImage(resizeMaps(minMaxPerImage(m.maps), size[0], size[1]));
  });
}

/**
 * Explains a batch with several methods at once (all from ONE forward pass). Returns, per
 * request, the explanations for every image and target round.
 */
export async function explainMany(
  model: ModelLike,
  input: Tensor4D,
  requests: readonly ExplainRequest[],
  opts: Omit<ExplainOptions, keyof ExplainRequest> = {},
): Promise<Explanation[][]> {
  const session = sessionOf(model);
  const graph = session.graph;
  const reg = opts.registry ?? defaultRegistry;
  const plans = requests.map((r) => {
    const { method, extrapolator } = resolve(r, reg);
    const mo = r.methodOptions ?? {};
    if (method.usesRules && !session.supportsRules) {
      throw new Error(
        `${method.name} needs per-layer backward rules, which need a LayersModel; this is a GraphModel`,
      );
    }
    const layer = r.layer ?? method.defaultLayer(graph, mo);
    if (layer !== undefined) checkLayer(graph, layer);
    return { req: r, method, extrapolator, layer, mo, eo: r.extrapolatorOptions ?? {} };
  });
  const record = new Set<string>();
  const gradientsFrom = new Set<string>();
  for (const p of plans) {
    const need = p.method.requires(graph, p.layer, p.mo);
    need.record?.forEach((l) => record.add(l));
    need.gradientsFrom?.forEach((l) => gradientsFrom.add(l));
    const eneed = p.extrapolator?.requires(graph, p.eo);
    eneed?.record?.forEach((l) => record.add(l));
    eneed?.gradientsFrom?.forEach((l) => gradientsFrom.add(l));
  }
  const pass = session.forward(input, { record: [...record], gradientsFrom: [...gradientsFrom] });
  const results: Explanation[][] = plans.map(() => []);
  try {
    const rounds = resolveTargets(opts.targets, pass.scores, opts.labels);
    const probs = tf.tidy(() =>
      graph.scoreActivation === "sigmoid" ? tf.sigmoid(pass.scores) : tf.softmax(pass.scores)
    );
    const scoreRows = pass.scores.arraySync() as number[][];
    const probRows = probs.arraySync() as number[][];
    probs.dispose();
    const [h, w] = session.inputSize;
    for (const round of rounds) {
      for (let i = 0; i < plans.length; i++) {
        const p = plans[i];
        const made = await p.method.run({
          session,
          pass,
          targets: round,
          layer: p.layer,
          options: p.mo,
        });
        let final: SaliencyMaps = made;
        const owned: Tensor[] = [made.maps];
        try {
          if (p.extrapolator) {
            final = p.extrapolator.refine(made, { session, pass, options: p.eo });
            owned.push(final.maps);
          }
          const out = postprocess(
            final,
            [h, w],
            opts.resize ?? "input",
            opts.normalize ?? "minmax",
          );
          const [n, oh, ow] = out.shape;
          const data = out.dataSync() as Float32Array;
          out.dispose();
          for (let b = 0; b < n; b++) {
            const c = round.classes[b];
            const map = data.slice(b * oh * ow, (b + 1) * oh * ow);
            let lo = Infinity, hi = -Infinity;
            for (const v of map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
            results[i].push({
              image: b,
              map,
              height: oh,
              width: ow,
              method: p.method.name,
              extrapolator: p.extrapolator?.name,
              layer: made.layer,
              classIndex: c,
              className: c >= 0 ? opts.labels?.[c] : undefined,
              score: c >= 0 ? scoreRows[b][c] : NaN,
              probability: c >= 0 ? probRows[b][c] : NaN,
              empty: !(hi > lo),
            });
          }
        } finally {
          owned.forEach((t) => t.dispose());
        }
      }
    }
  } finally {
    pass.dispose();
  }
  return results;
}

/**
 * Explains a batch of preprocessed images `[N, H, W, C]` with one method (and optional
 * extrapolator). Returns one {@linkcode Explanation} per image and target.
 *
 * @example
 * ```ts
 * import { explain, loadLayersModel, tf } from "../mod.ts";
 * // const model = await loadLayersModel("models/shapes-vgg/model.json");
 * // const x = tf.randomUniform([1, 128, 128, 3]) as Tensor4D;
 * // const [e] = await explain(model, x, { method: "grad-cam", extrapolator: "gradual" });
 * // e.map is a Float32Array of e.height * e.width values in [0, 1]
 * ```
 */
export async function explain(
  model: ModelLike,
  input: Tensor4D,
  opts: ExplainOptions = {},
): Promise<Explanation[]> {
  const [res] = await explainMany(model, input, [opts], opts);
  return res;
}
