/**
 * The single generic entry point: `explain(model, images, { method, extrapolator, layer,
 * targets })`. It resolves plugins, runs ONE forward pass with everything the method(s)
 * and extrapolator need, one method run per target round, the optional extrapolator on the
 * same pass, then resizing and normalisation, and returns plain typed arrays.
 *
 * @module
 */
import { checkLayer, type ModelGraph } from "./graph.ts";
import { resolvePlugins, validateRequests } from "./options.ts";
import { PluginError, type Registry, registry as defaultRegistry } from "./registry.ts";
import { type CompileOptions, createSession, frontEndOf, type OnnxModel } from "./frontends/mod.ts";
import { ModelSession, type Pass, type Session } from "./session.ts";
import { resolveTargets, type TargetRound, type TargetSpec } from "./targets.ts";
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
import type {
  Extrapolator,
  PluginOptions,
  Requirements,
  SaliencyMaps,
  SaliencyMethod,
} from "./types.ts";

/** One method (with optional extrapolator) to run. */
export interface ExplainRequest {
  /** Method name or object (default `grad-cam`). */
  method?: string | SaliencyMethod;
  /** Extrapolator name or object; `"none"` or absent for none. */
  extrapolator?: string | Extrapolator;
  /**
   * Layer the method works on (default: the method's choice); the model input's name is a
   * layer too. Not an option: `methodOptions.layer` is refused.
   */
  layer?: string;
  /** Method options, validated against the method's declarations. */
  methodOptions?: PluginOptions;
  /** Extrapolator options, validated against the extrapolator's declarations. */
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

/** A model (LayersModel, GraphModel, ONNX model) or a prepared session. */
export type ModelLike = LayersModel | GraphModel | OnnxModel | Session;

const sessions = new WeakMap<object, Map<string, Session>>();

/**
 * Returns (and caches) the session of a model. `opts.inputSize` fills an input size the
 * model leaves open (it must match a fixed one); sessions are cached per model and size.
 */
export function sessionOf(model: ModelLike, opts: CompileOptions = {}): Session {
  if (model instanceof ModelSession) return model;
  const size = opts.inputSize ? opts.inputSize.join("x") : "";
  let bySize = sessions.get(model);
  if (!bySize) {
    bySize = new Map();
    sessions.set(model, bySize);
  }
  let s = bySize.get(size);
  if (!s) {
    s = createSession(model, opts);
    bySize.set(size, s);
  }
  return s;
}

/** The session for explaining `input`: an open model input size is taken from the images. */
function sessionFor(model: ModelLike, input: Tensor4D): Session {
  if (model instanceof ModelSession) return model;
  const open = frontEndOf(model).dynamicInput?.(model) ?? false;
  return sessionOf(model, open ? { inputSize: [input.shape[1], input.shape[2]] } : {});
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
 * Checks a batch at the API boundary, before any tensor is made: a 4-D tensor
 * `[N, H, W, C]` with N >= 1, the model's input size (where the model fixes it) and only
 * finite values. Throws a `RangeError` naming the problem otherwise.
 */
export async function validateInput(session: Session, input: Tensor4D): Promise<void> {
  if (!(input instanceof tf.Tensor)) {
    throw new TypeError("explain: the input must be a tf.Tensor4D [N, H, W, C]");
  }
  if (input.rank !== 4) {
    throw new RangeError(
      `explain: the input must be [N, H, W, C], got [${input.shape.join(", ")}]`,
    );
  }
  if (input.shape[0] < 1) {
    throw new RangeError(`explain: the batch is empty (input [${input.shape.join(", ")}])`);
  }
  const want = session.inputSize;
  const got = input.shape.slice(1);
  if (want.some((v, i) => v > 0 && v !== got[i])) {
    throw new RangeError(
      `explain: the model takes [N, ${want.join(", ")}] inputs, got [${input.shape.join(", ")}]`,
    );
  }
  const bad = tf.tidy(() => tf.logicalNot(tf.isFinite(input)).sum());
  let count: number;
  try {
    count = (await bad.data())[0]; // asynchronous: WebGPU forbids synchronous reads
  } finally {
    bad.dispose();
  }
  if (count > 0) {
    throw new RangeError(`explain: the input holds ${count} NaN or infinite values`);
  }
}

/**
 * Checks a plugin's maps against the contract: a `SaliencyMaps` whose `maps` is a 3-D
 * tensor `[N, h, w]` with N the batch size. Throws a {@linkcode PluginError} naming the
 * plugin otherwise.
 */
export function checkPluginMaps(
  made: unknown,
  n: number,
  who: string,
): asserts made is SaliencyMaps {
  const maps = (made as SaliencyMaps | undefined)?.maps;
  if (!(maps instanceof tf.Tensor)) {
    throw new PluginError(`${who} returned no maps tensor (the contract is { maps: [N, h, w] })`);
  }
  if (maps.rank !== 3 || maps.shape[0] !== n || maps.shape[1] < 1 || maps.shape[2] < 1) {
    throw new PluginError(
      `${who} returned maps of shape [${maps.shape.join(", ")}]; ` +
        `the contract is [N, h, w] with N = ${n} (the batch size)`,
    );
  }
}

/** One request, planned: plugins resolved, options validated, layer chosen and checked. */
export interface PlannedRequest {
  /** The method. */
  readonly method: SaliencyMethod;
  /** The extrapolator, if any. */
  readonly extrapolator?: Extrapolator;
  /** The layer the method works on (the request's, else the method's default). */
  readonly layer: string | undefined;
  /** The method's validated options. */
  readonly methodOptions: PluginOptions;
  /** The extrapolator's validated options. */
  readonly extrapolatorOptions: PluginOptions;
}

/**
 * Plans requests against a model graph: looks up their plugins, validates their options
 * ({@linkcode validateRequests}), picks each layer (the request's, else the method's
 * default) and checks it names a layer of the graph (the model input is one).
 */
export function planRequests(
  graph: ModelGraph,
  requests: readonly ExplainRequest[],
  reg: Registry = defaultRegistry,
): PlannedRequest[] {
  return validateRequests(requests, { registry: reg, graph }).map((r) => {
    const { method, extrapolator } = resolvePlugins(r, reg);
    const methodOptions = r.methodOptions ?? {};
    const layer = r.layer ?? method.defaultLayer(graph, methodOptions);
    if (layer !== undefined) checkLayer(graph, layer);
    return {
      method,
      extrapolator,
      layer,
      methodOptions,
      extrapolatorOptions: r.extrapolatorOptions ?? {},
    };
  });
}

/** Everything the planned methods and extrapolators need from the ONE forward pass. */
function passRequirements(graph: ModelGraph, plans: readonly PlannedRequest[]): Requirements {
  const record = new Set<string>();
  const gradientsFrom = new Set<string>();
  const add = (need: Requirements | undefined): void => {
    need?.record?.forEach((l) => record.add(l));
    need?.gradientsFrom?.forEach((l) => gradientsFrom.add(l));
  };
  for (const p of plans) {
    add(p.method.requires(graph, p.layer, p.methodOptions));
    add(p.extrapolator?.requires(graph, p.extrapolatorOptions));
  }
  return { record: [...record], gradientsFrom: [...gradientsFrom] };
}

/** The class scores and probabilities of a pass, as rows (asynchronous reads only). */
async function scoreTables(
  pass: Pass,
  graph: ModelGraph,
): Promise<{ scores: number[][]; probabilities: number[][] }> {
  // Every read is asynchronous (WebGPU in browsers forbids synchronous reads).
  const scores = await pass.scores.array() as number[][];
  const probs = tf.tidy(() =>
    graph.scoreActivation === "sigmoid" ? tf.sigmoid(pass.scores) : tf.softmax(pass.scores)
  );
  try {
    return { scores, probabilities: await probs.array() as number[][] };
  } finally {
    probs.dispose();
  }
}

/** What every target round of one batch shares. */
interface RoundContext {
  readonly session: Session;
  readonly pass: Pass;
  readonly batch: number;
  readonly scores: number[][];
  readonly probabilities: number[][];
  readonly opts: Omit<ExplainOptions, keyof ExplainRequest>;
}

/**
 * Runs one planned request for one target round: the method, its contract check, the
 * optional extrapolator, then resizing / normalisation. Returns the final maps (the caller
 * owns them) and the layer the method reported.
 */
async function runPlanned(
  rc: RoundContext,
  p: PlannedRequest,
  round: TargetRound,
): Promise<{ maps: Tensor3D; layer: string }> {
  const { session, pass, batch } = rc;
  const made = await p.method.run({
    session,
    pass,
    targets: round,
    layer: p.layer,
    options: p.methodOptions,
  });
  try {
    checkPluginMaps(made, batch, `method '${p.method.name}'`);
  } catch (e) {
    const maps = (made as SaliencyMaps | undefined)?.maps;
    if (maps instanceof tf.Tensor) maps.dispose();
    throw e;
  }
  let final: SaliencyMaps = made;
  const owned: Tensor[] = [made.maps];
  try {
    if (p.extrapolator) {
      final = p.extrapolator.refine(made, { session, pass, options: p.extrapolatorOptions });
      if ((final as SaliencyMaps | undefined)?.maps instanceof tf.Tensor) owned.push(final.maps);
      checkPluginMaps(final, batch, `extrapolator '${p.extrapolator.name}'`);
    }
    const [h, w] = session.inputSize;
    const maps = postprocess(
      final,
      [h, w],
      rc.opts.resize ?? "input",
      rc.opts.normalize ?? "minmax",
    );
    return { maps, layer: made.layer };
  } finally {
    owned.forEach((t) => t.dispose());
  }
}

/** One {@linkcode Explanation} per image from a round's final maps (disposes them). */
async function assemble(
  rc: RoundContext,
  p: PlannedRequest,
  round: TargetRound,
  out: { maps: Tensor3D; layer: string },
): Promise<Explanation[]> {
  const [n, oh, ow] = out.maps.shape;
  let data: Float32Array;
  try {
    data = await out.maps.data() as Float32Array;
  } finally {
    out.maps.dispose();
  }
  const labels = rc.opts.labels;
  const results: Explanation[] = [];
  for (let b = 0; b < n; b++) {
    const c = round.classes[b];
    const map = data.slice(b * oh * ow, (b + 1) * oh * ow);
    let lo = Infinity, hi = -Infinity;
    for (const v of map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    results.push({
      image: b,
      map,
      height: oh,
      width: ow,
      method: p.method.name,
      extrapolator: p.extrapolator?.name,
      layer: out.layer,
      classIndex: c,
      className: c >= 0 ? labels?.[c] : undefined,
      score: c >= 0 ? rc.scores[b][c] : NaN,
      probability: c >= 0 ? rc.probabilities[b][c] : NaN,
      empty: !(hi > lo),
    });
  }
  return results;
}

/**
 * Explains a batch with several methods at once (all from ONE forward pass). Returns, per
 * request, the explanations for every image and target round. The input is checked first
 * ({@linkcode validateInput}), then the requests are planned ({@linkcode planRequests}: every
 * option validated before anything runs), each plugin's maps after it ran
 * ({@linkcode checkPluginMaps}: a {@linkcode PluginError} naming the plugin). A map may hold
 * NaN where a method broke down (e.g. on a flat image); callers check `Number.isFinite`
 * (the CLI fails that image and method).
 */
export async function explainMany(
  model: ModelLike,
  input: Tensor4D,
  requests: readonly ExplainRequest[],
  opts: Omit<ExplainOptions, keyof ExplainRequest> = {},
): Promise<Explanation[][]> {
  const session = sessionFor(model, input);
  await validateInput(session, input);
  const graph = session.graph;
  const plans = planRequests(graph, requests, opts.registry ?? defaultRegistry);
  const pass = session.forward(input, passRequirements(graph, plans));
  const results: Explanation[][] = plans.map(() => []);
  try {
    const { scores, probabilities } = await scoreTables(pass, graph);
    const rounds = resolveTargets(opts.targets, scores, opts.labels);
    const rc: RoundContext = { session, pass, batch: input.shape[0], scores, probabilities, opts };
    for (const round of rounds) {
      for (let i = 0; i < plans.length; i++) {
        const out = await runPlanned(rc, plans[i], round);
        results[i].push(...await assemble(rc, plans[i], round, out));
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
 * import assert from "node:assert/strict";
 * import { explain, initBackend, loadLayersModel } from "../mod.ts";
 * import { tf } from "./tf.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel("models/shapes-vgg/model.json");
 * const x = tf.randomUniform([2, 128, 128, 3], 0, 1, "float32", 1) as tf.Tensor4D;
 * const res = await explain(model, x, { method: "grad-cam", extrapolator: "gradual" });
 * x.dispose();
 * assert.equal(res.length, 2); // one explanation per image (and per target)
 * const [e] = res; // e.map: a Float32Array of e.height * e.width values in [0, 1]
 * assert.equal(e.map.length, e.height * e.width);
 * assert.ok(e.map.every((v) => v >= 0 && v <= 1));
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
