/**
 * Tests of the added saliency methods: the CAM family (Grad-CAM++, XGrad-CAM, LayerCAM,
 * HiResCAM, Grad-CAM element-wise, EigenCAM, Score-CAM), the input-gradient methods
 * (gradient, gradient x input, guided backprop, deconvnet), SmoothGrad and integrated
 * gradients: conformance with the reference fixtures, IG completeness, SmoothGrad
 * determinism, the gradual extrapolator on every method, and tensor bookkeeping.
 */
import { initBackend } from "../backend/mod.ts";
import { explain, postprocess, sessionOf } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import type { ModelSession } from "../core/session.ts";
import { oneHotSeed } from "../core/targets.ts";
import { tf } from "../core/tensor.ts";
import { runConformance } from "../conformance/run.ts";
import "../plugins/mod.ts";
import { deconvReluRule } from "../plugins/deconvnet.ts";
import { guidedReluRule } from "../plugins/guided_backprop.ts";
import { assert, assertEquals } from "./_assert.ts";
import { maxRel } from "./_maps.ts";

const FIX = new URL("./fixtures/", import.meta.url);

function readF32(name: string): Float32Array {
  const b = Deno.readFileSync(new URL(`vgg_tiny/${name}.bin`, FIX));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function concat(maps: { map: Float32Array }[]): Float32Array {
  const out = new Float32Array(maps.reduce((a, e) => a + e.map.length, 0));
  let k = 0;
  for (const e of maps) {
    out.set(e.map, k);
    k += e.map.length;
  }
  return out;
}

await initBackend({ backend: "wasm", threads: 1 });
const model = await loadLayersModel(new URL("models/vgg_tiny/tfjs/model.json", FIX));
const session = sessionOf(model) as ModelSession;
const x = tf.tensor4d(readF32("model_inputs"), [4, 64, 64, 3]);
const TARGETS = [9, 3, 5, 8];
const CAM_LAYER = "features_11";

const MY_ARRAYS = [
  ...["gradcampp", "xgradcam", "layercam", "hirescam", "scorecam", "gradcamelementwise"]
    .flatMap((m) => [`${m}_pgc_raw`, `${m}_pgc_output`]),
  "eigencam_pgc_raw",
  "gradient_torchray",
  "guided_backprop_torchray",
  "deconvnet_torchray",
];

Deno.test("methods: conformance of the CAM family and the TorchRay input methods", async () => {
  const report = await runConformance(new URL("fixtures.json", FIX));
  const arrays = report.models.vgg_tiny;
  for (const name of MY_ARRAYS) {
    const r = arrays[name];
    assert(r !== undefined && r !== "skipped", `${name} was not run`);
    assert(r.pass, `${name}: ${r.max_abs_over_max_ref} > ${r.tolerance}`);
    assert(r.max_abs_over_max_ref <= 1e-4, `${name}: ${r.max_abs_over_max_ref}`);
  }
});

Deno.test("methods: EigenCAM output matches where the (arbitrary) SVD sign is aligned", async () => {
  const raw = await explain(model, x, {
    method: "eigen-cam",
    layer: CAM_LAYER,
    methodOptions: { raw: true },
    targets: TARGETS,
    resize: "none",
    normalize: "none",
  });
  const refRaw = readF32("eigencam_pgc_raw");
  const refOut = readF32("eigencam_pgc_output");
  const per = 16 * 16;
  const signs = raw.map((e, b) => {
    const r = refRaw.subarray(b * per, (b + 1) * per);
    const neg = e.map.map((v) => -v);
    return maxRel(e.map, r) <= maxRel(neg, r) ? 1 : -1;
  });
  // Raw maps agree up to the per-image sign.
  const aligned = new Float32Array(4 * per);
  raw.forEach((e, b) => aligned.set(e.map.map((v) => signs[b] * v), b * per));
  assert(maxRel(aligned, refRaw) <= 1e-4, `raw ${maxRel(aligned, refRaw)}`);
  // The library's output pipeline (ReLU, min-max, half-pixel resize, min-max) on the
  // sign-aligned raw map reproduces pytorch-grad-cam's output for every image.
  const maps = tf.tidy(() => tf.relu(tf.tensor3d(aligned, [4, 16, 16])) as tf.Tensor3D);
  const out = postprocess(
    { maps, method: "eigen-cam", layer: CAM_LAYER, classes: TARGETS, resolution: [16, 16] },
    [64, 64],
    "input",
    "minmax",
  );
  const got = out.dataSync() as Float32Array;
  maps.dispose();
  out.dispose();
  assert(maxRel(got, refOut) <= 1e-4, `output ${maxRel(got, refOut)}`);
  // And the method's own output does so on every image whose sign agrees.
  const full = await explain(model, x, { method: "eigen-cam", layer: CAM_LAYER, targets: TARGETS });
  const ppi = 64 * 64;
  let agreeing = 0;
  full.forEach((e, b) => {
    if (signs[b] !== 1) return;
    agreeing++;
    const r = refOut.subarray(b * ppi, (b + 1) * ppi);
    assert(maxRel(e.map, r) <= 1e-4, `image ${b}: ${maxRel(e.map, r)}`);
  });
  assert(agreeing >= 3, `the default sign convention agrees on ${agreeing} of 4 images`);
});

Deno.test("methods: signed pseudo-gradients of the TorchRay input methods", () => {
  const cases = [
    ["gradient_torchray_signed", undefined],
    ["guided_backprop_torchray_signed", guidedReluRule],
    ["deconvnet_torchray_signed", deconvReluRule],
  ] as const;
  const input = session.graph.inputName;
  const pass = session.forward(x, { gradientsFrom: [input] });
  const seed = oneHotSeed(TARGETS, 10);
  try {
    for (const [name, rule] of cases) {
      const [g] = pass.backward(seed, { wrt: [input], rule });
      const got = g.dataSync() as Float32Array;
      g.dispose();
      const err = maxRel(got, readF32(name));
      assert(err <= 1e-4, `${name}: ${err}`);
    }
  } finally {
    seed.dispose();
    pass.dispose();
  }
});

Deno.test("methods: integrated gradients is complete within 1% (128 trapezoid steps)", async () => {
  const zeros = tf.zeros([4, 64, 64, 3]) as tf.Tensor4D;
  const base = session.predict(zeros);
  const baseRows = base.arraySync() as number[][];
  base.dispose();
  zeros.dispose();
  // 50 steps (the default) leave up to 1.5 % on this ReLU net, see the module docs.
  const res = await explain(model, x, {
    method: "integrated-gradients",
    methodOptions: { steps: 128, riemann: "trapezoid", batchSize: 64 },
    targets: TARGETS,
    normalize: "none",
  });
  res.forEach((e, b) => {
    const total = e.map.reduce((a, v) => a + v, 0);
    const want = e.score - baseRows[b][TARGETS[b]];
    const rel = Math.abs(total - want) / Math.abs(want);
    assert(rel <= 0.01, `image ${b}: sum ${total} vs f(x) - f(0) = ${want} (${rel})`);
  });
});

Deno.test("methods: SmoothGrad is deterministic and equals its base with noise 0", async () => {
  const run = (opts: Record<string, unknown>, method = "smooth-grad") =>
    explain(model, x, { method, methodOptions: opts, targets: TARGETS, normalize: "none" });
  const a = concat(await run({ samples: 6, seed: 7 }));
  const b = concat(await run({ samples: 6, seed: 7, batchSize: 8 }));
  const c = concat(await run({ samples: 6, seed: 8 }));
  assert(maxRel(a, b) <= 1e-6, "same seed, other batch size: same map");
  assert(maxRel(c, a) > 1e-3, "another seed gives another map");
  for (const base of ["gradient", "guided-backprop", "grad-cam"]) {
    const s = concat(await run({ base, samples: 5, noise: 0 }));
    const ref = concat(await run({}, base));
    assert(maxRel(s, ref) <= 1e-5, `${base}: ${maxRel(s, ref)}`);
  }
  // Custom score functions are tiled block by block.
  const fn = (s: tf.Tensor2D): tf.Tensor1D => s.slice([0, 2], [-1, 1]).reshape([-1]) as tf.Tensor1D;
  const sf = concat(
    await explain(model, x, {
      method: "smooth-grad",
      methodOptions: { samples: 3, noise: 0 },
      targets: fn,
      normalize: "none",
    }),
  );
  const gf = concat(
    await explain(model, x, { method: "gradient", targets: fn, normalize: "none" }),
  );
  assert(maxRel(sf, gf) <= 1e-5, `score function: ${maxRel(sf, gf)}`);
});

const ALL_METHODS: [string, Record<string, unknown>][] = [
  ["grad-cam++", {}],
  ["xgrad-cam", {}],
  ["layer-cam", {}],
  ["hires-cam", {}],
  ["grad-cam-elementwise", {}],
  ["eigen-cam", {}],
  ["score-cam", { batchSize: 64 }],
  ["gradient", {}],
  ["gradient-x-input", {}],
  ["guided-backprop", {}],
  ["deconvnet", {}],
  ["smooth-grad", { samples: 2 }],
  ["integrated-gradients", { steps: 4 }],
];

Deno.test("methods: every method runs with the gradual extrapolator, tensors stay bounded", async () => {
  for (const [method, methodOptions] of ALL_METHODS) {
    const call = () =>
      explain(model, x, { method, methodOptions, extrapolator: "gradual", targets: TARGETS });
    await call(); // warm-up (caches, kernels)
    const before = tf.memory().numTensors;
    const res = await call();
    assertEquals(tf.memory().numTensors, before, `${method} leaks tensors`);
    assertEquals(res.length, 4);
    for (const e of res) {
      assertEquals([e.height, e.width], [64, 64]);
      assert(e.map.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), `${method}: range`);
    }
    const plain = await explain(model, x, { method, methodOptions, targets: TARGETS });
    assertEquals(tf.memory().numTensors, before, `${method} (no extrapolator) leaks tensors`);
    assert(plain.every((e) => e.map.some((v) => v > 0)), `${method}: empty map`);
  }
});
