/**
 * PyTorch-style max-pool padding: a graph rewrite that runs every `ZeroPadding2D` feeding a
 * `valid` max-pool as ONE max-pool whose padding never wins (PyTorch pads `MaxPool2d` with
 * -inf).
 *
 * A PyTorch `MaxPool2d(k, s, padding=p)` exported to Keras becomes `ZeroPadding2D(p)` +
 * `MaxPooling2D(k, s, "valid")`. Forward values agree when the input is non-negative (a ReLU
 * output), but the backward pass does not: at a border window whose real maximum is exactly 0
 * the padded zero ties with it, and a zero-padded pool sends the window's gradient into the
 * padding (where it is dropped), while PyTorch sends it to the first real maximum. Ordinary
 * ReLU backward zeroes those paths anyway; deconvnet's does not. Both behaviours are
 * legitimate (the zero-padded one is the Keras model's own semantics), so the rewrite is an
 * option of the model session, set when the model comes from PyTorch (fixture sets, a future
 * PyTorch / ONNX import).
 *
 * The rewrite works on graph facts only (node classes, op kinds and parameters), so any front
 * end that produces a {@linkcode ModelGraph} can use it.
 *
 * @module
 */
import { type LayerNode, type ModelGraph, withQueries } from "./graph.ts";
import type { Op } from "./layer_ops.ts";
import { maxPoolInputGrad, type Tensor4D, tf } from "./tensor.ts";

/** How a model session treats a zero padding that feeds a `valid` max-pool. */
export type PoolPadding = "zeros" | "pytorch";

/** The symmetric padding of a pad node, when it is one that PyTorch's pools can express. */
function symmetricPad(node: LayerNode): number | undefined {
  if (node.ops.length !== 1 || node.ops[0].kind !== "pad") return undefined;
  const pads = node.ops[0].params.pads;
  if (!pads) return undefined;
  const [[t, b], [l, r]] = pads;
  return t === b && l === r && t === l && t > 0 ? t : undefined;
}

/** One max-pool with numeric padding (padded cells never win, forward and backward). */
function paddedMaxPool(pool: Op, pad: number): Op {
  const size = pool.params.pool!;
  const strides = pool.params.strides!;
  return {
    kind: "max_pool",
    layer: pool.layer,
    className: pool.className,
    params: { pool: size, strides, pads: [[pad, pad], [pad, pad]] },
    forward: ([x]) => tf.maxPool(x as Tensor4D, size, strides, pad),
    backward: (dy, [x]) => [maxPoolInputGrad(x as Tensor4D, dy as Tensor4D, size, strides, pad)],
  };
}

/**
 * Returns `graph` with every zero padding that feeds only a `valid` max-pool folded into that
 * pool as -inf padding (PyTorch's `MaxPool2d(padding=p)`). The padding node disappears from
 * the graph (its name is no longer a layer); the pool keeps its name and output. Paddings that
 * are asymmetric, wider than half the window, or also feed other layers are left alone.
 * Returns the same object when nothing matches.
 */
export function pytorchPoolPadding(graph: ModelGraph): ModelGraph {
  const fused = new Map<string, { pad: LayerNode; amount: number }>();
  for (const n of graph.nodes) {
    const amount = symmetricPad(n);
    const users = graph.consumersOf(n.name);
    if (amount === undefined || users.length !== 1 || n.inputs.length !== 1) continue;
    const pool = users[0];
    const op = pool.ops[0];
    const valid = op?.kind === "max_pool" && op.params.padding === "valid";
    const window = op?.params.pool;
    if (
      !valid || pool.ops.length !== 1 || !window || amount > Math.floor(window[0] / 2) ||
      amount > Math.floor(window[1] / 2) || n.name === graph.outputName
    ) continue;
    fused.set(pool.name, { pad: n, amount });
  }
  if (fused.size === 0) return graph;
  const dropped = new Set([...fused.values()].map((f) => f.pad.name));
  const nodes = graph.nodes.filter((n) => !dropped.has(n.name)).map((n): LayerNode => {
    const f = fused.get(n.name);
    if (!f) return n;
    return { ...n, inputs: f.pad.inputs, ops: [paddedMaxPool(n.ops[0], f.amount)] };
  });
  return withQueries({ ...graph, nodes });
}
