/**
 * The silent wrong outputs of issue 17, one test each: a clipped ReLU runs clipped, Keras
 * ReLU parameters tfjs would drop are refused, unknown activations are refused by layer
 * name, a softmax followed by a Reshape gives the right probability, a broadcast Multiply
 * passes the gradient summed over the broadcast axes, nested models are flattened and
 * addressable, and an all-zero map stays finite through `gradual` and is reported empty.
 */
import { initBackend } from "../backend/mod.ts";
import { explain, sessionOf } from "../core/explain.ts";
import { KERAS_ACTIVATIONS, KerasNormalization } from "../core/keras_layers.ts";
import { activationOp, dilatedKernel, mergeOp } from "../core/layer_ops.ts";
import { loadLayersModel } from "../core/model_io.ts";
import type { ModelSession } from "../core/session.ts";
import { preprocess, PREPROCESS_PRESETS } from "../io/mod.ts";
import { tf } from "../core/tensor.ts";
import { PLUGIN_API_VERSION, type SaliencyMethod } from "../core/types.ts";
import "../plugins/mod.ts";
import { zClipMinMax } from "../plugins/gradual_extrapolation.ts";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "./_assert.ts";
import { seedWeights, ZOO, zooInput } from "./zoo/models.ts";

await initBackend({ backend: "wasm", threads: 1 });
const L = tf.layers;
type ST = tf.SymbolicTensor;

function small(layers: tf.layers.Layer[]): tf.LayersModel {
  const x = tf.input({ shape: [16, 16, 3], name: "img" });
  let y: ST = x;
  for (const l of layers) y = l.apply(y) as ST;
  const m = tf.model({ inputs: x, outputs: y });
  seedWeights(m);
  return m;
}

Deno.test("ReLU(maxValue=1) runs clipped, as tfjs runs it", () => {
  const m = small([
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "c" }),
    L.reLU({ maxValue: 1, name: "clip" }),
    L.globalAveragePooling2d({ name: "gap" }),
    L.dense({ units: 3, name: "fc" }),
  ]);
  const s = sessionOf(m) as ModelSession;
  const x = tf.mul(zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]), 4) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const pass = s.forward(x, { record: ["clip"] });
  const a = pass.activation("clip").dataSync();
  const mine = pass.scores.dataSync();
  pass.dispose();
  const ref = m.predict(x) as tf.Tensor;
  ref.dataSync().forEach((v, i) => assertAlmostEquals(mine[i], v, 1e-5));
  ref.dispose();
  assert(Math.max(...a) === 1, "the clipped ReLU never reached its bound: the test shows nothing");
  assertEquals(s.graph.nodes.find((n) => n.name === "clip")!.ops[0].params.maxValue, 1);
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  m.dispose();
});

Deno.test("Keras ReLU negative_slope / threshold (dropped by tfjs) are refused by name", async () => {
  const m = small([
    L.conv2d({ filters: 2, kernelSize: 3, name: "c" }),
    L.reLU({ name: "leaky_relu_in_keras" }),
    L.flatten({ name: "f" }),
    L.dense({ units: 2, name: "fc" }),
  ]);
  const dir = await Deno.makeTempDir();
  try {
    let topo = "";
    await m.save(tf.io.withSaveHandler(async (a) => {
      const t = JSON.stringify(a.modelTopology).replace(
        /("class_name":"ReLU","config":\{)/,
        '$1"negative_slope":0.1,',
      );
      topo = t;
      await Deno.writeFile(`${dir}/w.bin`, new Uint8Array(a.weightData as ArrayBuffer));
      const json = {
        modelTopology: JSON.parse(t),
        weightsManifest: [{ paths: ["w.bin"], weights: a.weightSpecs }],
        format: "layers-model",
      };
      await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }));
    m.dispose();
    assert(topo.includes("negative_slope"), "the topology was not edited");
    await assertRejects(
      () => loadLayersModel(`${dir}/model.json`),
      /layer 'leaky_relu_in_keras' \(ReLU\): negative_slope 0\.1 is not supported/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("activations: tfjs's own are supported, others refused naming the layer", () => {
  for (const a of ["gelu", "gelu_new", "mish", "swish", "softsign", "hard_sigmoid", "selu"]) {
    activationOp("l", "Conv2D", a);
  }
  let message = "";
  try {
    activationOp("block_x", "Conv2D", "frobnicate");
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(message, "layer 'block_x' (Conv2D): activation 'frobnicate' is not supported");
});

Deno.test("softmax followed by Reshape: scores are the logits, probability = model.predict", async () => {
  const entry = ZOO.find((z) => z.name === "MobileNet v1 (softmax, Reshape)")!;
  const m = entry.build();
  const g = sessionOf(m).graph;
  assertEquals(g.scoreName, "conv_preds");
  assertEquals(g.outputName, "reshape_2");
  const x = zooInput(1);
  const [e] = await explain(m, x, { method: "grad-cam" });
  const p = m.predict(x) as tf.Tensor;
  const probs = p.dataSync();
  p.dispose();
  assertAlmostEquals(e.probability, Math.max(...probs), 1e-6);
  x.dispose();
  m.dispose();
  const logits = small([L.flatten({ name: "f" }), L.dense({ units: 3, name: "fc" })]);
  assert(sessionOf(logits).graph.scoreNote!.includes("no softmax"));
  logits.dispose();
});

Deno.test("broadcast Multiply / Add: the gradient of a broadcast input is summed", () => {
  const before = tf.memory().numTensors;
  const a = tf.randomNormal([2, 4, 4, 3], 0, 1, "float32", 1);
  const b = tf.randomNormal([2, 1, 1, 3], 0, 1, "float32", 2);
  const dy = tf.randomNormal([2, 4, 4, 3], 0, 1, "float32", 3);
  for (const kind of ["multiply", "add"] as const) {
    const op = mergeOp("m", "Multiply", kind);
    const y = op.forward([a, b]);
    const [ga, gb] = op.backward(dy, [a, b], y);
    const f = (p: tf.Tensor, q: tf.Tensor) => kind === "multiply" ? p.mul(q) : p.add(q);
    const [ra, rb] = tf.grads(f)([a, b], dy);
    assertEquals(gb.shape, [2, 1, 1, 3]);
    const d = tf.tidy(() => tf.max(tf.abs(gb.sub(rb))).add(tf.max(tf.abs(ga.sub(ra)))));
    assert(d.dataSync()[0] < 1e-5, `${kind}: ${d.dataSync()[0]}`);
    tf.dispose([y, ga, gb, ra, rb, d]);
  }
  tf.dispose([a, b, dy]);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("nested models are flattened: inner layers addressable, defaults inside the backbone", async () => {
  const entry = ZOO.find((z) => z.name === "Transfer (backbone model as a layer)")!;
  const m = entry.build();
  const g = sessionOf(m).graph;
  const names = g.nodes.map((n) => n.name);
  for (const n of ["backbone/block1_conv1", "backbone/block2_conv1", "backbone"]) {
    assert(names.includes(n), `${n} not in ${names}`);
  }
  assertEquals(g.reducingLayers, ["backbone/block1_pool", "backbone/block2_pool"]);
  assertEquals(g.defaultTargetLayer, "backbone/block3_conv1");
  const x = zooInput(1);
  for (const method of ["guided-backprop", "c-eb", "grad-cam"]) {
    const [e] = await explain(m, x, {
      method,
      layer: method === "guided-backprop" ? undefined : "backbone/block2_conv1",
      extrapolator: "gradual",
    });
    assert(e.map.every(Number.isFinite) && !e.empty, method);
  }
  x.dispose();
  m.dispose();
});

Deno.test("gradual keeps an all-zero map finite and explain reports it empty", async () => {
  const z = zClipMinMax(tf.zeros([2, 4, 4]) as tf.Tensor3D, false);
  assert(z.dataSync().every((v) => v === 0));
  z.dispose();
  const zero: SaliencyMethod = {
    kind: "method",
    apiVersion: PLUGIN_API_VERSION,
    name: "zero",
    description: "an all-zero map",
    defaultLayer: (g) => g.defaultTargetLayer,
    requires: (_g, layer) => ({ record: [layer!] }),
    run: (ctx) => {
      const a = ctx.pass.activation(ctx.layer!);
      const maps = tf.zeros([a.shape[0], a.shape[1]!, a.shape[2]!]) as tf.Tensor3D;
      return {
        maps,
        method: "zero",
        layer: ctx.layer!,
        classes: ctx.targets.classes,
        resolution: [maps.shape[1], maps.shape[2]],
      };
    },
  };
  const m = small([
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", name: "c" }),
    L.maxPooling2d({ poolSize: 2, name: "p" }),
    L.flatten({ name: "f" }),
    L.dense({ units: 3, name: "fc" }),
  ]);
  const x = zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]) as tf.Tensor4D;
  for (const ex of ["gradual", "gradual+"]) {
    const [e] = await explain(m, x, { method: zero, extrapolator: ex });
    assert(e.map.every((v) => v === 0), `${ex}: ${e.map.slice(0, 4)}`);
    assert(e.empty, `${ex}: not reported empty`);
  }
  x.dispose();
  m.dispose();
});

Deno.test("Keras Normalization loads (adapted weights or fixed config) and runs as Keras does", async () => {
  const x = tf.tidy(() => zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]).mul(255) as tf.Tensor4D);
  for (const fixed of [false, true]) {
    const stats = fixed ? { mean: [120, 110, 100], variance: [3000, 2800, 2500] } : {};
    const m = small([
      new KerasNormalization({ name: "normalization", ...stats }),
      L.conv2d({ filters: 4, kernelSize: 3, activation: "relu", name: "c" }),
      L.globalAveragePooling2d({ name: "gap" }),
      L.dense({ units: 3, activation: "softmax", name: "fc" }),
    ]);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(tf.io.withSaveHandler((a) => {
      artifacts = a;
      return Promise.resolve({
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
      });
    }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const [ref, back] = [m.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    const mine = tf.tidy(() => tf.softmax(sessionOf(loaded).predict(x)));
    const [r, b, q] = [ref.dataSync(), back.dataSync(), mine.dataSync()];
    r.forEach((v, i) => {
      assertAlmostEquals(b[i], v, 1e-6);
      assertAlmostEquals(q[i], v, 1e-6);
    });
    if (fixed) {
      // Keras' formula on the fixed statistics: (x - mean) / max(sqrt(variance), 1e-7).
      const d = tf.tidy(() => {
        const want = x.sub(tf.tensor1d([120, 110, 100])).div(
          tf.sqrt(tf.tensor1d([3000, 2800, 2500])),
        );
        return tf.max(tf.abs((m.layers[1].apply(x) as tf.Tensor).sub(want))).dataSync()[0];
      });
      assert(d < 1e-5, `normalisation off by ${d}`);
    }
    tf.dispose([ref, back, mine]);
    m.dispose();
    loaded.dispose();
  }
  x.dispose();
});

Deno.test("Keras 3 activation names load and run as their formulas", async () => {
  const x = tf.tidy(() => zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]) as tf.Tensor4D);
  for (const name of [...Object.keys(KERAS_ACTIVATIONS), "gelu_new"]) {
    const m = small([
      L.conv2d({ filters: 4, kernelSize: 3, name: "c" }),
      L.activation({ activation: name as "linear", name: "act" }),
      L.flatten({ name: "f" }),
      L.dense({ units: 3, name: "fc" }),
    ]);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(tf.io.withSaveHandler((a) => {
      artifacts = a;
      return Promise.resolve({
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
      });
    }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const ref = loaded.predict(x) as tf.Tensor;
    const mine = sessionOf(loaded).predict(x);
    const d = tf.tidy(() => tf.max(tf.abs(ref.sub(mine))).div(tf.max(tf.abs(ref))).dataSync()[0]);
    assert(d < 1e-5, `${name}: ${d}`);
    tf.dispose([ref, mine]);
    m.dispose();
    loaded.dispose();
  }
  x.dispose();
});

Deno.test("--preprocess raw feeds 0..255 pixels (models with a Rescaling stem)", () => {
  assert(PREPROCESS_PRESETS.includes("raw"));
  const out = preprocess({ width: 1, height: 1, data: new Float32Array([0, 0.5, 1]) }, "raw");
  assertEquals([...out], [0, 127.5, 255]);
});

Deno.test("dilated convolutions: gradients and EB through the kernel with its zeros written out", async () => {
  // tfjs has no gradient for dilated convolutions; the reference is the same network with
  // the dilated kernels written out (dilation 1), which tf.grad differentiates.
  const build = (dilated: boolean, weights?: tf.Tensor[]): tf.LayersModel => {
    const d = dilated ? 2 : 1;
    const k = dilated ? 3 : 5;
    const m = small([
      L.conv2d({ filters: 4, kernelSize: k, dilationRate: d, padding: "same", name: "c" }),
      L.reLU({ name: "r" }),
      L.depthwiseConv2d({
        kernelSize: k,
        dilationRate: d,
        depthMultiplier: 2,
        padding: "same",
        name: "dw",
      }),
      L.reLU({ name: "r2" }),
      L.globalAveragePooling2d({ name: "gap" }),
      L.dense({ units: 3, name: "fc" }),
    ]);
    if (weights) m.setWeights(weights);
    return m;
  };
  const a = build(true);
  const [ck, cb, dk, db, fk, fb] = a.getWeights();
  const wide = [dilatedKernel(ck, [2, 2]), cb, dilatedKernel(dk, [2, 2]), db, fk, fb];
  const b = build(false, wide);
  const x = zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]) as tf.Tensor4D;
  const ref = tf.grad((xx: tf.Tensor) => (b.apply(xx) as tf.Tensor).slice([0, 1], [1, 1]).sum())(x);
  const pass = (sessionOf(a) as ModelSession).forward(x, { gradientsFrom: ["img"] });
  const [g] = pass.backward(tf.tensor2d([[0, 1, 0]]), { wrt: ["img"] });
  pass.dispose();
  const d = tf.tidy(() => tf.max(tf.abs(g.sub(ref))).div(tf.max(tf.abs(ref))).dataSync()[0]);
  assert(d < 1e-5, `gradient off by ${d}`);
  const [ea] = await explain(a, x, { method: "eb", layer: "r", normalize: "none", resize: "none" });
  const [eb] = await explain(b, x, { method: "eb", layer: "r", normalize: "none", resize: "none" });
  ea.map.forEach((v, i) => assertAlmostEquals(v, eb.map[i], 1e-5));
  tf.dispose([x, ref, g, wide[0], wide[2]]);
  a.dispose();
  b.dispose();
});

Deno.test("a sigmoid output (multi-label): scores are its logits, probability its sigmoid", async () => {
  const m = small([
    L.conv2d({ filters: 4, kernelSize: 3, activation: "relu", name: "c" }),
    L.globalAveragePooling2d({ name: "gap" }),
    L.dense({ units: 3, activation: "sigmoid", name: "fc" }),
  ]);
  const g = sessionOf(m).graph;
  assertEquals([g.scoreName, g.scoreIsPreSoftmax, g.scoreActivation], ["fc", true, "sigmoid"]);
  const x = zooInput(1).slice([0, 0, 0, 0], [1, 16, 16, 3]) as tf.Tensor4D;
  const [e] = await explain(m, x, { method: "grad-cam", targets: [2] });
  const p = m.predict(x) as tf.Tensor;
  assertAlmostEquals(e.probability, p.dataSync()[2], 1e-6);
  tf.dispose([p, x]);
  m.dispose();
});
