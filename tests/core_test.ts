import { initBackend } from "../backend/mod.ts";
import { explain, explainMany, sessionOf } from "../core/explain.ts";
import { loadLayersModel, ModelLoadError } from "../core/model_io.ts";
import { Registry, registry } from "../core/registry.ts";
import { ModelSession } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import { PLUGIN_API_VERSION, type SaliencyMethod } from "../core/types.ts";
import "../plugins/mod.ts";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "./_assert.ts";
import { maxRel } from "./_maps.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const MODEL = new URL("models/vgg_tiny/tfjs/model.json", FIX);

function readF32(name: string): Float32Array {
  const b = Deno.readFileSync(new URL(`vgg_tiny/${name}.bin`, FIX));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

await initBackend({ backend: "wasm", threads: 1 });
const model = await loadLayersModel(MODEL);
const inputs = tf.tensor4d(readF32("model_inputs"), [4, 64, 64, 3]);

/** A deterministic functional model: stem, a strided conv branch, a residual Add with a side
 * branch, a concatenation, a pool, global average pooling and a dense classifier. */
function residualModel(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const x = tf.input({ shape: [16, 16, 3], name: "img" });
  const stem = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: "same",
    name: "stem",
    kernelInitializer: init(1),
  }).apply(x) as tf.SymbolicTensor;
  const relu = tf.layers.activation({ activation: "relu", name: "stem_relu" }).apply(
    stem,
  ) as tf.SymbolicTensor;
  const main = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: "same",
    name: "main",
    kernelInitializer: init(2),
  }).apply(relu) as tf.SymbolicTensor;
  const side = tf.layers.conv2d({
    filters: 8,
    kernelSize: 1,
    name: "side",
    kernelInitializer: init(3),
  }).apply(relu) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: "bn" }).apply(main) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([bn, side]) as tf.SymbolicTensor;
  const act = tf.layers.activation({ activation: "relu", name: "sum_relu" }).apply(
    sum,
  ) as tf.SymbolicTensor;
  const down = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    strides: 2,
    padding: "same",
    name: "down",
    activation: "relu",
    kernelInitializer: init(4),
  }).apply(act) as tf.SymbolicTensor;
  const pool = tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }).apply(
    act,
  ) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: "cat" }).apply([down, pool]) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 5, name: "fc", kernelInitializer: init(5) }).apply(
    gap,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out });
}

Deno.test("vgg_tiny logits match the PyTorch reference within 1e-4", () => {
  const s = sessionOf(model);
  const y = s.predict(inputs);
  const ref = readF32("logits");
  const got = y.dataSync();
  y.dispose();
  for (let i = 0; i < ref.length; i++) assertAlmostEquals(got[i], ref[i], 1e-4);
});

Deno.test("graph facts come from the structure: reducing layers, default layer, classifier", () => {
  const g = sessionOf(model).graph;
  assertEquals(g.reducingLayers, ["features_4", "features_9", "features_12"]);
  assertEquals(g.firstReducingInput, "features_3");
  assertEquals(g.defaultTargetLayer, "features_11"); // the last conv block's ReLU, not the pool
  assertEquals(g.classifierLayer, "classifier_0");
  const r = new ModelSession(residualModel());
  assertEquals(r.graph.reducingLayers, ["down", "pool"]);
  assertEquals(r.graph.nodes.find((n) => n.name === "sum")!.inputs, ["bn", "side"]);
});

Deno.test("a gradient through the taps matches a finite-difference estimate", () => {
  const s = sessionOf(model);
  const layer = "features_6";
  const x = inputs.slice([0], [1]) as tf.Tensor4D;
  const pass = s.forward(x, { record: [layer], gradientsFrom: [layer] });
  const seed = tf.oneHot([9], 10).cast("float32");
  const [g] = pass.backward(seed, { wrt: [layer] });
  const a = pass.activation(layer).clone();
  pass.dispose();
  // Score as a function of the features_6 activation: run the rest of the network.
  const head = model.layers.slice(model.layers.findIndex((l) => l.name === "features_7"));
  const headScore = (act: tf.Tensor): number =>
    tf.tidy(() => {
      let y = act;
      for (const l of head) y = l.apply(y) as tf.Tensor;
      return y.dataSync()[9];
    });
  const gd = g.dataSync();
  // Central differences on a few coordinates with a large gradient.
  const order = Array.from(gd.keys()).sort((i, j) => Math.abs(gd[j]) - Math.abs(gd[i])).slice(0, 5);
  const flat = a.dataSync().slice();
  for (const i of order) {
    const h = 2e-3;
    const plus = flat.slice(), minus = flat.slice();
    plus[i] += h;
    minus[i] -= h;
    const tp = tf.tensor(plus, a.shape), tm = tf.tensor(minus, a.shape);
    const fd = (headScore(tp) - headScore(tm)) / (2 * h);
    tp.dispose();
    tm.dispose();
    assertAlmostEquals(gd[i], fd, 1e-3 + 0.02 * Math.abs(fd), `coordinate ${i}`);
  }
  [x, seed, g, a].forEach((t) => t.dispose());
});

Deno.test("residual model: taps capture both branches and gradients equal tf.grad", () => {
  const m = residualModel();
  const s = new ModelSession(m);
  const x = tf.randomUniform([2, 16, 16, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const pass = s.forward(x, {
    record: ["side", "bn", "cat"],
    gradientsFrom: ["img", "side", "bn"],
  });
  assertEquals(pass.activation("side").shape, [2, 16, 16, 8]);
  assertEquals(pass.activation("bn").shape, [2, 16, 16, 8]);
  // Forward equals tfjs's own predict.
  const y = m.predict(x) as tf.Tensor;
  assert(maxRel(pass.scores.dataSync(), y.dataSync()) < 1e-5);
  const seed = tf.oneHot([1, 3], 5).cast("float32");
  const [gi, gSide, gBn] = pass.backward(seed, { wrt: ["img", "side", "bn"] });
  // Reference: tfjs autodiff through the model (cpu-style path) w.r.t. the input.
  const ref = tf.grad((xx: tf.Tensor) => (m.apply(xx) as tf.Tensor).mul(seed).sum())(x);
  assert(maxRel(gi.dataSync(), ref.dataSync()) < 1e-4, "input gradient");
  // At an Add, both summands receive the same signal.
  assert(
    maxRel(gSide.dataSync(), gBn.dataSync()) < 1e-6,
    "add passes the signal to both branches",
  );
  pass.dispose();
  [x, y, seed, gi, gSide, gBn, ref].forEach((t) => t.dispose());
  m.dispose();
});

Deno.test("tf.memory().numTensors does not grow over 50 explain calls", async () => {
  await explain(model, inputs, { method: "grad-cam", extrapolator: "gradual" });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 50; i++) {
    await explain(model, inputs, {
      method: "grad-cam",
      extrapolator: i % 2 ? "gradual" : undefined,
      targets: i % 3 === 0 ? { topK: 2 } : undefined,
    });
  }
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("targets: index, per-image list, class name, top-k and a custom score", async () => {
  const labels = Array.from({ length: 10 }, (_, i) => `class${i}`);
  const byIndex = await explain(model, inputs, { targets: 3 });
  assertEquals(byIndex.map((e) => e.classIndex), [3, 3, 3, 3]);
  const perImage = await explain(model, inputs, { targets: [1, 2, 3, 4] });
  assertEquals(perImage.map((e) => e.classIndex), [1, 2, 3, 4]);
  const byName = await explain(model, inputs, { targets: "class7", labels });
  assertEquals(byName.map((e) => e.className), ["class7", "class7", "class7", "class7"]);
  const top = await explain(model, inputs, { targets: { topK: 3 } });
  assertEquals(top.length, 12);
  assertEquals(top.slice(0, 4).map((e) => e.classIndex), [9, 3, 5, 8]);
  // A custom score equal to logit 9 gives the same map as target 9.
  const custom = await explain(model, inputs, {
    targets: (s) => s.slice([0, 9], [-1, 1]).reshape([-1]) as tf.Tensor1D,
  });
  const nine = await explain(model, inputs, { targets: 9 });
  assert(maxRel(custom[0].map, nine[0].map) < 1e-6);
  await assertRejects(() => explain(model, inputs, { targets: 10 }), /out of range/);
  await assertRejects(
    () => explain(model, inputs, { targets: "zebra", labels }),
    /unknown class name 'zebra'/,
  );
});

Deno.test("bad model path and unknown layer give clear errors", async () => {
  await assertRejects(
    () => loadLayersModel("no/such/model.json"),
    /no\/such\/model\.json: cannot read/,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/model.json`, "{not json");
  await assertRejects(() => loadLayersModel(`${dir}/model.json`), /invalid JSON/);
  const mj = JSON.parse(await Deno.readTextFile(MODEL));
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(mj));
  const err = await loadLayersModel(`${dir}/model.json`).catch((e) => e);
  assert(
    err instanceof ModelLoadError && /weights shard 'group1-shard1of1\.bin'/.test(err.message),
  );
  await Deno.remove(dir, { recursive: true });
  await assertRejects(
    () => explain(model, inputs, { layer: "features_99" }),
    /unknown layer 'features_99'; did you mean 'features_9'/,
  );
});

Deno.test("per-image results do not depend on the rest of the batch", async () => {
  const all = await explain(model, inputs, { extrapolator: "gradual" });
  for (let i = 0; i < 4; i++) {
    const one = inputs.slice([i], [1]) as tf.Tensor4D;
    const [alone] = await explain(model, one, { extrapolator: "gradual" });
    one.dispose();
    assert(maxRel(alone.map, all[i].map) < 1e-5, `image ${i}`);
  }
});

Deno.test("gradual extrapolation sharpens a custom plugin's map, from the same forward pass", async () => {
  let forwardCalls = 0;
  const s = sessionOf(model);
  const original = s.forward.bind(s);
  s.forward = (x, o) => {
    forwardCalls++;
    return original(x, o);
  };
  // A plugin written in the test: the channel mean of a layer's activation.
  const meanAct: SaliencyMethod = {
    kind: "method",
    apiVersion: PLUGIN_API_VERSION,
    name: "mean-activation",
    description: "mean activation of a layer",
    defaultLayer: (g) => g.defaultTargetLayer,
    requires: (_g, layer) => ({ record: [layer!] }),
    run: (ctx) => {
      const maps = tf.tidy(() => ctx.pass.activation(ctx.layer!).mean(-1) as tf.Tensor3D);
      return {
        maps,
        method: "mean-activation",
        layer: ctx.layer!,
        classes: ctx.targets.classes,
        resolution: [maps.shape[1], maps.shape[2]],
      };
    },
  };
  const reg = new Registry().register(meanAct).register(registry.extrapolator("gradual"));
  const [plain, gradual] = await explainMany(model, inputs, [
    { method: "mean-activation", layer: "features_11" },
    { method: "mean-activation", layer: "features_11", extrapolator: "gradual" },
  ], { registry: reg });
  s.forward = original;
  assertEquals(forwardCalls, 1);
  assertEquals([gradual[0].height, gradual[0].width], [64, 64]);
  assert(maxRel(plain[0].map, gradual[0].map) > 1e-2, "the extrapolator changed the map");
  let lo = Infinity, hi = -Infinity;
  for (const v of gradual[0].map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assertEquals([lo, hi], [0, 1]);
});

Deno.test("plugins: registry lookup, aliases, API version check and loading from a file", async () => {
  assertEquals(registry.method("gradcam").name, "grad-cam");
  await assertRejects(() => registry.method("nope"), /unknown method 'nope'/);
  const bad = {
    kind: "method",
    apiVersion: 99,
    name: "x",
    defaultLayer() {},
    requires() {},
    run() {},
  };
  await assertRejects(
    () => new Registry().register(bad as unknown as SaliencyMethod),
    /API version 99/,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/none.ts`, "export const x = 1;\n");
  await assertRejects(() => new Registry().load(`${dir}/none.ts`), /no default export/);
  await assertRejects(() => new Registry().load(`${dir}/missing.ts`), /cannot load plugin module/);
  await Deno.remove(dir, { recursive: true });
});
