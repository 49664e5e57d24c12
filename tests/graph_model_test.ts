/**
 * GraphModels through the one executor: GraphModels written the way `tensorflowjs_converter`
 * writes a SavedModel (tests/_graph_model.ts: fused conv + bias + ReLU / ReLU6 / sigmoid,
 * depthwise convs, FusedBatchNormV3, residual AddV2, a squeeze-and-excitation Mul, swish as
 * Sigmoid + Mul, Pad, ConcatV2, Mean, a dynamic input shape) are compiled by the GraphModel
 * front end; their scores and input gradients equal tfjs's own `execute` and `tf.grad`
 * through it, every registered method x extrapolator runs on them, and the rule-based
 * methods equal the same methods on the LayersModel with the same weights.
 */
import { initBackend } from "../backend/mod.ts";
import { explain, sessionOf } from "../core/explain.ts";
import { createSession } from "../core/frontends/mod.ts";
import { loadGraphModel, loadLayersModel, modelFormat } from "../core/model_io.ts";
import { registry } from "../core/registry.ts";
import { oneHotSeed } from "../core/targets.ts";
import { tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { maxRel, sane } from "./_maps.ts";
import { type CliResult, runDeno } from "./_cli_run.ts";
import { toGraphModel, writeGraphModel } from "./_graph_model.ts";

await initBackend({ backend: "wasm", threads: 1 });
const FIX = new URL("./fixtures/", import.meta.url);
const layers = await loadLayersModel(new URL("models/vgg_tiny/tfjs/model.json", FIX));
const dir = await Deno.makeTempDir();
const { json, weights } = toGraphModel(layers);
await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
await Deno.writeFile(`${dir}/group1-shard1of1.bin`, weights);
const graphModel = await loadGraphModel(`${dir}/model.json`);
const b = Deno.readFileSync(new URL("vgg_tiny/model_inputs.bin", FIX));
const x = tf.tensor4d(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), [4, 64, 64, 3]);

// ---------------------------------------------------------------------------------------
// Seeded replicas built with tf.layers, then written as GraphModels.

let seed = 1;
const init = () => tf.initializers.glorotUniform({ seed: seed++ });
const conv = (filters: number, k: number, o: Record<string, unknown> = {}) =>
  tf.layers.conv2d({
    filters,
    kernelSize: k,
    padding: "same",
    kernelInitializer: init(),
    biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed++ }),
    ...o,
  });
const apply = (layer: tf.layers.Layer, t: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
  layer.apply(t) as tf.SymbolicTensor;

/** Random (seeded) moving statistics and affine parameters for every batch norm. */
function randomiseBatchNorms(model: tf.LayersModel): void {
  for (const l of model.layers) {
    if (l.getClassName() !== "BatchNormalization") continue;
    const ws = l.getWeights();
    l.setWeights(ws.map((w, i) => {
      const u = tf.randomUniform(w.shape, 0.5, 1.5, "float32", seed++);
      const v = i === 1 || i === 2 ? u.sub(1) : u; // beta and moving mean around 0
      if (v !== u) u.dispose();
      return v;
    }));
  }
}

/**
 * ReLU-family replica (rules defined for every op): fused conv + ReLU, batch norm, unfused
 * conv + separate ReLU, residual add, max pool, zero padding, strided depthwise conv,
 * concatenation of two branches, average pool, global average pool, dense, softmax.
 */
function reluNet(): tf.LayersModel {
  const inp = tf.input({ shape: [32, 32, 3], name: "image" });
  const c1 = apply(conv(8, 3, { activation: "relu", name: "c1" }), inp);
  const b1 = apply(tf.layers.batchNormalization({ name: "bn1" }), c1);
  const c2 = apply(conv(8, 3, { name: "c2" }), b1);
  const a2 = apply(tf.layers.activation({ activation: "relu", name: "c2_relu" }), c2);
  const add = apply(tf.layers.add({ name: "add1" }), [b1, a2]);
  const r = apply(tf.layers.activation({ activation: "relu", name: "add1_relu" }), add);
  const p1 = apply(tf.layers.maxPooling2d({ poolSize: 2, name: "pool1" }), r);
  const zp = apply(tf.layers.zeroPadding2d({ padding: 1, name: "pad" }), p1);
  const dw = apply(
    tf.layers.depthwiseConv2d({
      kernelSize: 3,
      strides: 2,
      activation: "relu",
      depthwiseInitializer: init(),
      name: "dw",
    }),
    zp,
  );
  const e = apply(conv(16, 1, { activation: "relu", name: "pw" }), dw);
  const f = apply(conv(8, 1, { activation: "relu", name: "branch" }), dw);
  const cat = apply(tf.layers.concatenate({ name: "cat" }), [e, f]);
  const ap = apply(tf.layers.averagePooling2d({ poolSize: 2, name: "avg" }), cat);
  const c3 = apply(conv(16, 3, { activation: "relu", name: "c3" }), ap);
  const gap = apply(tf.layers.globalAveragePooling2d({ name: "gap" }), c3);
  const logits = apply(
    tf.layers.dense({ units: 10, kernelInitializer: init(), name: "logits" }),
    gap,
  );
  const probs = apply(tf.layers.activation({ activation: "softmax", name: "probs" }), logits);
  const m = tf.model({ inputs: inp, outputs: probs });
  randomiseBatchNorms(m);
  return m;
}

/**
 * MobileNet-v2 / EfficientNet-style replica: strided fused conv + ReLU6, depthwise conv,
 * batch norm, swish (Sigmoid + Mul), squeeze-and-excitation (Mean, Reshape, 1x1 convs with
 * fused ReLU and sigmoid, broadcast Mul), projection, residual add, max pool, ReLU6 head.
 */
function seNet(): tf.LayersModel {
  const inp = tf.input({ shape: [32, 32, 3], name: "image" });
  const stem = apply(conv(8, 3, { strides: 2, activation: "relu6", name: "stem" }), inp);
  const dw = apply(
    tf.layers.depthwiseConv2d({
      kernelSize: 3,
      padding: "same",
      depthwiseInitializer: init(),
      name: "dw",
    }),
    stem,
  );
  const bn = apply(tf.layers.batchNormalization({ name: "dw_bn" }), dw);
  const sw = apply(tf.layers.activation({ activation: "swish", name: "dw_swish" }), bn);
  const g = apply(tf.layers.globalAveragePooling2d({ name: "se_gap" }), sw);
  const rs = apply(tf.layers.reshape({ targetShape: [1, 1, 8], name: "se_reshape" }), g);
  const s1 = apply(conv(4, 1, { activation: "relu", name: "se_reduce" }), rs);
  const s2 = apply(conv(8, 1, { activation: "sigmoid", name: "se_expand" }), s1);
  const m = apply(tf.layers.multiply({ name: "se_excite" }), [sw, s2]);
  const pw = apply(conv(8, 1, { name: "project" }), m);
  const res = apply(tf.layers.add({ name: "residual" }), [pw, stem]);
  const mp = apply(tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }), res);
  const top = apply(conv(16, 3, { activation: "relu6", name: "top" }), mp);
  const gap = apply(tf.layers.globalAveragePooling2d({ name: "gap" }), top);
  const logits = apply(
    tf.layers.dense({ units: 10, kernelInitializer: init(), name: "logits" }),
    gap,
  );
  const probs = apply(tf.layers.activation({ activation: "softmax", name: "probs" }), logits);
  const model = tf.model({ inputs: inp, outputs: probs });
  randomiseBatchNorms(model);
  return model;
}

const reluLayers = reluNet();
const reluDir = await Deno.makeTempDir();
const reluGraph = await loadGraphModel(await writeGraphModel(reluLayers, reluDir, { fuse: true }));
const seLayers = seNet();
const seDir = await Deno.makeTempDir();
const seGraph = await loadGraphModel(
  await writeGraphModel(seLayers, seDir, { fuse: true, dynamic: true }),
);
const small = tf.randomUniform([2, 32, 32, 3], -1, 1, "float32", 7) as tf.Tensor4D;

// ---------------------------------------------------------------------------------------

Deno.test("GraphModel: format detection and graph facts from the nodes", async () => {
  assertEquals(await modelFormat(`${dir}/model.json`), "graph-model");
  const g = sessionOf(graphModel).graph;
  assertEquals(g.reducingLayers, ["features_4", "features_9", "features_12"]);
  assertEquals(g.firstReducingInput, "features_3");
  assertEquals(g.scoreName, "classifier_0");
  assertEquals(g.defaultTargetLayer, "features_11");
});

Deno.test("GraphModel: Grad-CAM and Gradual Grad-CAM equal the LayersModel's", async () => {
  for (const extrapolator of [undefined, "gradual"]) {
    const opts = { method: "grad-cam", layer: "features_11", extrapolator, targets: [9, 3, 5, 8] };
    const fromGraph = await explain(graphModel, x, opts);
    const fromLayers = await explain(layers, x, opts);
    for (let i = 0; i < 4; i++) {
      assert(maxRel(fromGraph[i].map, fromLayers[i].map) < 1e-4, `image ${i} ${extrapolator}`);
    }
  }
  // Raw Grad-CAM matches the TorchRay reference.
  const raw = await explain(graphModel, x, {
    layer: "features_11",
    resize: "none",
    normalize: "none",
  });
  const rb = Deno.readFileSync(new URL("vgg_tiny/gradcam_torchray_relu.bin", FIX));
  const ref = new Float32Array(rb.buffer, rb.byteOffset, rb.byteLength / 4);
  const got = new Float32Array(ref.length);
  raw.forEach((e, i) => got.set(e.map, i * e.map.length));
  assert(maxRel(got, ref) < 1e-4);
});

/** Executor scores and input gradient against the GraphModel's own execute and tf.grad. */
function checkAgainstTfjs(model: tf.GraphModel, input: tf.Tensor4D, scoreNode: string): void {
  const session = sessionOf(model, { inputSize: [input.shape[1], input.shape[2]] });
  assertEquals(session.graph.scoreName, scoreNode);
  const pass = session.forward(input, { gradientsFrom: [session.graph.inputName] });
  const n = input.shape[0];
  const classes = Array.from({ length: n }, (_, i) => (3 * i + 1) % 10);
  const seed = oneHotSeed(classes, pass.scores.shape[1]);
  const [g] = pass.backward(seed, { wrt: [session.graph.inputName] });
  const ref = model.execute(input, scoreNode) as tf.Tensor;
  const refGrad = tf.grad((t: tf.Tensor) =>
    (model.execute(t, scoreNode) as tf.Tensor).mul(seed).sum()
  )(input);
  try {
    const e1 = maxRel(pass.scores.dataSync(), ref.dataSync());
    const e2 = maxRel(g.dataSync(), refGrad.dataSync());
    assert(e1 < 1e-5, `scores differ from GraphModel.execute by ${e1}`);
    assert(e2 < 1e-5, `input gradient differs from tf.grad by ${e2}`);
    // The scores are the logits: softmax(scores) is the model's output.
    const out = model.execute(input) as tf.Tensor;
    const p = tf.softmax(pass.scores);
    assert(maxRel(p.dataSync(), out.dataSync()) < 1e-5, "softmax(scores) != output");
    tf.dispose([out, p]);
  } finally {
    tf.dispose([seed, g, ref, refGrad]);
    pass.dispose();
  }
}

Deno.test("GraphModel: executor scores and input gradient equal tfjs's execute and tf.grad", () => {
  checkAgainstTfjs(graphModel, x, "classifier_0");
  checkAgainstTfjs(reluGraph, small, "logits");
  checkAgainstTfjs(seGraph, small, "logits");
  // A dynamic-shape model runs at another size too.
  const big = tf.randomUniform([1, 48, 40, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  checkAgainstTfjs(seGraph, big, "logits");
  big.dispose();
});

Deno.test("GraphModel: compiled structure of fused, depthwise, batch norm, SE and swish nodes", () => {
  const g = sessionOf(seGraph, { inputSize: [32, 32] }).graph;
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const kinds = (name: string) => byName.get(name)!.ops.map((o) => o.kind).join("+");
  assertEquals(kinds("stem"), "conv2d+activation");
  assertEquals(byName.get("stem")!.ops[1].params.activation, "relu6");
  assertEquals(kinds("dw"), "depthwise_conv2d"); // FusedDepthwiseConv2dNative with its bias
  assertEquals(kinds("dw_bn"), "batch_norm");
  assertEquals(kinds("dw_swish"), "multiply");
  assertEquals(byName.get("dw_swish")!.inputs, ["dw_bn", "dw_swish/Sigmoid"]);
  assertEquals(kinds("se_gap"), "global_avg_pool");
  assertEquals(kinds("se_excite"), "multiply");
  assertEquals(byName.get("se_excite")!.outputShape, [null, 16, 16, 8]);
  assertEquals(kinds("residual"), "add");
  assertEquals(g.inputShape, [null, 32, 32, 3]);
  assertEquals(g.reducingLayers, ["stem", "pool"]);
  assertEquals(g.scoreName, "logits");
  assertEquals(g.classifierLayer, "logits");
  // The LayersModel replica compiles to the same nodes (names, kinds, shapes).
  const rg = sessionOf(reluGraph).graph;
  const rl = sessionOf(reluLayers).graph;
  const sig = (gr: typeof rg) =>
    gr.nodes.filter((n) => n.name !== "Identity").map((n) =>
      `${n.name}:${n.ops.map((o) => o.kind)}:${n.outputShape}:${n.inputs}`
    );
  assertEquals(sig(rg), sig(rl));
  assertEquals(rg.reducingLayers, rl.reducingLayers);
  assertEquals(rg.defaultTargetLayer, rl.defaultTargetLayer);
});

Deno.test("GraphModel: dynamic input shape needs a size, from the option or the image", async () => {
  let msg = "";
  try {
    createSession(seGraph);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/dynamic.*--input-size/.test(msg), msg);
  const [e] = await explain(seGraph, small.slice([0], [1]) as tf.Tensor4D, {
    method: "grad-cam",
  });
  assertEquals([e.height, e.width], [32, 32]);
  let fixed = "";
  try {
    createSession(reluGraph, { inputSize: [48, 48] });
  } catch (e) {
    fixed = (e as Error).message;
  }
  assert(/48x48 does not fit/.test(fixed), fixed);
});

Deno.test("GraphModel: predict and single-output methods return scores (no reshape of undefined)", async () => {
  const before = tf.memory().numTensors;
  const p = sessionOf(graphModel).predict(x);
  assertEquals(p.shape, [4, 10]);
  p.dispose();
  for (const method of ["score-cam", "integrated-gradients", "gradient"]) {
    const res = await explain(graphModel, x, { method });
    assertEquals(res.length, 4);
    for (const r of res) assert(r.map.every(Number.isFinite), method);
  }
  assertEquals(tf.memory().numTensors, before);
});

const EXTRAPOLATORS = [undefined, ...registry.extrapolators().map((e) => e.name)];
const FAST: Record<string, Record<string, unknown>> = {
  "smooth-grad": { samples: 4 },
  "integrated-gradients": { steps: 8 },
};
const optsFor = (method: string) => FAST[method] ?? {};

Deno.test("GraphModel: every method x extrapolator equals the LayersModel's (ReLU replica)", async () => {
  for (const method of registry.methods().map((m) => m.name)) {
    for (const extrapolator of EXTRAPOLATORS) {
      const opts = { method, extrapolator, methodOptions: optsFor(method) };
      const fromGraph = await explain(reluGraph, small, opts);
      const fromLayers = await explain(reluLayers, small, opts);
      for (let i = 0; i < 2; i++) {
        const what = `${method}+${extrapolator ?? "none"} image ${i}`;
        assert(sane(fromGraph[i].map), `${what}: not a sane map`);
        assertEquals(fromGraph[i].layer, fromLayers[i].layer, what);
        const err = maxRel(fromGraph[i].map, fromLayers[i].map);
        assert(err < 1e-4, `${what}: GraphModel and LayersModel maps differ by ${err}`);
      }
    }
  }
});

Deno.test("GraphModel: rule-based methods at explicit layers equal the LayersModel's", async () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ["excitation-backprop", "pool1", {}],
    ["contrastive-excitation-backprop", "add1_relu", {}],
    ["contrastive-excitation-backprop", "cat", { contrastLayer: "c3" }],
    ["guided-backprop", "image", {}],
    ["deconvnet", "image", {}],
  ];
  for (const [method, layer, methodOptions] of cases) {
    const opts = { method, methodOptions, normalize: "none" as const, resize: "none" as const };
    const fromGraph = await explain(reluGraph, small, { ...opts, layer });
    const fromLayers = await explain(reluLayers, small, { ...opts, layer });
    for (let i = 0; i < 2; i++) {
      const err = maxRel(fromGraph[i].map, fromLayers[i].map);
      assert(sane(fromGraph[i].map), `${method} at ${layer}: not a sane map`);
      assert(err < 1e-4, `${method} at ${layer}: raw maps differ by ${err}`);
    }
  }
  // vgg_tiny too (the unfused Conv2D + BiasAdd + Relu form).
  for (
    const method of ["excitation-backprop", "contrastive-excitation-backprop", "guided-backprop"]
  ) {
    const opts = {
      method,
      normalize: "none" as const,
      resize: "none" as const,
      targets: [9, 3, 5, 8],
    };
    const fromGraph = await explain(graphModel, x, opts);
    const fromLayers = await explain(layers, x, opts);
    for (let i = 0; i < 4; i++) {
      const err = maxRel(fromGraph[i].map, fromLayers[i].map);
      assert(err < 1e-4, `vgg_tiny ${method}: raw maps differ by ${err}`);
    }
  }
});

Deno.test("GraphModel: every method x extrapolator on the SE / ReLU6 / swish replica", async () => {
  const nodes = new Set(sessionOf(seGraph, { inputSize: [32, 32] }).graph.nodes.map((n) => n.name));
  let maps = 0;
  for (const method of registry.methods().map((m) => m.name)) {
    for (const extrapolator of EXTRAPOLATORS) {
      const what = `${method}+${extrapolator ?? "none"}`;
      try {
        const res = await explain(seGraph, small, {
          method,
          extrapolator,
          targets: [2, 7],
          methodOptions: optsFor(method),
        });
        for (const r of res) assert(sane(r.map), `${what}: not a sane map`);
        maps++;
      } catch (e) {
        // A rule-based method without a rule for one of the ops: one line naming the node.
        const msg = (e as Error).message;
        const named = /layer '([^']+)'/.exec(msg);
        assert(!msg.includes("\n") && named && nodes.has(named[1]), `${what}: ${msg}`);
        assert(registry.method(method).usesRules, `${what}: ${msg}`);
      }
    }
  }
  assert(maps >= (registry.methods().length - 2) * EXTRAPOLATORS.length, `only ${maps} maps`);
});

Deno.test("GraphModel: every method leaves no tensor behind (numTensors flat)", async () => {
  const run = async () => {
    for (const method of registry.methods().map((m) => m.name)) {
      for (const extrapolator of EXTRAPOLATORS) {
        const opts = { method, extrapolator, methodOptions: optsFor(method) };
        await explain(reluGraph, small, opts);
        await explain(seGraph, small, opts).catch(() => undefined);
      }
    }
  };
  await run(); // derived-weight caches (excitation backprop's W+) fill once per model
  const before = tf.memory().numTensors;
  await run();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("GraphModel: Keras' dynamic-batch Flatten (Shape, StridedSlice, Pack, Reshape)", async () => {
  const d = await Deno.makeTempDir();
  const m = await loadGraphModel(await writeGraphModel(layers, d, { dynamic: true }));
  const s = sessionOf(m, { inputSize: [64, 64] });
  const flatten = s.graph.nodes.find((n) => n.className === "Reshape")!;
  assertEquals(flatten.outputShape, [null, 4096]);
  assert(!s.graph.nodes.some((n) => ["Shape", "StridedSlice", "Pack"].includes(n.className)));
  checkAgainstTfjs(m, x, "classifier_0");
  const opts = { method: "excitation-backprop", targets: [9, 3, 5, 8] };
  const a = await explain(m, x, opts), b = await explain(layers, x, opts);
  for (let i = 0; i < 4; i++) assert(maxRel(a[i].map, b[i].map) < 1e-5, `image ${i}`);
  m.dispose();
});

Deno.test("GraphModel: Sub and RealDiv by constants (input normalisation) are affine ops", async () => {
  const d = await Deno.makeTempDir();
  const normalize = { mean: [0.2, -0.1, 0.3], std: [0.5, 2, 1.5] };
  const m = await loadGraphModel(await writeGraphModel(reluLayers, d, { fuse: true, normalize }));
  const g = sessionOf(m).graph;
  assertEquals(g.nodes.slice(0, 2).map((n) => `${n.name}:${n.ops[0].kind}`), [
    "normalize/sub:batch_norm",
    "normalize/div:batch_norm",
  ]);
  checkAgainstTfjs(m, small, "logits");
  // The same scores as the LayersModel on the normalised input.
  const xn = tf.tidy(() => small.sub(normalize.mean).div(normalize.std)) as tf.Tensor4D;
  const a = sessionOf(m).predict(small), b = sessionOf(reluLayers).predict(xn);
  assert(maxRel(a.dataSync(), b.dataSync()) < 1e-5);
  tf.dispose([xn, a, b]);
  (sessionOf(m) as unknown as { dispose(): void }).dispose();
  m.dispose();
});

Deno.test("GraphModel: an unsupported op is one error naming the op and the node", async () => {
  const bad = JSON.parse(JSON.stringify(json));
  // deno-lint-ignore no-explicit-any
  const node = bad.modelTopology.node.find((n: any) => n.name === "features_1");
  node.op = "Erf";
  const d = await Deno.makeTempDir();
  await Deno.writeTextFile(`${d}/model.json`, JSON.stringify(bad));
  await Deno.writeFile(`${d}/group1-shard1of1.bin`, weights);
  const m = await loadGraphModel(`${d}/model.json`);
  let msg = "";
  try {
    createSession(m);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/node 'features_1' \(Erf\): op 'Erf' is not supported/.test(msg), msg);
  assert(!msg.includes("\n"), msg);
  m.dispose();
});

Deno.test("CLI: --input-size gives a dynamic GraphModel its size; without it, one clear line", async () => {
  const run = (extra: string[]): Promise<CliResult> =>
    runDeno([
      "run",
      "--quiet",
      "--allow-read",
      "--allow-env",
      "cli/main.ts",
      "list",
      "--model",
      ...extra,
    ]);
  const ok = await run([`${seDir}/model.json`, "--input-size", "32"]);
  assertEquals(ok.code, 0, ok.stderr);
  assert(/input \[N, 32, 32, 3\]/.test(ok.stdout), ok.stdout);
  assert(/se_excite\s+Mul\s+\[N, 16, 16, 8\]/.test(ok.stdout), ok.stdout);
  const bad = await run([`${seDir}/model.json`]);
  assert(bad.code !== 0);
  assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert(/dynamic.*--input-size/.test(bad.stderr), bad.stderr);
});
