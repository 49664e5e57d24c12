import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "./_assert.ts";
import { initBackend } from "../backend/mod.ts";
import { FIRST_MAX_POOL_GRAD, maxPoolInputGrad } from "../core/tensor.ts";
import { threadedPathDigests } from "./_threaded_paths.ts";

type Pad = "same" | "valid";

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Runs `f` on the cpu backend, then switches back to wasm. */
async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend("cpu");
  try {
    return f();
  } finally {
    await tf.setBackend("wasm");
  }
}

function maxPoolGradKernel(
  x: Float32Array,
  shape: [number, number, number, number],
  dy: Float32Array,
  k: number,
  s: number,
  pad: Pad,
): Float32Array {
  return tf.tidy(() => {
    const input = tf.tensor4d(x, shape);
    const output = tf.maxPool(input, k, s, pad);
    const dyT = tf.tensor(dy, output.shape);
    const attrs = { filterSize: k, strides: s, pad } as unknown as tf.NamedAttrMap;
    const r = tf.engine().runKernel("MaxPoolGrad", { dy: dyT, input, output }, attrs) as tf.Tensor;
    return r.dataSync() as Float32Array;
  });
}

function dyLen(shape: number[], k: number, s: number, pad: Pad): number {
  const o = (n: number): number => pad === "same" ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
  return shape[0] * o(shape[1]) * o(shape[2]) * shape[3];
}

Deno.test("initBackend wasm, 1 thread, SIMD; idempotent", async () => {
  const info = await initBackend({ backend: "wasm", threads: 1 });
  assertEquals(info, { backend: "wasm", threads: 1, simd: true });
  assertEquals(tf.getBackend(), "wasm");
  assertEquals(await initBackend({ backend: "wasm", threads: 1 }), info);
  // Threads are fixed once wasm has started.
  assertEquals(await initBackend({ backend: "wasm", threads: 2 }), info);
  assertEquals(await initBackend({ backend: "cpu" }), { backend: "cpu", threads: 1, simd: false });
  assertEquals(await initBackend({ threads: 1 }), info);
});

/** maxPoolInputGrad on the active backend: the kernels it ran and its values; frees all. */
async function firstMaxPoolGrad(): Promise<{ kernels: string[]; values: number[] }> {
  const before = tf.memory().numTensors;
  // Ties in every window: the first maximum must take the gradient.
  const x = tf.tensor4d([1, 1, 0, 2, 1, 1, 2, 2, 3, 0, 3, 3, 0, 0, 3, 0], [1, 4, 4, 1]);
  const dy = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  const p = await tf.profile(() => maxPoolInputGrad(x, dy, [2, 2], [2, 2], "valid"));
  const values = Array.from((p.result as tf.Tensor).dataSync());
  tf.dispose([x, dy, p.result as tf.Tensor]);
  assertEquals(tf.memory().numTensors, before, "no tensor left behind");
  return { kernels: p.kernelNames, values };
}

Deno.test("maxPoolInputGrad runs the kernel the backend registers on wasm, the portable path on cpu, same values", async () => {
  await initBackend({ backend: "wasm", threads: 1 });
  assert(tf.getKernel(FIRST_MAX_POOL_GRAD, "wasm") != null, "the backend registered the kernel");
  assert(tf.getKernel(FIRST_MAX_POOL_GRAD, "cpu") == null);
  const wasm = await firstMaxPoolGrad();
  assert(wasm.kernels.includes(FIRST_MAX_POOL_GRAD), wasm.kernels.join(","));
  await tf.setBackend("cpu");
  let cpu: { kernels: string[]; values: number[] };
  try {
    cpu = await firstMaxPoolGrad();
  } finally {
    await tf.setBackend("wasm");
  }
  assert(!cpu.kernels.includes(FIRST_MAX_POOL_GRAD), "cpu takes the portable path");
  assertEquals(wasm.values, [1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
  assertEquals(cpu.values, wasm.values);
});

Deno.test("MaxPoolGrad on wasm equals tfjs-cpu exactly", async () => {
  await initBackend({ threads: 1 });
  const cases: Array<{
    name: string;
    shape: [number, number, number, number];
    x: Float32Array;
    k: number;
    s: number;
    pad: Pad;
  }> = [];
  // Ties: constant blocks, overlapping windows (k=3 s=1 'same').
  cases.push({
    name: "ties",
    shape: [1, 5, 5, 2],
    x: Float32Array.from({ length: 50 }, (_, i) => Math.floor(i / 8) % 2),
    k: 3,
    s: 1,
    pad: "same",
  });
  // All-negative windows with padding.
  cases.push({
    name: "all-negative",
    shape: [2, 5, 4, 3],
    x: rand(120, 1).map((v) => -1 - Math.abs(v)),
    k: 3,
    s: 2,
    pad: "same",
  });
  // All-zero multi-channel windows.
  cases.push({
    name: "all-zero",
    shape: [1, 4, 4, 4],
    x: new Float32Array(64),
    k: 2,
    s: 2,
    pad: "valid",
  });
  // Mixed ties: few distinct values, odd sizes.
  cases.push({
    name: "quantised",
    shape: [2, 7, 6, 3],
    x: rand(252, 2).map((v) => Math.round(v * 2)),
    k: 3,
    s: 2,
    pad: "same",
  });
  cases.push({
    name: "k2s2 valid",
    shape: [2, 8, 8, 5],
    x: rand(640, 3),
    k: 2,
    s: 2,
    pad: "valid",
  });
  cases.push({ name: "k3s2 same", shape: [2, 9, 7, 4], x: rand(504, 4), k: 3, s: 2, pad: "same" });
  cases.push({
    name: "k3s1 valid",
    shape: [1, 6, 6, 3],
    x: rand(108, 5),
    k: 3,
    s: 1,
    pad: "valid",
  });
  cases.push({ name: "k4s3 same", shape: [1, 10, 8, 2], x: rand(160, 6), k: 4, s: 3, pad: "same" });
  for (const c of cases) {
    const dy = rand(dyLen(c.shape, c.k, c.s, c.pad), 99);
    const got = maxPoolGradKernel(c.x, c.shape, dy, c.k, c.s, c.pad);
    const want = await onCpu(() => maxPoolGradKernel(c.x, c.shape, dy, c.k, c.s, c.pad));
    assertEquals(Array.from(got), Array.from(want), c.name);
  }
  // Through tf.grad as well (dy = ones).
  const x = rand(2 * 8 * 8 * 3, 7).map((v) => Math.round(v * 3));
  const g = (): number[] =>
    tf.tidy(() =>
      Array.from(
        tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 3, 2, "same").sum())(
          tf.tensor4d(x, [2, 8, 8, 3]),
        ).dataSync(),
      )
    );
  assertEquals(g(), await onCpu(g));
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu", async () => {
  await initBackend({ threads: 1 });
  const cases: Array<
    {
      x: [number, number, number, number];
      f: [number, number, number, number];
      s: number;
      pad: Pad | number;
    }
  > = [
    { x: [2, 8, 8, 3], f: [3, 3, 3, 4], s: 1, pad: "same" },
    { x: [2, 9, 7, 3], f: [3, 3, 3, 5], s: 2, pad: "same" },
    { x: [1, 9, 9, 2], f: [3, 3, 2, 3], s: 2, pad: "valid" },
    { x: [3, 10, 11, 4], f: [2, 3, 4, 2], s: 3, pad: "valid" },
    { x: [1, 7, 7, 3], f: [5, 5, 3, 2], s: 1, pad: "valid" },
    { x: [2, 6, 6, 2], f: [3, 3, 2, 2], s: 2, pad: 1 },
    { x: [1, 8, 8, 1], f: [1, 1, 1, 6], s: 2, pad: "same" },
    { x: [4, 20, 20, 16], f: [3, 3, 16, 32], s: 1, pad: "same" },
  ];
  for (const [i, c] of cases.entries()) {
    const xv = rand(c.x.reduce((a, b) => a * b), 10 + i);
    const fv = rand(c.f.reduce((a, b) => a * b), 20 + i);
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, c.f);
        const loss = (w: tf.Tensor): tf.Scalar => {
          const y = tf.conv2d(x, w as tf.Tensor4D, c.s, c.pad);
          return tf.sum(tf.mul(y, tf.sin(y)));
        };
        return tf.grad(loss)(f).dataSync() as Float32Array;
      });
    const got = grad();
    const want = await onCpu(grad);
    assertEquals(got.length, want.length);
    let maxAbs = 0;
    for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
    for (let j = 0; j < got.length; j++) {
      const err = Math.abs(got[j] - want[j]);
      assert(
        err <= 1e-4 * Math.max(Math.abs(want[j]), maxAbs * 1e-2),
        `case ${i} [${j}]: ${got[j]} vs ${want[j]}`,
      );
    }
  }
});

Deno.test("depthwise backprop kernels on wasm match cpu", async () => {
  await initBackend({ threads: 1 });
  const cases: Array<
    {
      x: [number, number, number, number];
      f: [number, number, number, number];
      s: number;
      pad: Pad;
    }
  > = [
    { x: [2, 7, 7, 3], f: [3, 3, 3, 1], s: 1, pad: "same" },
    { x: [2, 9, 8, 2], f: [3, 3, 2, 2], s: 2, pad: "same" },
    { x: [1, 9, 9, 3], f: [2, 2, 3, 3], s: 2, pad: "valid" },
  ];
  for (const [i, c] of cases.entries()) {
    const xv = rand(c.x.reduce((a, b) => a * b), 30 + i);
    const fv = rand(c.f.reduce((a, b) => a * b), 40 + i);
    const grads = (): number[] =>
      tf.tidy(() => {
        const loss = (x: tf.Tensor4D, w: tf.Tensor4D): tf.Scalar => {
          const y = tf.depthwiseConv2d(x, w, c.s, c.pad);
          return tf.sum(tf.mul(y, tf.sin(y)));
        };
        const [gx, gw] = tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)([
          tf.tensor4d(xv, c.x),
          tf.tensor4d(fv, c.f),
        ]);
        return [...gx.dataSync(), ...gw.dataSync()];
      });
    const got = grads();
    const want = await onCpu(grads);
    let maxAbs = 0;
    for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
    for (let j = 0; j < got.length; j++) {
      const err = Math.abs(got[j] - want[j]);
      assert(
        err <= 1e-4 * Math.max(Math.abs(want[j]), maxAbs * 1e-2),
        `case ${i} [${j}]: ${got[j]} vs ${want[j]}`,
      );
    }
  }
});

Deno.test("model.fit on wasm: small conv net trains", async () => {
  await initBackend({ threads: 1 });
  const inp = tf.input({ shape: [8, 8, 3] });
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  let h = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: "same",
    kernelInitializer: init(1),
  })
    .apply(inp) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.activation({ activation: "relu" }).apply(h) as tf.SymbolicTensor;
  const r = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    strides: 1,
    padding: "same",
    kernelInitializer: init(2),
  }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.add().apply([h, r]) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", depthwiseInitializer: init(3) })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: 0.1, seed: 4 }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, activation: "softmax", kernelInitializer: init(5) })
    .apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: inp, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  const xs = tf.tensor4d(rand(16 * 8 * 8 * 3, 50), [16, 8, 8, 3]);
  const ys = tf.tidy(() => tf.oneHot(tf.cast(tf.greater(tf.mean(xs, [1, 2, 3]), 0), "int32"), 2));
  const before = tf.memory().numTensors;
  const hist = await model.fit(xs, ys, { epochs: 8, batchSize: 16, shuffle: false, verbose: 0 });
  const loss = hist.history.loss as number[];
  assert(loss[loss.length - 1] < loss[0], `loss did not decrease: ${loss.join(", ")}`);
  // Optimizer slots are created on the first step; nothing grows after that.
  const mid = tf.memory().numTensors;
  await model.fit(xs, ys, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  assertEquals(tf.memory().numTensors, mid);
  assert(mid >= before);
  model.optimizer.dispose();
  model.dispose();
  tf.dispose([xs, ys]);
});

Deno.test("fused conv2d and conv2dTranspose grads on wasm match cpu", async () => {
  await initBackend({ threads: 1 });
  const xv = rand(2 * 9 * 9 * 3, 70);
  const wv = rand(3 * 3 * 3 * 4, 71);
  const bv = rand(4, 72);
  const grads = (): number[] =>
    tf.tidy(() => {
      const x = tf.tensor4d(xv, [2, 9, 9, 3]);
      const f = (w: tf.Tensor, b: tf.Tensor): tf.Scalar => {
        const y = tf.fused.conv2d({
          x,
          filter: w as tf.Tensor4D,
          bias: b,
          strides: 2,
          pad: "same",
          activation: "relu",
        });
        const t = tf.conv2dTranspose(y, w as tf.Tensor4D, [2, 9, 9, 3], 2, "same");
        return tf.sum(tf.mul(t, tf.cos(t)));
      };
      const [gw, gb] = tf.grads(f)([tf.tensor4d(wv, [3, 3, 3, 4]), tf.tensor1d(bv)]);
      return [...gw.dataSync(), ...gb.dataSync()];
    });
  const got = grads();
  const want = await onCpu(grads);
  let maxAbs = 0;
  for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (let j = 0; j < got.length; j++) {
    const err = Math.abs(got[j] - want[j]);
    assert(
      err <= 1e-4 * Math.max(Math.abs(want[j]), maxAbs * 1e-2),
      `[${j}]: ${got[j]} vs ${want[j]}`,
    );
  }
});

Deno.test("no tensor leaks across repeated kernel calls", async () => {
  await initBackend({ threads: 1 });
  // IS_TEST makes the engine check every kernel for leaked data ids.
  const wasTest = tf.env().getBool("IS_TEST");
  tf.env().set("IS_TEST", true);
  const x = tf.tensor4d(rand(2 * 8 * 8 * 4, 60), [2, 8, 8, 4]);
  const w = tf.tensor4d(rand(3 * 3 * 4 * 5, 61), [3, 3, 4, 5]);
  const dw = tf.tensor4d(rand(3 * 3 * 4 * 2, 62), [3, 3, 4, 2]);
  const step = (): void =>
    tf.tidy(() => {
      const r4 = (t: tf.Tensor): tf.Tensor4D => t as tf.Tensor4D;
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(r4(a), r4(b), 2, "same").square().sum())([
        x,
        w,
      ]);
      tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.depthwiseConv2d(r4(a), r4(b), 1, "same").square().sum()
      )([x, dw]);
      tf.grad((a: tf.Tensor) => tf.maxPool(r4(a), 3, 2, "same").square().sum())(x);
    });
  step();
  const n0 = tf.memory().numTensors;
  const b0 = tf.memory().numBytes;
  for (let i = 0; i < 5; i++) step();
  assertEquals(tf.memory().numTensors, n0);
  assertEquals(tf.memory().numBytes, b0);
  tf.env().set("IS_TEST", wasTest);
  tf.dispose([x, w, dw]);
});

Deno.test("wasm threads in a subprocess: 2 threads on >= 2 cores, speed paths bit-equal to 1 thread", async () => {
  const root = new URL("..", import.meta.url);
  const probe = new URL("./_threads_probe.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", probe, "2"],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.success, new TextDecoder().decode(out.stderr));
  const line = text.split("\n").find((l) => l.startsWith("{"));
  assert(line != null, `no JSON from probe: ${text}`);
  const r = JSON.parse(line) as {
    threads: number;
    simd: boolean;
    cpuOverWall: number;
    digests: Record<string, string>;
  };
  const cores = navigator.hardwareConcurrency ?? 1;
  assertEquals(r.threads, cores >= 2 ? 2 : 1);
  assertEquals(r.simd, true);
  // Every threaded speed path gives this 1-thread process's result, bit for bit.
  await initBackend({ threads: 1 });
  assertEquals(r.digests, await threadedPathDigests());
  // cpu/wall is informative only: the machine may be shared.
  const { digests: _, ...info } = r;
  console.log(`threads probe: ${JSON.stringify(info)}`);
});
