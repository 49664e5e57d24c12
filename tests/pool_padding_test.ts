import { initBackend } from "../backend/mod.ts";
import { pytorchPoolPadding } from "../core/pool_padding.ts";
import { ModelSession } from "../core/session.ts";
import { readGraph } from "../core/graph.ts";
import { oneHotSeed } from "../core/targets.ts";
import { type LayersModel, tf } from "../core/tensor.ts";
import { assert, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });

/** input 6x6x1 -> pad(s) -> max-pool 3/2 -> flatten -> dense 2, plus an optional side branch. */
function model(pad: [[number, number], [number, number]], sideBranch = false): LayersModel {
  const x = tf.input({ shape: [6, 6, 1], name: "x" });
  const p = tf.layers.zeroPadding2d({ padding: pad, name: "pad" }).apply(x) as tf.SymbolicTensor;
  const m = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "valid", name: "pool" })
    .apply(p) as tf.SymbolicTensor;
  let f = tf.layers.flatten({ name: "flat" }).apply(m) as tf.SymbolicTensor;
  if (sideBranch) {
    const s = tf.layers.flatten({ name: "side" }).apply(p) as tf.SymbolicTensor;
    f = tf.layers.concatenate({ name: "cat" }).apply([f, s]) as tf.SymbolicTensor;
  }
  const d = tf.layers.dense({ units: 2, name: "fc", kernelInitializer: "ones" })
    .apply(f) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: d });
}

Deno.test("pool padding: only a symmetric zero padding feeding only a valid max-pool is folded", () => {
  const sym = model([[1, 1], [1, 1]]);
  const asym = model([[0, 1], [0, 1]]);
  const shared = model([[1, 1], [1, 1]], true);
  try {
    const g = pytorchPoolPadding(readGraph(sym));
    assertEquals(g.nodes.map((n) => n.name), ["pool", "flat", "fc"]);
    assertEquals(g.nodes[0].inputs, ["x"]);
    assertEquals(g.nodes[0].ops[0].params.pads, [[1, 1], [1, 1]]);
    assertEquals(g.reducingLayers, ["pool"]);
    // Left alone: asymmetric padding (not a PyTorch pool), padding also used elsewhere.
    const ga = readGraph(asym);
    assert(pytorchPoolPadding(ga) === ga);
    const gs = readGraph(shared);
    assert(pytorchPoolPadding(gs) === gs);
  } finally {
    [sym, asym, shared].forEach((m) => m.dispose());
  }
});

Deno.test("pool padding: -inf padding in the forward pass, PyTorch's routing in the backward", () => {
  const m = model([[1, 1], [1, 1]]);
  const before = tf.memory().numTensors;
  const keras = new ModelSession(m);
  const torch = new ModelSession(m, { poolPadding: "pytorch" });
  // All-negative input: a zero-padded pool sees 0 at the border, PyTorch's the real maximum.
  const neg = tf.tidy(() => tf.range(1, 37).reshape([1, 6, 6, 1]).neg() as tf.Tensor4D);
  // All-zero input: every window ties; the zero-padded pool's first maximum at the top-left
  // border is a padded cell (gradient dropped), PyTorch's is the first real cell.
  const zero = tf.zeros([1, 6, 6, 1]) as tf.Tensor4D;
  const seed = oneHotSeed([0], 2);
  try {
    const poolOut = (s: ModelSession, x: tf.Tensor4D): number[] => {
      const pass = s.forward(x, { record: ["pool"] });
      const v = Array.from(pass.activation("pool").dataSync());
      pass.dispose();
      return v;
    };
    // Window (0,0) covers input rows / cols 0..1 plus padding: 0 with zeros, -1 with -inf.
    assertEquals(poolOut(keras, neg)[0], 0);
    assertEquals(poolOut(torch, neg)[0], -1);
    // Windows inside the input agree.
    assertEquals(poolOut(keras, neg)[4], poolOut(torch, neg)[4]);
    const inputGrad = (s: ModelSession): number[] => {
      const pass = s.forward(zero, { gradientsFrom: ["x"] });
      const [g] = pass.backward(seed, { wrt: ["x"] });
      const v = Array.from(g.dataSync());
      g.dispose();
      pass.dispose();
      return v;
    };
    const gk = inputGrad(keras);
    const gt = inputGrad(torch);
    // Every output window sends 1 (dense kernel of ones) to its first maximum.
    assertEquals(gt.reduce((a, b) => a + b, 0), 9); // all 9 windows land on real cells
    assertEquals(gk.reduce((a, b) => a + b, 0), 4); // 5 border windows pick a padded zero
    assertEquals(gt[0], 1); // window (0,0): first real cell (0,0)
    assertEquals(gk[0], 0);
  } finally {
    tf.dispose([neg, zero, seed]);
    m.dispose();
  }
  assertEquals(tf.memory().numTensors, before - 2, "tensors leaked"); // the model's 2 weights
});
