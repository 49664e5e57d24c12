/**
 * Tests of `gradual+` (`plugins/gradual_plus.ts`): [0, 1] output with no plateau, one
 * non-negative factor per resolution stage (both built-in models and a hand-made residual
 * model), independence from the batch, no tensor leaks, and the paper's `gradual` untouched.
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import { explain, sessionOf } from "../core/explain.ts";
import { readGraph } from "../core/graph.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { validateOptions } from "../core/options.ts";
import { registry } from "../core/registry.ts";
import { channelSum, type Tensor3D, type Tensor4D, tf } from "../core/tensor.ts";
import { generateScene } from "../models/scenes.ts";
import "../plugins/mod.ts";
import { pyramidLayers } from "../plugins/gradual_extrapolation.ts";
import {
  GRADUAL_PLUS_DEFAULTS,
  gradualPlus,
  refineWithStages,
  softsignMinMax,
  stageFactors,
  trunkNodes,
} from "../plugins/gradual_plus.ts";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);
const FIXTURE = new URL("tests/fixtures/models/vgg_tiny/tfjs/model.json", ROOT);

await initBackend({ backend: "wasm", threads: 1 });
const fixture = await loadLayersModel(FIXTURE);
const vgg = await loadLayersModel(new URL("models/shapes-vgg/model.json", ROOT));
const resnet = await loadLayersModel(new URL("models/shapes-resnet/model.json", ROOT));

/** `n` generated scenes (the test suite's seeds, 2 000 000 ..) as a batch. */
function scenes(n: number, first = 2_000_100): { x: Tensor4D; labels: number[] } {
  const data = new Float32Array(n * 128 * 128 * 3);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = generateScene(first + i, { size: 128 }); // RGB in [0, 1]: the models' "unit" input
    data.set(s.image, i * 128 * 128 * 3);
    labels.push(s.label);
  }
  return { x: tf.tensor4d(data, [n, 128, 128, 3]), labels };
}

/** A small functional model: fused-ReLU stem, a downsampling residual block (strided conv +
 * BN + ReLU main path, 1x1 strided projection + BN shortcut, Add, ReLU), an identity block
 * (Add, ReLU), a max pool, GAP and a dense classifier. */
function residualModel(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.heNormal({ seed });
  const conv = (name: string, filters: number, k: number, s: number, seed: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: k,
      strides: s,
      padding: "same",
      name,
      kernelInitializer: init(seed),
    });
  const relu = (name: string) => tf.layers.activation({ activation: "relu", name });
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  const apply = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    l.apply(x) as tf.SymbolicTensor;
  const x = tf.input({ shape: [32, 32, 3], name: "img" });
  const stem = apply(
    tf.layers.conv2d({
      filters: 8,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      name: "stem",
      kernelInitializer: init(1),
    }),
    x,
  );
  let main = apply(relu("a_relu1"), apply(bn("a_bn1"), apply(conv("a_conv1", 12, 3, 2, 2), stem)));
  main = apply(bn("a_bn2"), apply(conv("a_conv2", 12, 3, 1, 3), main));
  const short = apply(bn("a_proj_bn"), apply(conv("a_proj", 12, 1, 2, 4), stem));
  const a = apply(relu("a_relu2"), apply(tf.layers.add({ name: "a_add" }), [main, short]));
  const b1 = apply(
    conv("b_conv2", 12, 3, 1, 6),
    apply(relu("b_relu1"), apply(conv("b_conv1", 12, 3, 1, 5), a)),
  );
  const b = apply(relu("b_relu2"), apply(tf.layers.add({ name: "b_add" }), [b1, a]));
  const pool = apply(tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }), b);
  const gap = apply(tf.layers.globalAveragePooling2d({ name: "gap" }), pool);
  const out = apply(tf.layers.dense({ units: 4, name: "fc", kernelInitializer: init(7) }), gap);
  return tf.model({ inputs: x, outputs: out });
}

/** Number of values equal to the maximum. */
function countMax(map: ArrayLike<number>): number {
  let hi = -Infinity, k = 0;
  for (let i = 0; i < map.length; i++) {
    if (map[i] > hi) [hi, k] = [map[i], 1];
    else if (map[i] === hi) k++;
  }
  return k;
}

Deno.test("gradual+: one factor per resolution, from the trunk's post-activation outputs", () => {
  const layers = (m: tf.LayersModel): string[] => stageFactors(readGraph(m)).map((s) => s.layer);
  assertEquals(layers(vgg), [
    "block1_relu1",
    "block2_relu1",
    "block3_relu1",
    "block4_relu1",
    "block5_relu1",
    "block5_pool",
  ]);
  assertEquals(layers(resnet), [
    "stem_relu",
    "stage1_block1_relu2",
    "stage2_block1_relu2",
    "stage3_block1_relu2",
    "stage4_block1_relu2",
  ]);
  const toy = residualModel();
  const g = readGraph(toy);
  assertEquals(layers(toy), ["stem", "b_relu2", "pool"]);
  // The residual branches are not on the trunk; the post-Add outputs are.
  const trunk = trunkNodes(g);
  for (const n of ["a_conv1", "a_relu1", "a_proj", "a_proj_bn", "b_relu1"]) assert(!trunk.has(n));
  for (const n of ["stem", "a_add", "a_relu2", "b_relu2", "pool", "fc"]) assert(trunk.has(n));
  // What the forward pass records: one layer per resolution, every one non-negative...
  for (const m of [vgg, resnet, toy]) {
    const graph = readGraph(m);
    const rec = registry.extrapolator("gradual+").requires(graph, {}).record ?? [];
    const sizes = rec.map((l) => graph.nodes.find((n) => n.name === l)!.outputShape.join());
    assertEquals(new Set(sizes).size, rec.length, "one recorded layer per resolution");
    assert(stageFactors(graph).every((s) => s.nonNegative));
  }
  // ... whereas the paper's pyramid records the 16x16 resolution twice (conv and projection).
  assertEquals(pyramidLayers(g), ["stem", "a_conv1", "a_proj", "pool"]);
  assertEquals(registry.extrapolator("gradual-plus").name, "gradual+");
  toy.dispose();
});

Deno.test("gradual+: ResNet factors are non-negative where the paper's are signed", () => {
  const { x } = scenes(2);
  const session = sessionOf(resnet);
  const ours = stageFactors(session.graph).map((s) => s.layer);
  const paper = pyramidLayers(session.graph).filter((l) => l !== session.graph.inputName);
  const pass = session.forward(x, { record: [...ours, ...paper] });
  try {
    for (const l of ours) {
      const lo = tf.tidy(() => channelSum(pass.activation(l)).min().dataSync()[0]);
      assert(lo >= 0, `${l}: factor minimum ${lo}`);
    }
    const signed = paper.filter((l) =>
      tf.tidy(() => channelSum(pass.activation(l)).min().dataSync()[0]) < 0
    );
    assert(signed.length > 0, "the paper's raw strided-conv factors should be signed somewhere");
  } finally {
    pass.dispose();
    x.dispose();
  }
});

Deno.test("gradual+: maps in [0, 1] with a single maximum, no plateau", async () => {
  const x = tf.randomUniform([3, 64, 64, 3], -1, 1, "float32", 11) as Tensor4D;
  const { x: sx, labels } = scenes(4);
  try {
    for (
      const [m, input, targets] of [[fixture, x, undefined], [vgg, sx, labels], [
        resnet,
        sx,
        labels,
      ]] as const
    ) {
      for (const method of ["grad-cam", "c-eb"]) {
        const plus = await explain(m, input, {
          method,
          extrapolator: "gradual+",
          targets: targets as number[] | undefined,
        });
        for (const e of plus) {
          let lo = Infinity, hi = -Infinity;
          for (const v of e.map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
          assertAlmostEquals(lo, 0, 1e-6);
          assertAlmostEquals(hi, 1, 1e-6);
          assertEquals(countMax(e.map), 1, `${method}: pixels at the maximum`);
        }
      }
    }
    // The paper's normalisation makes a plateau of exact 1.0 on the same fixture.
    const paper = await explain(fixture, x, { method: "grad-cam", extrapolator: "gradual" });
    assert(paper.some((e) => countMax(e.map) > 1), "expected the paper's plateau");
  } finally {
    x.dispose();
    sx.dispose();
  }
});

Deno.test("gradual+: an image's map does not depend on the rest of the batch", async () => {
  const { x, labels } = scenes(3);
  try {
    for (const m of [vgg, resnet]) {
      const all = await explain(m, x, {
        method: "c-eb",
        extrapolator: "gradual+",
        targets: labels,
      });
      for (let i = 0; i < 3; i++) {
        const one = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as Tensor4D;
        const [alone] = await explain(m, one, {
          method: "c-eb",
          extrapolator: "gradual+",
          targets: [labels[i]],
        });
        one.dispose();
        let d = 0;
        for (let k = 0; k < alone.map.length; k++) {
          d = Math.max(d, Math.abs(alone.map[k] - all[i].map[k]));
        }
        assert(d < 1e-5, `image ${i}: batch changed the map by ${d}`);
      }
    }
  } finally {
    x.dispose();
  }
});

Deno.test("gradual+: no tensor leaks", async () => {
  const { x, labels } = scenes(2);
  const toy = residualModel();
  const tx = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 5) as Tensor4D;
  const run = async (): Promise<void> => {
    await explain(resnet, x, { method: "grad-cam", extrapolator: "gradual+", targets: labels });
    await explain(vgg, x, { method: "c-eb", extrapolator: "gradual+", targets: labels });
    await explain(toy, tx, { method: "grad-cam", extrapolator: "gradual+" });
  };
  await run(); // warm-up (lazily created weights, kernels)
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await run();
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  tx.dispose();
  toy.dispose();
});

Deno.test("gradual+: the rule on hand-made tensors, options and normalisation", async () => {
  // A 2x2 map, one 4x4 stage whose channel sum is 2 on the left half and 0 on the right.
  const act = tf.concat([tf.ones([1, 4, 2, 2]), tf.zeros([1, 4, 2, 2])], 2) as Tensor4D;
  const maps = tf.tensor3d([[[1, 2], [3, 4]]]) as Tensor3D;
  const cfg = { exponent: 1, normalize: "minmax" } as const;
  const out = refineWithStages(maps, [act], [4, 4], cfg);
  const v = out.arraySync()[0];
  for (const row of v) assertEquals([row[2], row[3]], [0, 0]);
  assertEquals(countMax(out.dataSync()), 1);
  assertAlmostEquals(v[3][1], 1, 1e-6);
  // Strictly increasing normalisation: ranking kept, large values stay distinct.
  const s = softsignMinMax(tf.tensor3d([[[0, 1], [1000, 1001]]])).dataSync();
  assert(s[0] === 0 && s[0] < s[1] && s[1] < s[2] && s[2] < s[3] && s[3] === 1);
  assertEquals(validateOptions(gradualPlus, {}), GRADUAL_PLUS_DEFAULTS);
  assertEquals(validateOptions(gradualPlus, { exponent: "0.5", normalize: "softsign" }), {
    exponent: 0.5,
    normalize: "softsign",
  });
  assertEquals(validateOptions(gradualPlus, { exponent: "geometric" }).exponent, "geometric");
  const xs = tf.randomUniform([1, 64, 64, 3], -1, 1, "float32", 2) as Tensor4D;
  await assertRejects(
    () => explain(fixture, xs, { extrapolator: "gradual+", extrapolatorOptions: { exponent: -1 } }),
    /extrapolator 'gradual\+': option 'exponent' must be number > 0 or geometric, got -1/,
  );
  await assertRejects(
    () =>
      explain(fixture, xs, {
        extrapolator: "gradual+",
        extrapolatorOptions: { normalize: "clip" },
      }),
    /extrapolator 'gradual\+': option 'normalize' must be minmax\|softsign, got 'clip'/,
  );
  tf.dispose([act, maps, out, xs]);
});
