/**
 * Tests of the explanation-quality metrics (`metrics/`): hand-made cases with known answers,
 * and `evaluate()` end to end on generated scenes.
 */
import * as tf from "@tensorflow/tfjs";
import "../plugins/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { explain } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import type { Tensor4D } from "../core/tensor.ts";
import { preprocess } from "../io/mod.ts";
import { registry } from "../core/registry.ts";
import { generateScene } from "../models/scenes.ts";
import { EVAL_SEED_START, evalCommand } from "../cli/eval.ts";
import {
  bootstrapMean,
  centreBaseline,
  curveSteps,
  deletionInsertion,
  dilateMask,
  energyPointing,
  type EvalSample,
  evaluate,
  formatEvalTable,
  gaussianBlur,
  pointingGame,
  pointingTolerance,
  riseBlur,
  riseKernel1d,
  saliencyOrder,
  type Scorer,
  trapezoidAuc,
} from "../metrics/mod.ts";
import { assert, assertAlmostEquals, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });
tf.enableProdMode();

// A 16 × 16 image whose object is the 4 × 4 square x, y in 6..9.
const H = 16, W = 16;
const MASK = new Uint8Array(H * W);
for (let y = 6; y < 10; y++) for (let x = 6; x < 10; x++) MASK[y * W + x] = 1;
const BOX = [6, 6, 10, 10] as const;
const count = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) s++;
  return s;
};

Deno.test("pointing: tolerance is 15 px at 224, scaled by the smaller side", () => {
  assertEquals(pointingTolerance(224, 224), 15);
  assertAlmostEquals(pointingTolerance(128, 128), 15 * 128 / 224, 1e-12);
  assertAlmostEquals(pointingTolerance(64, 448), 15 * 64 / 224, 1e-12);
});

Deno.test("pointing: dilation by an open disc (strict <, as TorchRay)", () => {
  assertEquals(count(dilateMask(MASK, H, W, 0)), 16); // the mask itself
  // r = 15·16/224 ≈ 1.07: only the 4 neighbours (dx² + dy² = 1) are within reach, so the
  // 4 × 4 square grows to a 6 × 6 square without its 4 corners.
  assertEquals(count(dilateMask(MASK, H, W, pointingTolerance(H, W))), 32);
  // r = 2: diagonals (2 < 4) join, distance exactly 2 does not: a full 6 × 6 square.
  assertEquals(count(dilateMask(MASK, H, W, 2)), 36);
  // r = 2.01: distance 2 joins too: 6 × 6 plus 4 × 4 one-pixel-thick sides.
  assertEquals(count(dilateMask(MASK, H, W, 2.01)), 36 + 16);
});

Deno.test("pointing: perfect map hits, inverted map misses", () => {
  const perfect = Float32Array.from(MASK);
  const inverted = Float32Array.from(MASK, (v) => 1 - v);
  for (const ties of ["average", "first"] as const) {
    assertEquals(pointingGame(perfect, MASK, H, W, { ties }), 1);
    assertEquals(pointingGame(inverted, MASK, H, W, { ties, tolerance: 0 }), 0);
  }
  assertEquals(energyPointing(perfect, BOX, H, W), 1);
  assertEquals(energyPointing(inverted, BOX, H, W), 0);
  // Inverted with the default tolerance: the 16 ring pixels of the dilated mask are among
  // the 240 tied maxima outside the object.
  assertAlmostEquals(pointingGame(inverted, MASK, H, W), 16 / 240, 1e-12);
  assertEquals(pointingGame(inverted, MASK, H, W, { ties: "first" }), 0); // pixel (0, 0)
});

Deno.test("pointing: constant map scores the dilated-mask area (ties) and box area (energy)", () => {
  const flat = new Float32Array(H * W).fill(0.3);
  assertAlmostEquals(pointingGame(flat, MASK, H, W), 32 / 256, 1e-12);
  assertAlmostEquals(pointingGame(flat, MASK, H, W, { tolerance: 2 }), 36 / 256, 1e-12);
  assertEquals(pointingGame(flat, MASK, H, W, { ties: "first" }), 0);
  assertAlmostEquals(energyPointing(flat, BOX, H, W), 16 / 256, 1e-12);
  // No positive mass: like a constant map. Negative values are clamped to 0.
  assertAlmostEquals(energyPointing(new Float32Array(H * W), BOX, H, W), 16 / 256, 1e-12);
  const neg = Float32Array.from(MASK, (v) => (v ? 1 : -5));
  assertEquals(energyPointing(neg, BOX, H, W), 1);
  // Two tied maxima, one on the object and one far away: half a hit.
  const two = new Float32Array(H * W);
  two[7 * W + 7] = 1;
  two[0] = 1;
  assertEquals(pointingGame(two, MASK, H, W), 0.5);
  assertEquals(pointingGame(two, MASK, H, W, { ties: "first" }), 0);
});

Deno.test("centre baseline: Gaussian at the centre with sigma = a quarter of the side", () => {
  const m = centreBaseline(9, 9);
  assertEquals(m[4 * 9 + 4], 1);
  const sigma = 9 / 4;
  assertAlmostEquals(m[4 * 9 + 0], Math.exp(-16 / (2 * sigma * sigma)), 1e-6);
  assertAlmostEquals(m[0], Math.exp(-32 / (2 * sigma * sigma)), 1e-6);
  for (let i = 0; i < 81; i++) assertAlmostEquals(m[i], m[80 - i], 1e-7); // symmetric
  const even = centreBaseline(H, W); // 4 tied maxima around the centre, all in the object
  assertEquals(pointingGame(even, MASK, H, W, { tolerance: 0 }), 1);
});

// Deletion / insertion on a hand-made model: 4 × 4 RGB images of ones, class 0's score is
// the mean of the top-left 2 × 2 region (pixels 0, 1, 4, 5), class 1's is always 0.
const S = 4;
const REGION = [0, 1, 4, 5];
const ones = new Float32Array(S * S * 3).fill(1);
let calls = 0;
const regionMean: Scorer = (x) => {
  calls++;
  return tf.tidy(() => {
    const s = x.slice([0, 0, 0, 0], [-1, 2, 2, -1]).mean([1, 2, 3]).reshape([-1, 1]);
    return tf.concat([s, tf.zerosLike(s)], 1) as tf.Tensor2D;
  });
};
const perfectMap = Float32Array.from({ length: S * S }, (_, i) => (REGION.includes(i) ? 1 : 0));
const invertedMap = perfectMap.map((v) => 1 - v);
const curveOpts = { height: S, width: S, steps: 4, output: "raw", insertionBaseline: 0 } as const;

Deno.test("deletion/insertion: exact trapezoid areas on a 4-step curve", async () => {
  const [dp, di, ip, ii] = await deletionInsertion(regionMean, [
    { kind: "deletion", image: ones, map: perfectMap, classIndex: 0 },
    { kind: "deletion", image: ones, map: invertedMap, classIndex: 0 },
    { kind: "insertion", image: ones, map: perfectMap, classIndex: 0 },
    { kind: "insertion", image: ones, map: invertedMap, classIndex: 0 },
  ], curveOpts);
  assertEquals(Array.from(dp.x), [0, 0.25, 0.5, 0.75, 1]);
  assertEquals(Array.from(dp.y), [1, 0, 0, 0, 0]);
  assertAlmostEquals(dp.auc, 0.125, 1e-12);
  assertEquals(Array.from(di.y), [1, 1, 1, 1, 0]);
  assertAlmostEquals(di.auc, 0.875, 1e-12);
  assertEquals(Array.from(ip.y), [0, 1, 1, 1, 1]);
  assertAlmostEquals(ip.auc, 0.875, 1e-12);
  assertEquals(Array.from(ii.y), [0, 0, 0, 0, 1]);
  assertAlmostEquals(ii.auc, 0.125, 1e-12);
  // Row-major order (map decreasing with the index): step 1 removes pixels 0..3, two of the
  // region's four; step 2 the other two. y = [1, 0.5, 0, 0, 0], area 0.25.
  const byIndex = Float32Array.from({ length: S * S }, (_, i) => S * S - i);
  const [d] = await deletionInsertion(
    regionMean,
    [{ kind: "deletion", image: ones, map: byIndex, classIndex: 0 }],
    curveOpts,
  );
  assertEquals(Array.from(d.y), [1, 0.5, 0, 0, 0]);
  assertAlmostEquals(d.auc, 0.25, 1e-12);
  // The other class and the default softmax output: class 0's probability is sigmoid(s).
  const [soft] = await deletionInsertion(
    regionMean,
    [{ kind: "deletion", image: ones, map: perfectMap, classIndex: 0 }],
    { height: S, width: S, steps: 4 },
  );
  const sig = (s: number): number => 1 / (1 + Math.exp(-s));
  soft.y.forEach((v, k) => assertAlmostEquals(v, sig(k === 0 ? 1 : 0), 1e-6));
  const [other] = await deletionInsertion(
    regionMean,
    [{ kind: "deletion", image: ones, map: perfectMap, classIndex: 1 }],
    curveOpts,
  );
  assertEquals(Array.from(other.y), [0, 0, 0, 0, 0]);
});

Deno.test("deletion/insertion: batching does not change curves; one model call per batch", async () => {
  const reqs = [
    { kind: "deletion", image: ones, map: perfectMap, classIndex: 0 },
    { kind: "insertion", image: ones, map: invertedMap, classIndex: 0 },
  ] as const;
  const ref = await deletionInsertion(regionMean, reqs, { ...curveOpts, batchSize: 32 });
  for (const batchSize of [1, 3, 4, 7]) {
    calls = 0;
    const got = await deletionInsertion(regionMean, reqs, {
      ...curveOpts,
      batchSize,
      shareImages: false,
    });
    assertEquals(calls, Math.ceil(10 / batchSize));
    assertEquals(got.map((c) => Array.from(c.y)), ref.map((c) => Array.from(c.y)));
  }
  const before = tf.memory().numTensors;
  await deletionInsertion(regionMean, reqs, curveOpts);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("deletion/insertion: equal step images are scored once per class, same curves", async () => {
  // A scorer that counts the images it sees and scores class k by a per-class weighting,
  // so that sharing an image between classes would show.
  let seen = 0;
  const scorer: Scorer = (x) => {
    seen += x.shape[0];
    return tf.tidy(() => {
      const m = x.mean([1, 2, 3]).reshape([-1, 1]);
      return tf.concat([m, m.mul(-2), m.square()], 1) as tf.Tensor2D;
    });
  };
  const n = 16;
  const img = (seed: number): Float32Array =>
    Float32Array.from({ length: n * n * 3 }, (_, i) => 1 + ((i * 7919 + seed * 104729) % 97));
  const a = img(1), b = img(2);
  const map1 = Float32Array.from({ length: n * n }, (_, i) => (i * 37) % 16);
  const map2 = Float32Array.from({ length: n * n }, (_, i) => (i * 11) % 16);
  const reqs = [a, b].flatMap((image, k) =>
    [map1, map2].flatMap((map) =>
      [0, 1, 2].flatMap((classIndex) => [
        { kind: "deletion" as const, image, map, classIndex },
        { kind: "insertion" as const, image, map, classIndex: (classIndex + k) % 3 },
      ])
    )
  );
  const opts = { height: n, width: n, steps: 4, output: "raw" as const };
  const stats: { images: number; scored: number }[] = [];
  const shared = await deletionInsertion(scorer, reqs, { ...opts, onStats: (x) => stats.push(x) });
  const sharedSeen = seen;
  seen = 0;
  const plain = await deletionInsertion(scorer, reqs, { ...opts, shareImages: false });
  assertEquals(shared.map((c) => Array.from(c.y)), plain.map((c) => Array.from(c.y)));
  assertEquals(seen, reqs.length * 5);
  assertEquals(stats, [{ images: reqs.length * 5, scored: sharedSeen }]);
  // Per (image, class): the image once (deletion start = insertion end), the blurred start
  // once; per class the fully deleted image once; the 3 middle steps of every curve.
  assertEquals(sharedSeen, 2 * 3 + 2 * 3 + 3 + reqs.length * 3);
  // A step that changes nothing reuses the previous score (inserting into the image itself).
  seen = 0;
  const [same] = await deletionInsertion(
    scorer,
    [{ kind: "insertion", image: a, map: map1, classIndex: 0 }],
    { ...opts, insertionBaseline: a },
  );
  assertEquals(seen, 1);
  assert(same.y.every((v) => v === same.y[0]), "flat curve");
});

Deno.test("deletion/insertion: RISE's insertion start (11-tap kernel, zero padding)", async () => {
  const k = riseKernel1d();
  assertEquals(k.length, 11);
  assertAlmostEquals(k.reduce((s, v) => s + v, 0), 1, 1e-12); // it sums to 1
  for (let i = 0; i < 5; i++) {
    assertAlmostEquals(k[i], k[10 - i], 1e-15);
    assert(k[i] < k[i + 1], "peaks at the centre");
  }
  // σ = 5 on 11 samples with the reflected tails folded back in: nearly flat. Reference:
  // numpy, the impulse padded by 20 in 'symmetric' mode (= scipy's 'reflect') and
  // correlated with the normalised 41-tap Gaussian, as gaussian_filter1d(σ = 5) does.
  const ref = [
    0.08795814577727815,
    0.08889611977709483,
    0.09047419654910867,
    0.09219111781938807,
    0.09348938844291409,
    0.0939820632684325,
  ];
  ref.forEach((v, i) => assertAlmostEquals(k[i], v, 1e-12));
  const n = 24;
  const flat = new Float32Array(n * n * 3).fill(2);
  const b = riseBlur(flat, n, n);
  // Away from the border (>= 5 px) a constant stays; at the border zero padding darkens it.
  assertAlmostEquals(b[(12 * n + 12) * 3], 2, 1e-5);
  assertAlmostEquals(b[(0 * n + 12) * 3], 2 * (k[5] + k[6] + k[7] + k[8] + k[9] + k[10]), 1e-5);
  assert(b[0] < b[(0 * n + 12) * 3], "corners darkest");
  // The option reaches the curves: the insertion start differs, nothing else.
  const image = Float32Array.from({ length: n * n * 3 }, (_, i) => (i % 5) / 5);
  const map = Float32Array.from({ length: n * n }, (_, i) => i % 7);
  const req = [{ kind: "insertion" as const, image, map, classIndex: 0 }];
  const mean: Scorer = (x) => tf.tidy(() => x.mean([1, 2, 3]).reshape([-1, 1]) as tf.Tensor2D);
  const o = { height: n, width: n, steps: 4, output: "raw" as const };
  const [g] = await deletionInsertion(mean, req, o);
  const [r] = await deletionInsertion(mean, req, { ...o, insertionStart: "rise" });
  assert(g.y[0] !== r.y[0], "another start");
  assertAlmostEquals(r.y[0], riseBlur(image, n, n).reduce((s, v) => s + v, 0) / image.length, 1e-5);
  assertEquals(r.y[4], g.y[4]);
});

Deno.test("deletion/insertion: order, steps, trapezoid and blur helpers", () => {
  assertEquals(Array.from(saliencyOrder([0.5, 1, 0.5, 1, NaN, 0])), [1, 3, 0, 2, 5, 4]);
  const { perStep, x } = curveSteps(10, 4); // 3 pixels per step, last step partial
  assertEquals(perStep, 3);
  assertEquals(Array.from(x), [0, 0.3, 0.6, 0.9, 1]);
  assertAlmostEquals(trapezoidAuc([0, 0.5, 1], [1, 0, 0]), 0.25, 1e-12);
  assertAlmostEquals(trapezoidAuc(x, [1, 1, 1, 1, 1]), 1, 1e-12);
  const flat = new Float32Array(8 * 8 * 3).fill(0.25);
  assert(gaussianBlur(flat, 8, 8, 1.5).every((v) => Math.abs(v - 0.25) < 1e-6), "flat stays");
  const delta = new Float32Array(15 * 15);
  delta[7 * 15 + 7] = 1;
  const b = gaussianBlur(delta, 15, 15, 1); // radius 3 fits: mass is kept, peak spreads
  assertAlmostEquals(b.reduce((s, v) => s + v, 0), 1, 1e-5);
  assert(b[7 * 15 + 7] < 0.2 && b[7 * 15 + 8] > 0, "blurred");
});

Deno.test("bootstrap: CI contains the mean, deterministic for a seed", () => {
  const vals = Array.from({ length: 50 }, (_, i) => ((i * 37) % 11) / 10);
  const a = bootstrapMean(vals, { seed: 3 });
  const b = bootstrapMean(vals, { seed: 3 });
  assertEquals(a, b);
  const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
  assertAlmostEquals(a.mean, mean, 1e-12);
  assert(a.lo < a.mean && a.mean < a.hi, `CI [${a.lo}, ${a.hi}] contains ${a.mean}`);
  assert(a.hi - a.lo < 0.4, "a sensible width");
  const c = bootstrapMean(vals, { seed: 4 });
  assert(c.lo !== a.lo || c.hi !== a.hi, "another seed resamples differently");
  assertEquals(bootstrapMean([2, NaN, 2, Infinity]), { mean: 2, lo: 2, hi: 2, n: 2 });
  assertEquals(bootstrapMean([]).n, 0);
});

Deno.test("evaluate: 8 generated scenes with vgg_tiny end to end", async () => {
  const model = await loadLayersModel("tests/fixtures/models/vgg_tiny/tfjs/model.json");
  const size = 64;
  function* samples(): Generator<EvalSample> {
    for (let i = 0; i < 8; i++) {
      const s = generateScene(4_000_000 + i, { size });
      yield {
        image: preprocess({ width: size, height: size, data: s.image }, "imagenet"),
        mask: s.mask,
        box: s.box,
        label: s.label,
      };
    }
  }
  const methods = ["grad-cam"];
  if (registry.methods().some((m) => m.aliases?.includes("c-eb"))) methods.push("c-eb");
  const seen: number[] = [];
  // c-EB caches the positive weights of each kernel while the model lives: warm it up first.
  const warm = tf.zeros([1, size, size, 3]) as Tensor4D;
  for (const method of methods) await explain(model, warm, { method });
  warm.dispose();
  const before = tf.memory().numTensors;
  const r = await evaluate({
    model,
    samples: samples(),
    methods,
    extrapolators: ["none", "gradual"],
    steps: 16,
    sampleBatch: 3,
    curveSamples: 5,
    seed: 1,
    total: 8,
    onProgress: (p) => seen.push(p.done),
  });
  assertEquals(tf.memory().numTensors, before);
  assertEquals(seen, [3, 6, 8]);
  assertEquals(r.curveSamples, 5);
  assertEquals(r.n, 8);
  assertEquals(r.rows.length, methods.length * 2 + 1);
  assertEquals(r.rows.at(-1)?.method, "centre-baseline");
  for (const row of r.rows) {
    for (const k of ["pointing", "pointingFirst", "energy", "deletion", "insertion"] as const) {
      const m = row[k];
      const expected = k === "deletion" || k === "insertion" ? 5 : 8;
      assertEquals(m.n, expected, `${row.method}/${row.extrapolator} ${k}`);
      assert(
        Number.isFinite(m.mean) && m.lo <= m.mean && m.mean <= m.hi && m.lo >= 0 && m.hi <= 1,
        `${row.method}/${row.extrapolator} ${k}: ${JSON.stringify(m)}`,
      );
    }
    assert(Number.isFinite(row.msPerImage) && row.msPerImage >= 0, "time per image");
  }
  const table = formatEvalTable(r).split("\n");
  assertEquals(table.length, 2 + r.rows.length);
  // Deterministic: the same samples and seed give the same numbers (timings aside).
  const again = await evaluate({
    model,
    samples: samples(),
    methods,
    extrapolators: ["none", "gradual"],
    steps: 16,
    sampleBatch: 8,
    curveSamples: 5,
    seed: 1,
  });
  const strip = (x: typeof r): unknown => x.rows.map((row) => ({ ...row, msPerImage: 0 }));
  assertEquals(strip(again), strip(r));
});

Deno.test("cli eval: --json on held-out scenes", async () => {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  let code: number;
  try {
    code = await evalCommand([
      "--model",
      "tests/fixtures/models/vgg_tiny/tfjs/model.json",
      "--n",
      "3",
      "--steps",
      "4",
      "--extrapolate",
      "gradual",
      "--json",
      "--quiet",
      "--threads",
      "1",
    ]);
  } finally {
    console.log = log;
  }
  assertEquals(code, 0);
  const report = JSON.parse(out.join("\n"));
  assertEquals(report.sceneSeeds, [EVAL_SEED_START, EVAL_SEED_START + 2]);
  assertEquals(report.preprocess, "imagenet");
  assertEquals(
    report.rows.map((r: { method: string; extrapolator: string }) =>
      r.method + "+" + r.extrapolator
    ),
    ["grad-cam+gradual", "centre-baseline+none"],
  );
  assertEquals(report.rows[0].pointing.n, 3);
  // Held-out seeds lie above the training, validation, test and sample ranges.
  assert(EVAL_SEED_START > 3_000_007, "disjoint from models/train.ts and make_samples.ts seeds");
});
