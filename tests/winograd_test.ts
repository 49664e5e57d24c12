import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "./_assert.ts";
import { getWinograd, initBackend, setWinograd } from "../backend/mod.ts";
import { winogradApplies } from "../backend/_winograd.ts";
import { conv2d, derivedWeight, flippedKernel } from "../backend/ops.ts";
import { ModelSession } from "../core/session.ts";
import { explain } from "../mod.ts";

await initBackend({ backend: "wasm", threads: 1 });

/** Deterministic pseudo-random floats in [lo, hi). */
function rand(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (s / 2 ** 32);
  }
  return tf.tensor(out, shape);
}

/** max |a - b| / max |a|. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0] / a.abs().max().dataSync()[0]);
}

/** A copy of the session's output for `x` (the pass is disposed). */
function outputOf(session: ModelSession, x: tf.Tensor4D): tf.Tensor {
  const pass = session.forward(x);
  const out = pass.output.clone();
  pass.dispose();
  return out;
}

function withMode<T>(m: "auto" | "all" | "off", f: () => T): T {
  const before = getWinograd();
  setWinograd(m);
  try {
    return f();
  } finally {
    setWinograd(before);
  }
}

Deno.test("winograd: the default mode is off (every convolution direct, exact)", () => {
  assertEquals(getWinograd(), "off");
});

Deno.test("winograd: equals the direct convolution (odd sizes, batches, padding edges)", () => {
  const cases: [number, number, number, number, number][] = [
    // [batch, height, width, Cin, Cout]
    [1, 8, 8, 96, 128],
    [2, 13, 11, 100, 120],
    [3, 4, 7, 64, 256],
    [1, 30, 17, 128, 96],
  ];
  cases.forEach(([n, h, w, ci, co], i) => {
    const x = rand([n, h, w, ci], 11 + i, 0, 1) as tf.Tensor4D;
    const k = tf.tidy(() => rand([3, 3, ci, co], 97 + i).mul(Math.sqrt(3 / (9 * ci))));
    const direct = tf.conv2d(x, k as tf.Tensor4D, 1, "same");
    const fast = withMode("all", () => {
      assert(winogradApplies(x, k, [1, 1], "same", [1, 1], "all"), `case ${i} takes the path`);
      return conv2d(x, k);
    });
    assertEquals(fast.shape, direct.shape);
    const err = relErr(direct, fast);
    assert(err < 3e-5, `case ${i}: relative error ${err}`);
    tf.dispose([x, k, direct, fast]);
  });
});

Deno.test("winograd: only where it applies; off and non-wasm use the direct conv", async () => {
  const x = tf.zeros([1, 16, 16, 256]);
  const k = tf.zeros([3, 3, 256, 256]);
  const k5 = tf.zeros([5, 5, 256, 256]);
  const thin = tf.zeros([3, 3, 256, 16]);
  const wide = tf.zeros([3, 3, 512, 512]);
  const yes = (kk: tf.Tensor, s: [number, number] = [1, 1], p = "same", d: [number, number] = [
    1,
    1,
  ]) => {
    // As conv2d asks: "off" never does.
    const m = getWinograd();
    return m !== "off" && winogradApplies(x, kk, s, p, d, m);
  };
  withMode("auto", () => {
    assert(yes(k));
    assert(!yes(wide), "auto keeps the memory of 512x512 kernels' transforms off");
    assert(!yes(k, [2, 2]) && !yes(k, [1, 1], "valid") && !yes(k, [1, 1], "same", [2, 2]));
    assert(!yes(k5) && !yes(thin));
  });
  withMode("all", () => assert(yes(wide)));
  withMode("off", () => assert(!yes(k)));
  await tf.setBackend("cpu");
  try {
    withMode("all", () => assert(!yes(k), "cpu backend: direct"));
  } finally {
    await tf.setBackend("wasm");
  }
  tf.dispose([x, k, k5, thin, wide]);
  let threw = false;
  try {
    setWinograd("fast" as "auto");
  } catch {
    threw = true;
  }
  assert(threw, "unknown mode is rejected");
});

Deno.test("winograd: a model's forward pass takes it, matches the direct pass, leaks nothing", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 128, kernelSize: 3, padding: "same" }),
      tf.layers.conv2d({ filters: 256, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 5 }),
    ],
  });
  const session = new ModelSession(model);
  const x = rand([2, 12, 12, 3], 5, 0, 1) as tf.Tensor4D;
  const logits = (): tf.Tensor => outputOf(session, x);
  const direct = withMode("off", logits);
  const fast = withMode("auto", logits); // first call caches the transformed kernel
  const err = relErr(direct, fast);
  assert(err < 3e-5, `relative error ${err}`);
  const profile = await tf.profile(() => withMode("auto", logits));
  assert(profile.kernels.some((k) => k.name === "GradualWinogradGather"), "Winograd ran");
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) withMode("auto", logits).dispose();
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([direct, fast, x]);
  tf.dispose(profile.result as tf.Tensor);
  model.dispose();
});

Deno.test("winograd: EB and c-EB never take it, in any mode; their maps equal the direct ones", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: "wino_c1",
        inputShape: [10, 10, 3],
        filters: 256,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
      }),
      tf.layers.conv2d({ filters: 256, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 4 }),
    ],
  });
  const x = rand([1, 10, 10, 3], 9, 0, 1) as tf.Tensor4D;
  const gathers = (p: { kernels: { name: string }[] }): number =>
    p.kernels.filter((k) => k.name === "GradualWinogradGather").length;
  for (const method of ["eb", "c-eb"]) {
    const run = (m: "all" | "off"): Promise<Float32Array> =>
      withMode(m, async () => {
        const [e] = await explain(model, x, { method, layer: "wino_c1", targets: 1 });
        return e.map;
      });
    const direct = await run("off");
    const fast = await run("all"); // the model's 256->256 kernel takes Winograd forward
    let maxDiff = 0;
    direct.forEach((v, i) => maxDiff = Math.max(maxDiff, Math.abs(v - fast[i])));
    assert(maxDiff < 1e-4, `${method} map differs by ${maxDiff}`);
    const before = tf.memory().numTensors;
    const withEb = await tf.profile(async () => {
      await run("all");
      return [];
    });
    assertEquals(tf.memory().numTensors, before, `${method} leaks`);
    const forwardOnly = await tf.profile(() =>
      withMode("all", () => {
        new ModelSession(model).forward(x).dispose();
        return [];
      })
    );
    assert(gathers(forwardOnly) > 0, "the forward pass takes Winograd in all mode");
    assertEquals(gathers(withEb), gathers(forwardOnly), `${method}: backward rules run direct`);
  }
  tf.dispose(x);
  model.dispose();
});

Deno.test("winograd: new weights (setWeights) replace the cached transforms", () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 128], filters: 256, kernelSize: 3, padding: "same" }),
      tf.layers.flatten({}),
      tf.layers.dense({ units: 3 }),
    ],
  });
  const session = new ModelSession(model);
  const x = rand([1, 8, 8, 128], 3, 0, 1) as tf.Tensor4D;
  const forward = (): tf.Tensor => outputOf(session, x);
  withMode("auto", forward).dispose(); // caches the transform of the first weights
  const fresh = model.getWeights().map((w, i) => rand(w.shape, 40 + i));
  model.setWeights(fresh);
  const expected = model.predict(x) as tf.Tensor;
  const got = withMode("auto", forward);
  const err = relErr(expected, got);
  assert(err < 3e-5, `stale transform: relative error ${err}`);
  tf.dispose([x, expected, got, ...fresh]);
  model.dispose();
});

Deno.test("winograd: tf.grad through conv2d takes the direct op (the path has no gradients)", () => {
  const x = rand([1, 8, 8, 128], 5, 0, 1) as tf.Tensor4D;
  const k = rand([3, 3, 128, 256], 6);
  const viaPath = withMode(
    "all",
    () => tf.grad((t: tf.Tensor) => conv2d(t as tf.Tensor4D, k).sum())(x),
  );
  const direct = tf.grad((t: tf.Tensor) =>
    tf.conv2d(t as tf.Tensor4D, k as tf.Tensor4D, 1, "same").sum()
  )(x);
  assert(relErr(direct, viaPath) < 1e-6);
  tf.dispose([x, k, viaPath, direct]);
});

Deno.test("winograd: exact derived weights and their flipped kernels stay direct in every mode", async () => {
  const x = tf.zeros([1, 16, 16, 256]) as tf.Tensor4D;
  const k = tf.zeros([3, 3, 256, 256]);
  const takesPath = async (kernel: tf.Tensor, m: "auto" | "all"): Promise<boolean> => {
    const p = await tf.profile(() => withMode(m, () => conv2d(x, kernel)));
    tf.dispose(p.result as tf.Tensor);
    return p.kernels.some((kk) => kk.name === "GradualWinogradGather");
  };
  assert(await takesPath(k, "auto"), "a 256->256 model kernel takes it in auto");
  const wPlus = derivedWeight(k, "test-positive", () => tf.relu(k), { exact: true });
  for (const m of ["auto", "all"] as const) {
    assert(!(await takesPath(wPlus, m)), `exact W+: direct in ${m}`);
    assert(!(await takesPath(flippedKernel(wPlus), m)), `flipped exact W+: direct in ${m}`);
  }
  tf.dispose([x, k]);
});
