/**
 * Excitation backprop (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop")
 * and its contrastive variant c-EB, with the semantics of TorchRay's
 * `excitation_backprop` / `contrastive_excitation_backprop` (reimplemented from the
 * description of their behaviour, see `tests/fixtures/README.md`).
 *
 * Both methods run on the SAME forward pass as everything else and only replace the backward
 * rules of the ops between their saliency layer and the class scores:
 *
 * | op kind | rule |
 * | --- | --- |
 * | `conv2d`, `depthwise_conv2d`, `dense` | excitation rule: z = f(x, W+) without bias, s = g / (z + 1e-20), back through the transposed op with W+, times x |
 * | `avg_pool`, `global_avg_pool` | the same recipe with the pool's own uniform weights |
 * | `upsample` (`UpSampling2D`, nearest or bilinear) | the same recipe with the upsampling itself (a linear map with non-negative weights) |
 * | `batch_norm`, `scale` (`Rescaling`) | identity (the signal passes unchanged) |
 * | `add`, `average` | share rule (TorchRay's `EltwiseSum`): input i gets g * x_i / (x_1 + ... + x_n), on the pre-activation sum, no epsilon; a broadcast input's share is summed over its broadcast axes |
 * | `multiply` | gate rule: the signal passes unchanged to the input with the output's full shape (the features), a broadcast input (the gate, e.g. a squeeze-and-excitation scale) gets none; when several inputs have the full shape, each gets g / n |
 * | `concat` | split |
 * | `max_pool`, `global_max_pool` | ordinary gradient (to the first arg-max of each window) |
 * | `activation` `relu` / `linear` | ordinary gradient (ReLU mask) |
 * | other element-wise activations (ReLU6 and clipped ReLUs, LeakyReLU, PReLU, ELU, sigmoid, swish, gelu, mish, tanh, ...) | the signal passes where the activation's output is positive, unchanged (a winner's probability is not rescaled by a derivative; a saturated ReLU6 unit is still a winner) |
 * | `reshape`, `identity`, `pad`, `crop` | ordinary gradient |
 * | anything else (`generic` layers run by tfjs, softmax inside the network) | error naming the layer |
 *
 * The EB paper and TorchRay define the rules for conv / dense / pools / ReLU / sum; the
 * upsampling, multiply-gate and non-ReLU activation rules are this toolkit's (README,
 * "Backward rules"). The only deviation from TorchRay's arithmetic: at an `add` whose sum is
 * exactly 0 where the arriving signal is also 0, the share is 0 instead of TorchRay's NaN.
 *
 * Methods:
 * - `excitation-backprop` (`eb`): the channel sum of the EB signal at the saliency layer's
 *   output, not clamped (TorchRay's `excitation_backprop`). One backward pass.
 * - `contrastive-excitation-backprop` (`c-eb`, `ceb`): a contrast pass (one-hot seed, the
 *   classifier's rule uses max(-W, 0)) whose signal C at the contrast layer is subtracted from
 *   the main EB pass's signal there; map = max(0, channel sum of the signal at the saliency
 *   layer). Two backward passes.
 *
 * Maps are at the saliency layer's native resolution, in EB units (an EB map on post-ReLU
 * inputs sums to 1 per image); `explain` normalises / resizes them as configured.
 *
 * The saliency layer is the request's `layer` (default: {@linkcode defaultSaliencyLayer}).
 * Options (`methodOptions`, also from the CLI as `--opt key=value`; declared in
 * {@linkcode EB_OPTIONS} and {@linkcode CEB_OPTIONS}):
 * - `classifier`: the layer whose weights are negated in c-EB's contrast pass and that the
 *   saliency layer must lie before (default: the last layer with a kernel, TorchRay's
 *   automatic choice).
 * - c-EB `contrastLayer`: where the contrast is subtracted (default: see
 *   {@linkcode defaultContrastLayer}); must lie between the saliency layer (inclusive) and the
 *   classifier (exclusive).
 * - c-EB `dropContrast` (boolean, default false): return max(0, EB) instead, i.e. drop the
 *   contrast. This reproduces the maps of the gradual-extrapolation paper's code, where
 *   TorchRay (torch < 2.0, input requiring grad, saliency layer == contrast layer) silently
 *   lost the contrast. Only one backward pass is run then.
 * - `plainAdd` (boolean, default false, both methods): pass the signal through a residual `add`
 *   with its ordinary gradient (a copy to every summand) instead of the share rule: TorchRay's
 *   EB on a torchvision ResNet without `update_resnet` (the add is then a plain tensor op that
 *   its EB context does not patch). Mass is no longer conserved.
 *
 * @example c-EB with gradual extrapolation, and EB's raw map, on the built-in shapes model
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
 * const [e] = await explain(model, x, { method: "c-eb", extrapolator: "gradual" });
 * const [raw] = await explain(model, x, { method: "eb", normalize: "none", resize: "none" });
 * x.dispose();
 * assert.equal(e.classIndex, scene.label); // the model sees the square
 * assert.equal(pointingGame(e.map, scene.mask, 128, 128), 1); // the map's peak lies on it
 * // EB hands the class's unit of probability down to the layer: the raw map sums to 1.
 * assert.deepEqual([raw.height, raw.width], [8, 8]); // block5_relu1's resolution
 * assert.ok(Math.abs(raw.map.reduce((a, b) => a + b, 0) - 1) < 1e-4);
 * ```
 *
 * @module
 */
import type { LayerNode, ModelGraph } from "../core/graph.ts";
import { checkLayer, trunkNodes } from "../core/graph.ts";
import { depthwiseAsDense, dilatedKernel, type Op, unbroadcast } from "../core/layer_ops.ts";
import type { BackwardRule, Pass, RuleContext } from "../core/session.ts";
import { conv2d, derivedWeight, matMulTransposeB, sameConvTranspose } from "../backend/ops.ts";
import { type Tensor, type Tensor2D, type Tensor3D, type Tensor4D, tf } from "../core/tensor.ts";
import {
  type MethodContext,
  type OptionSpecs,
  type OptionValues,
  PLUGIN_API_VERSION,
  type Requirements,
  type SaliencyMaps,
  type SaliencyMethod,
} from "../core/types.ts";

/** The additive epsilon of the excitation rule (TorchRay's: a plain 1e-20, no sign handling). */
export const EB_EPSILON = 1e-20;

/** Op kinds whose ordinary gradient is the excitation-backprop rule. */
const ORDINARY = new Set<string>([
  "max_pool",
  "global_max_pool",
  "concat",
  "reshape",
  "identity",
  "pad",
  "crop",
]);

/** Op kinds with a dedicated excitation rule. */
const EXCITATION = new Set<string>([
  "conv2d",
  "depthwise_conv2d",
  "dense",
  "avg_pool",
  "global_avg_pool",
  "upsample",
  "batch_norm",
  "scale",
  "add",
  "average",
  "multiply",
]);

/** Activations that are not element-wise (no EB rule inside the network). */
const NOT_ELEMENTWISE = new Set(["softmax", "logSoftmax"]);

/** Whether excitation backprop knows how to pass a signal through `op`. */
export function hasExcitationRule(op: Op): boolean {
  if (op.kind === "activation") return !NOT_ELEMENTWISE.has(op.params.activation ?? "");
  return ORDINARY.has(op.kind) || EXCITATION.has(op.kind);
}

/** The one-line error for an op without a rule. */
function noRule(op: Op): Error {
  const act = op.kind === "activation" && op.className !== "Activation"
    ? `, activation '${op.params.activation}'`
    : op.kind === "activation"
    ? ` '${op.params.activation}'`
    : "";
  return new Error(
    `excitation backprop has no rule for layer '${op.layer}' (${op.className}${act})`,
  );
}

/** Options of {@linkcode excitationRule}. */
export interface ExcitationRuleOptions {
  /**
   * Node whose kernel is used as max(-W, 0) instead of max(W, 0) (c-EB's contrast pass:
   * TorchRay negates the classifier's weights).
   */
  readonly negate?: string;
  /**
   * Nodes the rules apply to (the path from the saliency layer to the scores). Ops of other
   * nodes keep their ordinary gradient; when absent every op gets the rules.
   */
  readonly scope?: ReadonlySet<string>;
  /**
   * Where to keep each op's excitation denominator `z = f(x, W+)` so that further backward
   * passes over the same forward pass reuse it (c-EB's two passes share every layer but the
   * negated classifier). The caller disposes the tensors it holds once the passes are done.
   */
  readonly denominators?: Map<string, Tensor>;
  /** Give `add` ops their ordinary gradient (a copy per summand) instead of the share rule. */
  readonly plainAdd?: boolean;
}

/** The rule context's op as a key of {@linkcode ExcitationRuleOptions.denominators}. */
type ZKey = { cache?: Map<string, Tensor>; key: string };

/** `x * back(s)` with `s = dy / (f(x) + eps)`: the excitation recipe for a linear map f. */
function excite(
  x: Tensor,
  dy: Tensor,
  f: (x: Tensor) => Tensor,
  back: (s: Tensor) => Tensor,
  shared?: ZKey,
): Tensor {
  let z = shared?.cache?.get(shared.key);
  if (z == null) {
    z = f(x);
    if (shared?.cache) shared.cache.set(shared.key, tf.keep(z));
  }
  const s = dy.reshape(z.shape).div(z.add(EB_EPSILON));
  return x.mul(back(s).reshape(x.shape));
}

/**
 * max(W, 0), or max(-W, 0) for the negated classifier, cached per kernel tensor (see
 * `derivedWeight`): the backend keeps its packed weights instead of re-packing a new matrix
 * (400 MB for VGG16's first dense layer) on every backward pass.
 */
function positivePart(kernel: Tensor, negate: boolean): Tensor {
  return derivedWeight(
    kernel,
    negate ? "eb-negative" : "eb-positive",
    () => negate ? tf.relu(tf.neg(kernel)) : tf.relu(kernel),
    // EB divides by z = W+ x: its convolutions must be exact, never Winograd (see `exact`).
    { exact: true },
  );
}

function convExcitation(
  ctx: RuleContext,
  kernel: Tensor,
  negate: boolean,
  shared: ZKey,
  cached = true,
): Tensor {
  const { op } = ctx;
  const x = ctx.inputs[0] as Tensor4D;
  const positive =
    (cached
      ? positivePart(kernel, negate)
      : negate
      ? tf.relu(tf.neg(kernel))
      : tf.relu(kernel)) as Tensor4D;
  const strides = op.params.strides ?? [1, 1];
  const padding = op.params.padding ?? "valid";
  const dilations = op.params.dilations ?? [1, 1];
  // A dilated convolution runs as the plain one with its kernel's zeros written out (tfjs
  // has no gradient for dilations); that kernel is a fresh tensor, so not cached.
  const dilated = dilations[0] !== 1 || dilations[1] !== 1;
  const w = dilated ? dilatedKernel(positive, dilations) : positive;
  const keep = cached && !dilated;
  // conv2d's Winograd path caches per kernel: only for the cached W+.
  const f = (xx: Tensor): Tensor =>
    keep
      ? conv2d(xx as Tensor4D, w, strides, padding)
      : tf.conv2d(xx as Tensor4D, w, strides, padding);
  const back = (s: Tensor): Tensor => {
    const fast = keep ? sameConvTranspose(s as Tensor4D, w, strides, padding) : undefined;
    return fast ?? tf.conv2dTranspose(s as Tensor4D, w, x.shape, strides, padding);
  };
  return excite(x, ctx.dy, f, back, shared);
}

function denseExcitation(ctx: RuleContext, negate: boolean, shared: ZKey): Tensor {
  const kernel = ctx.op.params.kernel!;
  const x = ctx.inputs[0];
  const w = positivePart(kernel, negate) as Tensor2D;
  const flat = (t: Tensor): Tensor2D => t.reshape([-1, t.shape[t.rank - 1]]) as Tensor2D;
  return excite(
    x,
    ctx.dy,
    (xx) => tf.matMul(flat(xx), w),
    (s) => matMulTransposeB(flat(s), w),
    shared,
  );
}

/**
 * TorchRay's EltwiseSum share rule; 0 where the arriving signal is 0 (no 0 / 0 NaN). A
 * broadcast input's share is summed over its broadcast axes. For an `average` the sum is
 * `n * output`, which gives the same shares.
 */
function shareRule(ctx: RuleContext): Tensor[] {
  const { dy, output, inputs } = ctx;
  const sum = ctx.op.kind === "average" ? output.mul(inputs.length) : output;
  const perUnit = tf.where(tf.equal(dy, 0), tf.zerosLike(dy), dy.div(sum));
  return inputs.map((x) => unbroadcast(perUnit.mul(x), x.shape));
}

/**
 * The multiply gate rule: the full-shape input(s) share the signal equally, broadcast
 * inputs (gates) get none.
 */
function gateRule(ctx: RuleContext): Tensor[] {
  const { dy, output, inputs } = ctx;
  const full = inputs.map((x) => x.shape.join() === output.shape.join());
  const n = full.filter(Boolean).length;
  return inputs.map((x, i) => full[i] ? (n === 1 ? dy.clone() : dy.div(n)) : tf.zerosLike(x));
}

/**
 * The excitation-backprop {@linkcode BackwardRule} for `pass.backward` (see the module doc
 * for the rule per op kind). Throws a one-line error for an op without a rule.
 */
export function excitationRule(opts: ExcitationRuleOptions = {}): BackwardRule {
  return (ctx: RuleContext): Tensor[] | undefined => {
    if (opts.scope && !opts.scope.has(ctx.node.name)) return undefined;
    const { op } = ctx;
    const negate = opts.negate === ctx.node.name;
    const shared = { cache: opts.denominators, key: `${ctx.node.name}/${op.kind}/${negate}` };
    switch (op.kind) {
      case "conv2d":
        return [convExcitation(ctx, op.params.kernel!, negate, shared)];
      case "depthwise_conv2d": {
        const dense = depthwiseAsDense(op.params.kernel!);
        return [convExcitation(ctx, dense, negate, shared, false)];
      }
      case "dense":
        return [denseExcitation(ctx, negate, shared)];
      case "avg_pool":
      case "global_avg_pool":
      case "upsample": {
        const x = ctx.inputs[0];
        const back = (s: Tensor): Tensor => op.backward(s, [x], s)[0];
        return [excite(x, ctx.dy, (xx) => op.forward([xx]), back, shared)];
      }
      case "batch_norm":
      case "scale":
        return [ctx.dy];
      case "add":
        return opts.plainAdd ? undefined : shareRule(ctx);
      case "average":
        return shareRule(ctx);
      case "multiply":
        return gateRule(ctx);
      case "activation": {
        const a = op.params.activation;
        if (NOT_ELEMENTWISE.has(a ?? "")) throw noRule(op);
        if (a === "linear" || (a === "relu" && op.params.maxValue === undefined)) return undefined;
        return [ctx.dy.mul(tf.greater(ctx.output, 0).cast(ctx.dy.dtype))];
      }
      default:
        if (!hasExcitationRule(op)) throw noRule(op);
        return undefined;
    }
  };
}

// ---------------------------------------------------------------------------------------
// Rule checks and default layers, from the structure (the graph's queries), never names.

/** Throws the one-line error for the first op on `path` that has no EB rule. */
function checkRules(graph: ModelGraph, path: ReadonlySet<string>): void {
  for (const n of graph.nodes) {
    if (!path.has(n.name)) continue;
    const skipSoftmax = graph.scoreIsPreSoftmax && n.name === graph.scoreName;
    const ops = skipSoftmax ? n.ops.slice(0, -1) : n.ops;
    for (const op of ops) if (!hasExcitationRule(op)) throw noRule(op);
  }
}

function spatialSize(n: LayerNode): string | undefined {
  const s = n.outputShape;
  return s.length === 4 ? `${s[1]}x${s[2]}` : undefined;
}

/** First node (in execution order) of each distinct resolution the reducing layers produce. */
function reductionLevels(graph: ModelGraph): LayerNode[] {
  const seen = new Set<string>();
  const out: LayerNode[] = [];
  for (const name of graph.reducingLayers) {
    const n = graph.node(name)!;
    const size = spatialSize(n) ?? name;
    if (seen.has(size)) continue;
    seen.add(size);
    out.push(n);
  }
  return out;
}

/**
 * The default saliency layer, from the graph structure only:
 * - nets whose classifier is fed by global average pooling (ResNet-like): the output of the
 *   second-to-last stage, i.e. the tensor feeding the first layer that reduces to the final
 *   resolution (explicit padding skipped) — resnet_tiny `layer3_1`, ResNet-50 `layer3`;
 * - plain nets (VGG-like): the block whose resolution feeds the second-to-last reduction
 *   (pool or strided conv); its first ReLU output (else the tensor feeding that reduction)
 *   — vgg_tiny `features_6` (32x32), VGG16 `features_18` (28x28), TorchRay's choices.
 * With too few reductions: the block before the only one, else the last spatial layer.
 */
export function defaultSaliencyLayer(graph: ModelGraph): string | undefined {
  const levels = reductionLevels(graph);
  const k = levels.length;
  if (k === 0) return graph.defaultTargetLayer;
  if (graph.globalPoolHead() !== undefined) {
    return blockOutput(graph, lastMerge(graph, graph.abovePadding(levels[k - 1].inputs[0])));
  }
  const end = levels[Math.max(0, k - 2)];
  const start = k >= 3 ? levels[k - 3].name : undefined;
  const iStart = start === undefined ? -1 : graph.nodes.findIndex((n) => n.name === start);
  const iEnd = graph.nodes.findIndex((n) => n.name === end.name);
  for (let i = iStart + 1; i < iEnd; i++) {
    const n = graph.nodes[i];
    const last = n.ops[n.ops.length - 1];
    const isRelu = last.kind === "activation" && last.params.activation === "relu";
    if (isRelu && spatialSize(n) !== undefined && graph.isAncestor(n.name, end.name)) {
      return blockOutput(graph, n.name);
    }
  }
  return blockOutput(graph, graph.abovePadding(end.inputs[0]));
}

const MERGE_KINDS = new Set(["add", "average", "concat"]);

/**
 * The block output at or above `name` at the same resolution: walking up the trunk, the
 * first merge (residual `Add`, dense / Inception `Concatenate`) or activation of a merge;
 * `name` itself when no merge comes before a resolution change (plain chains).
 */
function lastMerge(graph: ModelGraph, name: string): string {
  const trunk = trunkNodes(graph);
  const size = spatialSize(graph.node(name) ?? graph.nodes[0]);
  let cur = graph.node(name);
  while (cur) {
    if (!trunk.has(cur.name) || spatialSize(cur) !== size || cur.reducesResolution) break;
    const kind = cur.ops[0]?.kind ?? "";
    if (MERGE_KINDS.has(kind)) return cur.name;
    const src = cur.inputs.length === 1 ? graph.node(cur.inputs[0]) : undefined;
    if (kind === "activation" && src && MERGE_KINDS.has(src.ops[0]?.kind ?? "")) return cur.name;
    cur = src;
  }
  return name;
}

/**
 * A block output for a candidate layer: a node off the trunk (one branch of an Inception
 * module, a residual branch) is replaced by the nearest trunk node upstream; a
 * pre-activation tensor (batch norm, conv, add) whose only consumer is an element-wise
 * activation by that activation's output.
 */
function blockOutput(graph: ModelGraph, name: string): string {
  const trunk = trunkNodes(graph);
  let cur = name;
  if (!trunk.has(cur) && cur !== graph.inputName) {
    const ups = graph.ancestorsOf(cur);
    const nodes = graph.nodes;
    cur = graph.inputName;
    for (let i = nodes.length - 1; i >= 0; i--) {
      if (trunk.has(nodes[i].name) && ups.has(nodes[i].name)) {
        cur = nodes[i].name;
        break;
      }
    }
  }
  const node = graph.node(cur);
  const last = node?.ops[node.ops.length - 1];
  if (node && last && last.kind !== "activation") {
    const next = graph.consumersOf(cur);
    const op = next.length === 1 && next[0].ops.length === 1 ? next[0].ops[0] : undefined;
    if (op?.kind === "activation" && !["softmax", "logSoftmax"].includes(op.params.activation!)) {
      return next[0].name;
    }
  }
  return cur;
}

/**
 * The default contrast layer for a saliency layer: the global-average-pool output when the
 * classifier is fed by one and the saliency layer lies before it (TorchRay's ResNet recipe),
 * else the saliency layer itself (TorchRay's VGG recipe).
 */
export function defaultContrastLayer(graph: ModelGraph, saliencyLayer: string): string {
  const gap = graph.globalPoolHead();
  return gap !== undefined && graph.isAncestor(saliencyLayer, gap) ? gap : saliencyLayer;
}

// ---------------------------------------------------------------------------------------
// Plans and the two methods.

/** Everything one run needs, resolved and validated. */
interface Plan {
  layer: string;
  classifier: string;
  contrast: string;
  dropContrast: boolean;
  plainAdd: boolean;
  mainScope: Set<string>;
  contrastScope: Set<string>;
}

/** The options excitation backprop declares. */
export const EB_OPTIONS = {
  classifier: {
    type: "layer",
    doc: "the classifier layer (default: the last layer with a kernel)",
  },
  plainAdd: {
    type: "boolean",
    default: false,
    doc: "residual adds pass the ordinary gradient instead of the share rule " +
      "(TorchRay on a ResNet without update_resnet)",
  },
} as const satisfies OptionSpecs;

/** The options contrastive excitation backprop declares. */
export const CEB_OPTIONS = {
  ...EB_OPTIONS,
  contrastLayer: {
    type: "layer",
    doc: "where the contrast is subtracted (default: see defaultContrastLayer)",
  },
  dropContrast: {
    type: "boolean",
    default: false,
    doc: "drop the contrast: max(0, EB), as the paper's code on torch < 2",
  },
} as const satisfies OptionSpecs;

/** Validated options of {@linkcode excitationBackprop}. */
export type EbOptions = OptionValues<typeof EB_OPTIONS>;

/** Validated options of {@linkcode contrastiveExcitationBackprop}. */
export type CebOptions = OptionValues<typeof CEB_OPTIONS>;

/** A named layer option, checked against the graph (undefined when not given). */
function namedLayer(graph: ModelGraph, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  checkLayer(graph, name);
  return name;
}

function makePlan(
  who: string,
  graph: ModelGraph,
  layer: string | undefined,
  options: EbOptions & Partial<CebOptions>,
  contrastive: boolean,
): Plan {
  if (!layer) throw new Error(`${who}: the model has no layer with a spatial output`);
  checkLayer(graph, layer);
  const classifier = namedLayer(graph, options.classifier) ?? graph.classifierLayer;
  if (!classifier) {
    throw new Error(`${who}: the model has no layer with a kernel (Conv2D / Dense) to explain`);
  }
  const cnode = graph.node(classifier);
  if (!cnode?.hasKernel) {
    throw new Error(`${who}: classifier '${classifier}' is not a layer with a kernel`);
  }
  const score = graph.scoreName;
  if (classifier !== score && !graph.isAncestor(classifier, score)) {
    throw new Error(`${who}: classifier '${classifier}' does not feed the class scores`);
  }
  if (!graph.isAncestor(layer, classifier)) {
    throw new Error(
      `${who}: saliency layer '${layer}' must lie before the classifier '${classifier}'`,
    );
  }
  const lnode = graph.node(layer);
  const shape = lnode ? lnode.outputShape : graph.inputShape;
  if (shape.length !== 4) {
    throw new Error(
      `${who}: layer '${layer}' has output shape [${shape}]; the maps need a 4-D [N, H, W, C] layer`,
    );
  }
  const dropContrast = contrastive && options.dropContrast === true;
  const plainAdd = options.plainAdd;
  let contrast = layer;
  if (contrastive && !dropContrast) {
    contrast = namedLayer(graph, options.contrastLayer) ?? defaultContrastLayer(graph, layer);
    if (contrast !== layer && !graph.isAncestor(layer, contrast)) {
      throw new Error(
        `${who}: contrast layer '${contrast}' must be the saliency layer '${layer}' or lie after it`,
      );
    }
    if (!graph.isAncestor(contrast, classifier)) {
      throw new Error(
        `${who}: contrast layer '${contrast}' must lie before the classifier '${classifier}'`,
      );
    }
  }
  const mainScope = graph.pathToScores(layer);
  checkRules(graph, mainScope);
  const contrastScope = graph.pathToScores(contrast);
  return { layer, classifier, contrast, dropContrast, plainAdd, mainScope, contrastScope };
}

function requirements(plan: Plan): Requirements {
  return { gradientsFrom: [plan.layer] };
}

/** The EB signal at `plan.layer` for the seed (one backward pass; caller owns the result). */
function ebSignal(pass: Pass, seed: Tensor, plan: Plan): Tensor {
  return pass.backward(seed, {
    wrt: [plan.layer],
    rule: excitationRule({ scope: plan.mainScope, plainAdd: plan.plainAdd }),
  })[0];
}

/**
 * The c-EB signal at `plan.layer`: two backward passes over the same forward pass, sharing
 * the excitation denominators of the layers they both cross.
 */
function cebSignal(pass: Pass, seed: Tensor, plan: Plan, inputName: string): Tensor {
  const denominators = new Map<string, Tensor>();
  let contrast: Tensor | undefined;
  try {
    [contrast] = pass.backward(seed, {
      wrt: [plan.contrast],
      rule: excitationRule({
        scope: plan.contrastScope,
        negate: plan.classifier,
        denominators,
        plainAdd: plan.plainAdd,
      }),
    });
    const c = contrast;
    const subtract = (g: Tensor): Tensor => g.sub(c);
    if (plan.contrast === inputName) {
      // The executor transforms node outputs only; the input is the saliency layer here.
      const p = ebSignal(pass, seed, plan);
      const out = tf.tidy(() => subtract(p));
      p.dispose();
      return out;
    }
    return pass.backward(seed, {
      wrt: [plan.layer],
      rule: excitationRule({ scope: plan.mainScope, denominators, plainAdd: plan.plainAdd }),
      transform: { [plan.contrast]: subtract },
    })[0];
  } finally {
    contrast?.dispose();
    for (const z of denominators.values()) z.dispose();
  }
}

function maps(ctx: MethodContext, name: string, plan: Plan, m: Tensor3D): SaliencyMaps {
  return {
    maps: m,
    method: name,
    layer: plan.layer,
    classes: ctx.targets.classes,
    resolution: [m.shape[1], m.shape[2]],
  };
}

/**
 * Excitation backprop (`excitation-backprop`, alias `eb`): the channel sum (not clamped) of
 * the EB signal of the target at the saliency layer, TorchRay's `excitation_backprop`.
 * One backward pass on the shared forward pass.
 */
export const excitationBackprop: SaliencyMethod<EbOptions> = {
  kind: "method",
  apiVersion: PLUGIN_API_VERSION,
  name: "excitation-backprop",
  aliases: ["eb"],
  description: "Excitation backprop: top-down winner-take-all probabilities, channel-summed",
  usesRules: true,
  options: EB_OPTIONS,
  defaultLayer: (graph: ModelGraph): string | undefined => defaultSaliencyLayer(graph),
  requires(graph: ModelGraph, layer: string | undefined, options: EbOptions): Requirements {
    return requirements(makePlan("excitation-backprop", graph, layer, options, false));
  },
  run(ctx: MethodContext<EbOptions>): SaliencyMaps {
    const graph = ctx.session.graph;
    const plan = makePlan("excitation-backprop", graph, ctx.layer, ctx.options, false);
    const seed = ctx.targets.seed(ctx.pass.scores);
    let signal: Tensor;
    try {
      signal = ebSignal(ctx.pass, seed, plan);
    } finally {
      seed.dispose();
    }
    const m = tf.tidy(() => signal.sum(-1) as Tensor3D);
    signal.dispose();
    return maps(ctx, "excitation-backprop", plan, m);
  },
};

/**
 * Contrastive excitation backprop (`contrastive-excitation-backprop`, aliases `c-eb`, `ceb`):
 * TorchRay's `contrastive_excitation_backprop`. Options `classifier`, `contrastLayer`,
 * `dropContrast` (see the module doc). Two backward passes (one with `dropContrast`) on the
 * shared forward pass.
 */
export const contrastiveExcitationBackprop: SaliencyMethod<CebOptions> = {
  kind: "method",
  apiVersion: PLUGIN_API_VERSION,
  name: "contrastive-excitation-backprop",
  aliases: ["c-eb", "ceb"],
  description: "Contrastive excitation backprop: EB of the target minus EB of its negation",
  usesRules: true,
  options: CEB_OPTIONS,
  defaultLayer: (graph: ModelGraph): string | undefined => defaultSaliencyLayer(graph),
  requires(graph: ModelGraph, layer: string | undefined, options: CebOptions): Requirements {
    return requirements(makePlan("contrastive-excitation-backprop", graph, layer, options, true));
  },
  run(ctx: MethodContext<CebOptions>): SaliencyMaps {
    const name = "contrastive-excitation-backprop";
    const graph = ctx.session.graph;
    const plan = makePlan(name, graph, ctx.layer, ctx.options, true);
    const seed = ctx.targets.seed(ctx.pass.scores);
    let signal: Tensor;
    try {
      signal = plan.dropContrast
        ? ebSignal(ctx.pass, seed, plan)
        : cebSignal(ctx.pass, seed, plan, graph.inputName);
    } finally {
      seed.dispose();
    }
    const m = tf.tidy(() => tf.relu(signal.sum(-1)) as Tensor3D);
    signal.dispose();
    return maps(ctx, name, plan, m);
  },
};

/** Both methods (the module's default export, for `registry.load`). */
const plugins: SaliencyMethod[] = [
  excitationBackprop as SaliencyMethod,
  contrastiveExcitationBackprop as SaliencyMethod,
];
export default plugins;
