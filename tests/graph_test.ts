// Tests of the graph queries (core/graph.ts): the structural questions the executor and the
// methods ask, answered by the graph itself.
import { initBackend } from "../backend/mod.ts";
import { readGraph } from "../core/graph.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { pytorchPoolPadding } from "../core/pool_padding.ts";
import { ModelSession } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import { assert, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });

/**
 * img -> pad -> pool -> c1 -> r1 -> { b, add(r1, b) } -> r2 -> gap -> fc (softmax fused):
 * a padded max-pool stem, a residual block with a side branch and a global-average-pool head.
 */
function residualNet(): tf.LayersModel {
  const L = tf.layers;
  const sym = (t: unknown) => t as tf.SymbolicTensor;
  const x = tf.input({ shape: [16, 16, 3], name: "img" });
  const pad = sym(L.zeroPadding2d({ padding: 1, name: "pad" }).apply(x));
  const pool = sym(L.maxPooling2d({ poolSize: 3, strides: 2, name: "pool" }).apply(pad));
  const c1 = sym(L.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "c1" }).apply(pool));
  const r1 = sym(L.activation({ activation: "relu", name: "r1" }).apply(c1));
  const b = sym(L.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "b" }).apply(r1));
  const add = sym(L.add({ name: "add" }).apply([r1, b]));
  const r2 = sym(L.activation({ activation: "relu", name: "r2" }).apply(add));
  const gap = sym(L.globalAveragePooling2d({ name: "gap" }).apply(r2));
  const fc = sym(L.dense({ units: 3, activation: "softmax", name: "fc" }).apply(gap));
  return tf.model({ inputs: x, outputs: fc });
}

const names = (s: Iterable<string>): string[] => [...s].sort();

Deno.test("graph queries: nodes, ancestors, consumers, paths, padding and the pooling head", () => {
  const before = tf.memory().numTensors;
  const model = residualNet();
  try {
    const g = readGraph(model);
    assertEquals(g.node("c1")?.className, "Conv2D");
    assertEquals(g.node("img"), undefined, "the input is not a node");
    assertEquals(g.node("nope"), undefined);
    assertEquals(names(g.ancestorsOf("add")), ["b", "c1", "img", "pad", "pool", "r1"]);
    assertEquals(g.ancestorsOf("img").size, 0);
    assertEquals(g.ancestorsOf("nope").size, 0);
    assert(g.isAncestor("r1", "add") && g.isAncestor("img", "fc"));
    assert(!g.isAncestor("add", "r1") && !g.isAncestor("add", "add"), "strictly upstream");
    assertEquals(g.consumersOf("r1").map((n) => n.name), ["b", "add"], "execution order");
    assertEquals(g.consumersOf("fc"), []);
    assertEquals(names(g.between(new Set(["b"]))), ["add", "b", "fc", "gap", "r2"]);
    assertEquals(names(g.between(new Set(["img"]))), names(["img", ...g.nodes.map((n) => n.name)]));
    // The scores are fc's pre-softmax output: a backward pass from them down to r1.
    assertEquals([g.scoreName, g.scoreIsPreSoftmax], ["fc", true]);
    assertEquals(names(g.pathToScores("r1")), ["add", "b", "fc", "gap", "r2"]);
    assertEquals(names(g.pathToScores("r2")), ["fc", "gap"]);
    assertEquals([g.abovePadding("pad"), g.abovePadding("pool")], ["img", "pool"]);
    assertEquals(g.globalPoolHead(), "gap");
    // The session answers with its graph.
    const session = new ModelSession(g);
    assertEquals(session.ancestorsOf("add"), g.ancestorsOf("add"));
    assert(session.isAncestor("pool", "r2"));
  } finally {
    model.dispose();
  }
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("graph queries: a rewritten graph answers from its own nodes", () => {
  const before = tf.memory().numTensors;
  const model = residualNet();
  try {
    const g = readGraph(model);
    const folded = pytorchPoolPadding(g); // the pad node folds into the pool
    assert(folded !== g && folded.node("pad") === undefined, "pad folded away");
    assertEquals(names(folded.ancestorsOf("c1")), ["img", "pool"]);
    assertEquals(folded.consumersOf("img").map((n) => n.name), ["pool"]);
    assertEquals(folded.abovePadding("pool"), "pool");
    assertEquals(folded.globalPoolHead(), "gap");
    // The original graph keeps its own answers.
    assertEquals(names(g.ancestorsOf("c1")), ["img", "pad", "pool"]);
    assertEquals(g.consumersOf("img").map((n) => n.name), ["pad"]);
  } finally {
    model.dispose();
  }
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("graph queries: no pooling head on a flattening classifier (vgg_tiny)", async () => {
  const before = tf.memory().numTensors;
  const model = await loadLayersModel(
    new URL("./fixtures/models/vgg_tiny/tfjs/model.json", import.meta.url),
  );
  try {
    const g = readGraph(model);
    assert(g.classifierLayer !== undefined, "it has a classifier");
    assertEquals(g.globalPoolHead(), undefined);
  } finally {
    model.dispose();
  }
  assertEquals(tf.memory().numTensors, before);
});
