/**
 * Excitation backprop and contrastive excitation backprop: TorchRay fixtures (vgg_tiny),
 * gradual extrapolation of c-EB, mass conservation, the residual share rule, errors, leaks,
 * and the wasm backend.
 */
import { initBackend } from "../backend/mod.ts";
import { explain, type Explanation, sessionOf } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { tf } from "../core/tensor.ts";
import type { ExplainOptions } from "../core/explain.ts";
import "../plugins/mod.ts";
import {
  contrastiveExcitationBackprop,
  defaultContrastLayer,
  defaultSaliencyLayer,
  excitationBackprop,
} from "../plugins/excitation_backprop.ts";
import { registry } from "../core/registry.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";

const FIX = new URL("./fixtures/", import.meta.url);
const MODEL = new URL("models/vgg_tiny/tfjs/model.json", FIX);

function readF32(name: string): Float32Array {
  const b = Deno.readFileSync(new URL(`vgg_tiny/${name}.bin`, FIX));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

await tf.setBackend("cpu");
const model = await loadLayersModel(MODEL);
const inputs = tf.tensor4d(readF32("model_inputs"), [4, 64, 64, 3]);
const RAW = { resize: "none", normalize: "none" } as const;

function concat(es: readonly Explanation[]): Float32Array {
  const out = new Float32Array(es.reduce((a, e) => a + e.map.length, 0));
  let k = 0;
  for (const e of es) {
    out.set(e.map, k);
    k += e.map.length;
  }
  return out;
}

/** max |got - ref|, optionally divided by max |ref|. */
function maxDiff(got: Float32Array, ref: Float32Array, relative: boolean): number {
  assertEquals(got.length, ref.length);
  let m = 0, peak = 0;
  for (let i = 0; i < ref.length; i++) {
    m = Math.max(m, Math.abs(got[i] - ref[i]));
    peak = Math.max(peak, Math.abs(ref[i]));
  }
  return relative ? m / peak : m;
}

async function maps(
  m: tf.LayersModel,
  x: tf.Tensor4D,
  opts: ExplainOptions,
): Promise<Float32Array> {
  return concat(await explain(m, x, opts));
}

function checkFixture(name: string, got: Float32Array, tol: number, relative: boolean): void {
  const d = maxDiff(got, readF32(name), relative);
  assert(d <= tol, `${name}: max diff ${d} > ${tol}${relative ? " (relative to max)" : ""}`);
}

Deno.test("EB / c-EB: default layers on vgg_tiny and plugin registration", () => {
  const g = sessionOf(model).graph;
  assertEquals(defaultSaliencyLayer(g), "features_6");
  assertEquals(defaultContrastLayer(g, "features_6"), "features_6");
  assertEquals(registry.method("eb"), excitationBackprop);
  assertEquals(registry.method("c-eb"), contrastiveExcitationBackprop);
  assertEquals(registry.method("ceb"), contrastiveExcitationBackprop);
});

Deno.test("EB / c-EB reproduce the TorchRay fixtures on vgg_tiny", async () => {
  const eb = await maps(model, inputs, { method: "eb", targets: [9, 3, 5, 8], ...RAW });
  checkFixture("eb_torchray", eb, 1e-4, true);
  checkFixture("eb_torchray_f64ref", eb, 1e-4, true);
  const ceb = await maps(model, inputs, { method: "c-eb", layer: "features_6", ...RAW });
  checkFixture("ceb_torchray", ceb, 1e-4, true);
  checkFixture("ceb_torchray_f64ref", ceb, 1e-4, true);
  const dropped = await maps(model, inputs, {
    method: "ceb",
    methodOptions: { dropContrast: true },
    ...RAW,
  });
  checkFixture("ceb_torchray_inputgrad", dropped, 1e-4, true);
  // From the CLI the option arrives as a string.
  const dropped2 = await maps(model, inputs, {
    method: "ceb",
    methodOptions: { dropContrast: "true" },
    ...RAW,
  });
  assertEquals(dropped2, dropped);
});

Deno.test("gradual extrapolation of c-EB reproduces the paper's smooth maps", async () => {
  const single = await maps(model, inputs, { method: "c-eb", extrapolator: "gradual" });
  checkFixture("gradual_ceb_torchray_single", single, 1e-4, false);
  checkFixture("gradual_ceb_torchray_single_f64ref", single, 1e-4, false);
  const batch = await maps(model, inputs, {
    method: "c-eb",
    extrapolator: "gradual",
    extrapolatorOptions: { statistics: "batch" },
  });
  checkFixture("gradual_ceb_torchray_batch", batch, 1e-4, false);
});

Deno.test("EB conserves mass: every map sums to 1 per image (vgg_tiny, post-ReLU layers)", async () => {
  for (const layer of ["features_3", "features_4", "features_6", "features_9", "features_11"]) {
    const es = await explain(model, inputs, { method: "eb", layer, ...RAW });
    for (const e of es) {
      const sum = e.map.reduce((a, b) => a + b, 0);
      assert(Math.abs(sum - 1) < 1e-5, `${layer} image ${e.image}: sum ${sum}`);
    }
  }
});

// ---------------------------------------------------------------------------------------
// A small functional network with seeded weights.

/** Deterministic values in [-1, 1) from a seed (LCG). */
function rand(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Sets every layer's weights from its name (zeros for layers named `zero*`). */
function seedWeights(m: tf.LayersModel): void {
  for (const layer of m.layers) {
    const ws = layer.weights;
    if (ws.length === 0) continue;
    const base = [...layer.name].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0;
    const values = ws.map((w, i) => {
      const shape = w.shape.map(Number);
      const n = shape.reduce((a, b) => a * b, 1);
      if (layer.name.startsWith("zero")) return tf.zeros(shape);
      const r = rand(n, base + i);
      const fanIn = shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
      const isBn = layer.getClassName() === "BatchNormalization";
      const v = r.map((u) => {
        if (!isBn) return shape.length > 1 ? u * Math.sqrt(6 / fanIn) : 0.1 * u;
        // gamma, beta, moving mean, moving variance
        return [1 + 0.25 * u, 0.1 * u, 0.2 * u, 1 + 0.25 * Math.abs(u)][i];
      });
      return tf.tensor(v, shape);
    });
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}

/**
 * conv -> BN -> ReLU, then a strided-conv branch and a max-pool branch, concatenated; a
 * residual block (conv -> BN, Add with the concatenation, ReLU); GAP; dense classifier.
 * `zeroBranches` adds a third summand to the residual Add (a 1x1 conv with zero kernel and
 * bias) and an extra Add of a zero conv after the block's ReLU: the same function.
 */
function functionalNet(zeroBranches: boolean): tf.LayersModel {
  const L = tf.layers;
  const sym = (t: tf.SymbolicTensor | tf.SymbolicTensor[] | tf.Tensor | tf.Tensor[]) =>
    t as tf.SymbolicTensor;
  const x = tf.input({ shape: [16, 16, 3], name: "img" });
  const c1 = sym(L.conv2d({ filters: 8, kernelSize: 3, padding: "same", name: "c1" }).apply(x));
  const b1 = sym(L.batchNormalization({ name: "b1" }).apply(c1));
  const r1 = sym(L.activation({ activation: "relu", name: "r1" }).apply(b1));
  const a = sym(
    L.conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: "same",
      activation: "relu",
      name: "a",
    }).apply(r1),
  );
  const p = sym(L.maxPooling2d({ poolSize: 2, name: "p" }).apply(r1));
  const cat = sym(L.concatenate({ name: "cat" }).apply([a, p]));
  const c2 = sym(L.conv2d({ filters: 16, kernelSize: 3, padding: "same", name: "c2" }).apply(cat));
  const b2 = sym(L.batchNormalization({ name: "b2" }).apply(c2));
  const summands = [b2, cat];
  if (zeroBranches) {
    summands.push(sym(L.conv2d({ filters: 16, kernelSize: 1, name: "zero1" }).apply(cat)));
  }
  const add = sym(L.add({ name: "add" }).apply(summands));
  let r2 = sym(L.activation({ activation: "relu", name: "r2" }).apply(add));
  if (zeroBranches) {
    const z = sym(
      L.conv2d({ filters: 16, kernelSize: 3, padding: "same", name: "zero2" }).apply(r2),
    );
    r2 = sym(L.add({ name: "add_zero" }).apply([r2, z]));
  }
  const gap = sym(L.globalAveragePooling2d({ name: "gap" }).apply(r2));
  const fc = sym(L.dense({ units: 5, name: "fc" }).apply(gap));
  const m = tf.model({ inputs: x, outputs: fc });
  seedWeights(m);
  return m;
}

function smallInputs(): tf.Tensor4D {
  return tf.tensor4d(rand(3 * 16 * 16 * 3, 99), [3, 16, 16, 3]);
}

Deno.test("functional net: EB sums to 1, zero residual branches change nothing", async () => {
  const plain = functionalNet(false);
  const zero = functionalNet(true);
  const x = smallInputs();
  try {
    const g = sessionOf(plain).graph;
    assertEquals(defaultSaliencyLayer(g), "r1");
    assertEquals(defaultContrastLayer(g, "r1"), "gap");
    assertEquals(defaultSaliencyLayer(sessionOf(zero).graph), "r1");
    const branchMass = [0, 0, 0];
    for (const layer of ["r1", "cat", "p", "a", "r2"]) {
      const es = await explain(plain, x, { method: "eb", layer, targets: [0, 2, 4], ...RAW });
      for (const e of es) {
        const sum = e.map.reduce((s, v) => s + v, 0);
        if (layer === "a" || layer === "p") branchMass[e.image] += sum;
        else assert(Math.abs(sum - 1) < 1e-5, `${layer} image ${e.image}: sum ${sum}`);
      }
      const a = concat(es);
      const b = await maps(zero, x, { method: "eb", layer, targets: [0, 2, 4], ...RAW });
      assert(b.every(Number.isFinite), `${layer}: non-finite values`);
      const d = maxDiff(b, a, true);
      assert(d < 1e-6, `${layer}: with zero branches differs by ${d}`);
    }
    // The two concatenated branches share the mass.
    for (const m of branchMass) assert(Math.abs(m - 1) < 1e-5, `a + p: sum ${m}`);
    // With the zero summands, their share is exactly 0.
    const shares = await maps(zero, x, { method: "eb", layer: "zero1", ...RAW });
    assert(shares.every((v) => v === 0));
  } finally {
    x.dispose();
    plain.dispose();
    zero.dispose();
  }
});

Deno.test("functional net: c-EB with the contrast at the GAP output", async () => {
  const net = functionalNet(false);
  const x = smallInputs();
  try {
    const t = [0, 2, 4];
    const ceb = await maps(net, x, { method: "c-eb", targets: t, ...RAW });
    const same = await maps(net, x, {
      method: "c-eb",
      layer: "r1",
      methodOptions: { contrastLayer: "gap", classifier: "fc" },
      targets: t,
      ...RAW,
    });
    assertEquals(same, ceb);
    assert(ceb.every((v) => v >= 0 && Number.isFinite(v)));
    assert(ceb.some((v) => v > 0));
    const eb = await maps(net, x, { method: "eb", targets: t, ...RAW });
    const clampEb = eb.map((v) => Math.max(v, 0));
    assert(maxDiff(ceb, clampEb, true) > 1e-3, "the contrast must change the map");
    const dropped = await maps(net, x, {
      method: "c-eb",
      methodOptions: { dropContrast: true },
      targets: t,
      ...RAW,
    });
    assertEquals(dropped, clampEb);
    // Contrast at the saliency layer itself: also runs, also differs.
    const atLayer = await maps(net, x, {
      method: "c-eb",
      methodOptions: { contrastLayer: "r1" },
      targets: t,
      ...RAW,
    });
    assert(atLayer.every((v) => v >= 0 && Number.isFinite(v)));
  } finally {
    x.dispose();
    net.dispose();
  }
});

// ---------------------------------------------------------------------------------------
// Errors.

function chain(layers: tf.layers.Layer[], inputShape: number[]): tf.LayersModel {
  const x = tf.input({ shape: inputShape, name: "img" });
  let y: tf.SymbolicTensor = x;
  for (const l of layers) y = l.apply(y) as tf.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: y });
  seedWeights(m);
  return m;
}

Deno.test("EB / c-EB errors: unsupported layers, layers after the classifier, no classifier", async () => {
  const L = tf.layers;
  const x = smallInputs();
  const sigmoid = chain([
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", name: "c1" }),
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "softmax", name: "sig" }),
    L.globalAveragePooling2d({ name: "gap" }),
    L.dense({ units: 3, name: "fc" }),
  ], [16, 16, 3]);
  const generic = chain([
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", name: "c1" }),
    L.layerNormalization({ name: "ln" }),
    L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", name: "c2" }),
    L.flatten({ name: "flat" }),
    L.dense({ units: 3, activation: "softmax", name: "fc" }),
  ], [16, 16, 3]);
  const noKernel = chain([
    L.maxPooling2d({ poolSize: 2, name: "p" }),
    L.globalAveragePooling2d({ name: "gap" }),
  ], [16, 16, 3]);
  // A first successful run fills the positive-weight cache (kept while the model lives).
  await explain(generic, x, { method: "eb", layer: "c2" });
  const before = tf.memory().numTensors;
  try {
    await assertRejects(
      () => explain(sigmoid, x, { method: "eb", layer: "c1" }),
      /^excitation backprop has no rule for layer 'sig' \(Conv2D, activation 'softmax'\)$/,
    );
    await assertRejects(
      () => explain(generic, x, { method: "c-eb", layer: "c1" }),
      /^excitation backprop has no rule for layer 'ln' \(LayerNormalization\)$/,
    );
    // A final softmax is not on the path (scores are the logits): above the LayerNorm is fine.
    await explain(generic, x, { method: "eb", layer: "c2" });
    await assertRejects(
      () => explain(sigmoid, x, { method: "c-eb", layer: "fc" }),
      /saliency layer 'fc' must lie before the classifier 'fc'/,
    );
    await assertRejects(
      () =>
        explain(sigmoid, x, { method: "c-eb", layer: "c1", methodOptions: { classifier: "c1" } }),
      /saliency layer 'c1' must lie before the classifier 'c1'/,
    );
    await assertRejects(
      () =>
        explain(sigmoid, x, {
          method: "c-eb",
          layer: "sig",
          methodOptions: { contrastLayer: "c1" },
        }),
      /contrast layer 'c1' must be the saliency layer 'sig' or lie after it/,
    );
    await assertRejects(
      () =>
        explain(sigmoid, x, {
          method: "c-eb",
          layer: "c1",
          methodOptions: { contrastLayer: "fc" },
        }),
      /contrast layer 'fc' must lie before the classifier 'fc'/,
    );
    await assertRejects(
      () =>
        explain(sigmoid, x, {
          method: "c-eb",
          layer: "c1",
          methodOptions: { dropContrast: "maybe" },
        }),
      /method 'contrastive-excitation-backprop': option 'dropContrast' must be true\|false, got 'maybe'/,
    );
    await assertRejects(
      () => explain(sigmoid, x, { method: "eb", layer: "gap" }),
      /output shape \[,4\]; the maps need a 4-D/,
    );
    await assertRejects(
      () => explain(noKernel, x, { method: "c-eb" }),
      /the model has no layer with a kernel/,
    );
    await assertRejects(
      () => explain(noKernel, x, { method: "eb", layer: "p" }),
      /the model has no layer with a kernel/,
    );
    assertEquals(tf.memory().numTensors, before);
  } finally {
    x.dispose();
    sigmoid.dispose();
    generic.dispose();
    noKernel.dispose();
  }
});

Deno.test("EB / c-EB: tensor count stable over 20 calls", async () => {
  const one = inputs.slice([1, 0, 0, 0], [1, 64, 64, 3]);
  const run = async (i: number) => {
    if (i % 2) await explain(model, one, { method: "c-eb", extrapolator: "gradual" });
    else await explain(model, one, { method: "eb" });
  };
  await run(0);
  await run(1);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) await run(i);
  assertEquals(tf.memory().numTensors, before);
  one.dispose();
});

Deno.test("EB / c-EB on the wasm backend match the fixtures", async () => {
  await initBackend({ backend: "wasm", threads: 1 });
  const x = tf.tensor4d(readF32("model_inputs"), [4, 64, 64, 3]);
  try {
    checkFixture("eb_torchray", await maps(model, x, { method: "eb", ...RAW }), 1e-4, true);
    checkFixture("ceb_torchray", await maps(model, x, { method: "ceb", ...RAW }), 1e-4, true);
    const single = await maps(model, x, { method: "c-eb", extrapolator: "gradual" });
    checkFixture("gradual_ceb_torchray_single", single, 1e-4, false);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await maps(model, x, { method: "ceb", ...RAW });
    assertEquals(tf.memory().numTensors, before);
  } finally {
    x.dispose();
    await tf.setBackend("cpu");
  }
});
