/**
 * The model session: runs an executable graph ({@linkcode ModelGraph}: nodes of ops with
 * their parameters, inputs and output shapes) with the toolkit's own executor so that ONE
 * forward pass can record the outputs of any layers, and any number of backward passes over
 * that same forward can return gradients at any recorded layer, optionally with backward
 * rules that replace an op kind's gradient (excitation backprop, guided backprop, ...).
 *
 * The executor does not know where the graph comes from: front ends compile a model into
 * it (a tfjs LayersModel through `readGraph`, a tfjs GraphModel through
 * `core/frontends/graph_model.ts`), and every method works the same on all of them.
 *
 * Backward work stops at the shallowest layer whose gradient was asked for: only the part
 * of the graph between that layer and the output is kept and differentiated.
 *
 * @module
 */
import { checkLayer, type LayerNode, type ModelGraph, readGraph } from "./graph.ts";
import type { Op } from "./layer_ops.ts";
import { pytorchPoolPadding } from "./pool_padding.ts";
import { type LayersModel, type Tensor, type Tensor2D, type Tensor4D, tf } from "./tensor.ts";

/** What a backward rule is given for one op. */
export interface RuleContext {
  /** The op (kind, layer name, parameters such as kernel and bias). */
  readonly op: Op;
  /** The graph node the op belongs to. */
  readonly node: LayerNode;
  /** The op's inputs from the forward pass. */
  readonly inputs: readonly Tensor[];
  /** The op's output from the forward pass. */
  readonly output: Tensor;
  /** The signal arriving at the op's output. */
  readonly dy: Tensor;
  /** The op's ordinary gradient (the default rule). */
  readonly standard: () => Tensor[];
}

/**
 * A backward rule: returns the signal for each input of the op, or `undefined` to use the
 * op's ordinary gradient. Tensors it returns are owned by the executor.
 */
export type BackwardRule = (ctx: RuleContext) => Tensor[] | undefined;

/** Options of {@linkcode ForwardPass.backward}. */
export interface BackwardOptions {
  /** Layers whose output gradient to return (must have been declared in `gradientsFrom`). */
  wrt: readonly string[];
  /** Optional rule replacing ops' gradients. */
  rule?: BackwardRule;
  /**
   * Transform the signal at a layer's output before it propagates further down (c-EB
   * subtracts its contrast here). Keys are layer names. Returned tensors are owned by the
   * executor.
   */
  transform?: Readonly<Record<string, (signal: Tensor) => Tensor>>;
}

/** Options of {@linkcode ModelSession.forward}. */
export interface ForwardOptions {
  /** Layer outputs to keep after the pass (activations for methods and extrapolators). */
  record?: readonly string[];
  /**
   * Layers whose output gradient may be asked for later; everything between the shallowest
   * of them and the output is kept for the backward passes.
   */
  gradientsFrom?: readonly string[];
}

/** One forward pass as methods and extrapolators see it ({@linkcode ForwardPass}). */
export interface Pass {
  /** The class scores `[N, classes]` that targets refer to (pre-softmax where possible). */
  readonly scores: Tensor2D;
  /** The input batch `[N, H, W, C]` (owned by the caller). */
  readonly input: Tensor4D;
  /** Batch size. */
  readonly batchSize: number;
  /** The recorded output of a layer (owned by the pass). */
  activation(layer: string): Tensor;
  /** Whether a layer's output was recorded. */
  has(layer: string): boolean;
  /** A backward pass from `seed` at the scores; returns gradients the caller owns. */
  backward(seed: Tensor, opts: BackwardOptions): Tensor[];
  /** Frees the pass's tensors. */
  dispose(): void;
}

/** A model prepared for saliency (whatever front end compiled it). */
export interface Session {
  /** Graph facts. */
  readonly graph: ModelGraph;
  /** Input height, width and channels. */
  readonly inputSize: [number, number, number];
  /**
   * Whether backward rules (excitation backprop, guided backprop, ...) are supported (true
   * for every model the executor runs; kept for plugins written against older sessions).
   */
  readonly supportsRules: boolean;
  /** Runs one forward pass keeping what later backward passes and readers need. */
  forward(input: Tensor4D, opts?: ForwardOptions): Pass;
  /** Class scores of a batch (pre-softmax where possible). */
  predict(input: Tensor4D): Tensor2D;
}

interface Saved {
  inputs: Tensor[];
  outputs: Tensor[]; // per op
}

/**
 * The recorded state of one forward pass. Owns its tensors: call {@linkcode dispose}.
 */
export class ForwardPass implements Pass {
  readonly #session: ModelSession;
  readonly #values: Map<string, Tensor>;
  readonly #saved: Map<string, Saved>;
  readonly #gradFrom: Set<string>;
  readonly #scoreShape: readonly number[];
  #disposed = false;
  /** The class scores `[N, classes]` that targets refer to (pre-softmax where possible). */
  readonly scores: Tensor2D;
  /** The model output (after a final softmax, if any). */
  readonly output: Tensor;
  /** The input batch `[N, H, W, C]` (owned by the caller, not disposed by the pass). */
  readonly input: Tensor4D;

  /** @internal Use {@linkcode ModelSession.forward}. */
  constructor(
    session: ModelSession,
    input: Tensor4D,
    values: Map<string, Tensor>,
    saved: Map<string, Saved>,
    gradFrom: Set<string>,
    scores: Tensor2D,
    output: Tensor,
    scoreShape: readonly number[],
  ) {
    this.#session = session;
    this.#scoreShape = scoreShape;
    this.input = input;
    this.#values = values;
    this.#saved = saved;
    this.#gradFrom = gradFrom;
    this.scores = scores;
    this.output = output;
  }

  /** Batch size. */
  get batchSize(): number {
    return this.input.shape[0];
  }

  /** The recorded output of a layer (owned by the pass). */
  activation(layer: string): Tensor {
    this.#check();
    if (layer === this.#session.graph.inputName) return this.input;
    const v = this.#values.get(layer);
    if (!v) {
      checkLayer(this.#session.graph, layer);
      throw new Error(`layer '${layer}' was not recorded in this forward pass`);
    }
    return v;
  }

  /** Whether a layer's output was recorded. */
  has(layer: string): boolean {
    return layer === this.#session.graph.inputName || this.#values.has(layer);
  }

  /**
   * One backward pass over this forward: propagates `seed` (the signal at the scores,
   * `[N, classes]`) down to the requested layers and returns their gradients (owned by
   * the caller, in the order of `wrt`). Can be called several times on the same pass.
   */
  backward(seed: Tensor, opts: BackwardOptions): Tensor[] {
    this.#check();
    const graph = this.#session.graph;
    for (const w of opts.wrt) {
      checkLayer(graph, w);
      if (!this.#covered(w)) {
        throw new Error(
          `layer '${w}' was not declared in gradientsFrom of this forward pass`,
        );
      }
    }
    const want = new Set(opts.wrt);
    // Only the part of the graph between the requested layers and the scores is walked.
    const needed = this.#session.between(want);
    return tf.tidy(() => {
      const nodes = graph.nodes;
      // The seed enters at the score tensor: the input of the score node's softmax op when
      // the softmax is fused into it, else the score node's output.
      const startName = graph.scoreName;
      const startIndex = nodes.findIndex((n) => n.name === startName);
      const result = new Map<string, Tensor>();
      const start = seed.reshape(this.#scoreShape as number[]);
      const pending = new Map<string, Tensor>([[startName, start]]);
      for (let i = startIndex; i >= 0; i--) {
        const node = nodes[i];
        let dy = pending.get(node.name);
        if (!dy) continue;
        pending.delete(node.name);
        const tr = opts.transform?.[node.name];
        if (tr) dy = tr(dy);
        if (want.has(node.name)) result.set(node.name, tf.keep(dy.clone()));
        const saved = this.#saved.get(node.name);
        if (!saved) continue; // below this node nothing is needed
        if (!node.inputs.some((src) => needed.has(src))) continue;
        const skipSoftmax = graph.scoreIsPreSoftmax && node.name === graph.scoreName;
        let g = dy;
        for (let k = node.ops.length - 1 - (skipSoftmax ? 1 : 0); k >= 0; k--) {
          const op = node.ops[k];
          const ins = k === 0 ? saved.inputs : [saved.outputs[k - 1]];
          const out = saved.outputs[k];
          const signal = g;
          const ctx: RuleContext = {
            op,
            node,
            inputs: ins,
            output: out,
            dy: signal,
            standard: () => op.backward(signal, ins, out),
          };
          const gs = opts.rule?.(ctx) ?? ctx.standard();
          if (k > 0) {
            g = gs[0];
            continue;
          }
          node.inputs.forEach((src, j) => {
            if (!needed.has(src)) return;
            const prev = pending.get(src);
            pending.set(src, prev ? prev.add(gs[j]) : gs[j]);
          });
        }
      }
      if (want.has(graph.inputName)) {
        let gi = pending.get(graph.inputName);
        const tr = opts.transform?.[graph.inputName];
        if (gi && tr) gi = tr(gi);
        result.set(graph.inputName, tf.keep(gi ? gi.clone() : tf.zerosLike(this.input)));
      }
      for (const w of opts.wrt) {
        if (!result.has(w)) result.set(w, tf.keep(tf.zerosLike(this.activation(w))));
      }
      return opts.wrt.map((w) => result.get(w)!);
    });
  }

  #covered(layer: string): boolean {
    for (const g of this.#gradFrom) {
      if (g === layer || this.#session.isAncestor(g, layer)) return true;
    }
    return false;
  }

  #check(): void {
    if (this.#disposed) throw new Error("this forward pass has been disposed");
  }

  /** Frees every tensor the pass holds. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const all = new Set<Tensor>();
    for (const v of this.#values.values()) all.add(v);
    for (const s of this.#saved.values()) {
      s.inputs.forEach((t) => all.add(t));
      s.outputs.forEach((t) => all.add(t));
    }
    all.add(this.scores);
    all.add(this.output);
    all.delete(this.input);
    for (const t of all) if (!t.isDisposed) t.dispose();
  }
}

/** Options of {@linkcode ModelSession}. */
export interface ModelSessionOptions {
  /**
   * `zeros` (default): the model's own semantics. `pytorch`: a ZeroPadding2D that feeds a
   * `valid` max-pool runs as one max-pool with -inf padding, like PyTorch's
   * `MaxPool2d(padding=p)` (see `core/pool_padding.ts`); set it for models exported from
   * PyTorch.
   */
  readonly poolPadding?: "zeros" | "pytorch";
  /**
   * Tensors the front end created for the graph (converted weights), freed by
   * {@linkcode ModelSession.dispose}; a LayersModel's own weights stay the model's.
   */
  readonly owned?: readonly Tensor[];
}

/**
 * A model prepared for saliency: its executable graph (with the graph facts) plus the
 * executor. Built from a tfjs LayersModel directly, or from the graph any front end
 * compiled (see `compileModel` in `core/frontends/mod.ts`).
 *
 * @example
 * ```ts
 * import { ModelSession } from "./session.ts";
 * // const session = new ModelSession(await loadLayersModel("model.json"));
 * // const pass = session.forward(x, { record: ["block5_conv3"], gradientsFrom: ["block5_conv3"] });
 * // const [g] = pass.backward(seed, { wrt: ["block5_conv3"] });
 * // pass.dispose();
 * ```
 */
export class ModelSession implements Session {
  /** The executable graph and its facts. */
  readonly graph: ModelGraph;
  readonly #owned: Tensor[];

  /** Per-op backward rules are supported. */
  readonly supportsRules = true;

  /**
   * Wraps a LayersModel (its graph is read once) or an executable graph a front end
   * compiled.
   */
  constructor(source: LayersModel | ModelGraph, options: ModelSessionOptions = {}) {
    const graph = isGraph(source) ? source : readGraph(source);
    this.graph = options.poolPadding === "pytorch" ? pytorchPoolPadding(graph) : graph;
    this.#owned = [...(options.owned ?? [])];
  }

  /** Frees the tensors the front end created for the graph (not the model's weights). */
  dispose(): void {
    for (const t of this.#owned) if (!t.isDisposed) t.dispose();
    this.#owned.length = 0;
  }

  /** Input height, width and channels. */
  get inputSize(): [number, number, number] {
    const s = this.graph.inputShape;
    return [Number(s[1]), Number(s[2]), Number(s[3])];
  }

  /** All layers the node `name` depends on (transitively), input included: the graph's query. */
  ancestorsOf(name: string): Set<string> {
    return this.graph.ancestorsOf(name);
  }

  /** Whether `a` lies upstream of `b`: the graph's query. */
  isAncestor(a: string, b: string): boolean {
    return this.graph.isAncestor(a, b);
  }

  /** Nodes that lie on a path from any of `from` to the output (inclusive of `from`). */
  between(from: ReadonlySet<string>): Set<string> {
    return this.graph.between(from);
  }

  /**
   * Runs ONE forward pass over `input` (`[N, H, W, C]`, already preprocessed), keeping the
   * outputs of `record` layers and everything the backward passes from `gradientsFrom`
   * need. The returned pass owns its tensors (the input stays the caller's).
   */
  forward(input: Tensor4D, opts: ForwardOptions = {}): ForwardPass {
    const graph = this.graph;
    const [h, w, c] = this.inputSize;
    if (
      input.rank !== 4 || input.shape[3] !== c || (h && input.shape[1] !== h) ||
      (w && input.shape[2] !== w)
    ) {
      throw new Error(
        `input of shape [${input.shape}] does not fit the model input [N, ${h}, ${w}, ${c}]`,
      );
    }
    const record = new Set(opts.record ?? []);
    const gradFrom = new Set(opts.gradientsFrom ?? []);
    for (const l of [...record, ...gradFrom]) checkLayer(graph, l);
    const keepAll = this.between(gradFrom);
    // Remaining consumers of each tensor, to free intermediates early.
    const uses = new Map<string, number>();
    for (const n of graph.nodes) for (const s of n.inputs) uses.set(s, (uses.get(s) ?? 0) + 1);
    const live = new Map<string, Tensor>([[graph.inputName, input]]);
    const values = new Map<string, Tensor>();
    const saved = new Map<string, Saved>();
    let scores: Tensor2D | undefined;
    let output: Tensor | undefined;
    let scoreShape: number[] = [];
    const keepers = new Set<Tensor>([input]);
    for (const node of graph.nodes) {
      const ins = node.inputs.map((s) => live.get(s)!);
      const outs: Tensor[] = [];
      let cur = ins;
      for (const op of node.ops) {
        const y = tf.tidy(() => op.forward(cur));
        outs.push(y);
        cur = [y];
      }
      const y = outs[outs.length - 1];
      live.set(node.name, y);
      // Terminal gradient layers need no saved inputs: nothing propagates below them.
      const terminal = gradFrom.has(node.name) && !this.#gradBelow(node, gradFrom);
      if (keepAll.has(node.name) && !terminal) {
        saved.set(node.name, { inputs: ins, outputs: outs });
        ins.forEach((t) => keepers.add(t));
        outs.forEach((t) => keepers.add(t));
      }
      if (record.has(node.name)) {
        values.set(node.name, y);
        keepers.add(y);
      }
      if (node.name === graph.outputName) {
        output = y;
        keepers.add(y);
      }
      if (node.name === graph.scoreName) {
        scores = (graph.scoreIsPreSoftmax ? outs[outs.length - 2] : y) as Tensor2D;
        scoreShape = scores.shape;
        keepers.add(scores);
      }
      // Free what nobody needs any more.
      for (const t of outs.slice(0, -1)) if (!keepers.has(t)) t.dispose();
      for (const s of node.inputs) {
        const left = (uses.get(s) ?? 1) - 1;
        uses.set(s, left);
        if (left === 0) {
          const t = live.get(s)!;
          live.delete(s);
          if (!keepers.has(t)) t.dispose();
        }
      }
    }
    if (!output || !scores) throw new Error("internal: model output not computed");
    for (const [name, t] of live) {
      if (!keepers.has(t) && name !== graph.inputName) t.dispose();
    }
    if (scores.rank !== 2) {
      const s = scores;
      scores = tf.tidy(() => s.reshape([s.shape[0], -1]) as Tensor2D);
      const held = new Set<Tensor>([output, ...values.values()]);
      for (const v of saved.values()) [...v.inputs, ...v.outputs].forEach((t) => held.add(t));
      if (!held.has(s)) s.dispose();
    }
    return new ForwardPass(this, input, values, saved, gradFrom, scores, output, scoreShape);
  }

  #gradBelow(node: LayerNode, gradFrom: Set<string>): boolean {
    for (const g of gradFrom) if (g !== node.name && this.isAncestor(g, node.name)) return true;
    return false;
  }

  /** Plain prediction (scores, pre-softmax where the model ends in a softmax). */
  predict(input: Tensor4D): Tensor2D {
    const pass = this.forward(input);
    const s = pass.scores.clone();
    pass.dispose();
    return s;
  }
}

function isGraph(source: LayersModel | ModelGraph): source is ModelGraph {
  const g = source as Partial<ModelGraph>;
  return Array.isArray(g.nodes) && typeof g.scoreName === "string";
}
