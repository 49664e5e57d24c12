import { initBackend } from "../backend/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { tf } from "../core/tensor.ts";
import { type Arch, buildArchModel, portableInitializer } from "../conformance/arch_model.ts";
import { assert, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });

const ARCH = new URL("./fixtures/models/vgg_tiny/arch.json", import.meta.url);
const TFJS = new URL("./fixtures/models/vgg_tiny/tfjs/model.json", import.meta.url);

async function sha256(data: Float32Array): Promise<string> {
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("arch_model: vgg_tiny weights are the portable values, bit for bit", async () => {
  const arch = JSON.parse(await Deno.readTextFile(ARCH)) as Arch;
  const model = buildArchModel(arch);
  try {
    const want = arch.layers.flatMap((l) => l.weights ?? []);
    assertEquals(model.weights.map((v) => v.originalName), want.map((w) => w.name));
    for (const [i, v] of model.weights.entries()) {
      const got = v.read().dataSync() as Float32Array;
      assertEquals(await sha256(got), (want[i] as unknown as { sha256: string }).sha256, v.name);
    }
    // Same weights and logits as the converted tfjs model of the fixtures.
    const ref = await loadLayersModel(TFJS);
    const x = tf.randomUniform([2, ...arch.input.shape.slice(1) as number[]], -1, 1, "float32", 7);
    const a = model.predict(x) as tf.Tensor;
    const b = ref.predict(x) as tf.Tensor;
    assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
    ref.dispose();
  } finally {
    model.dispose();
  }
});

Deno.test("arch_model: the build writes each weight once and runs no kernel", async () => {
  const arch = JSON.parse(await Deno.readTextFile(ARCH)) as Arch;
  const weightBytes = arch.layers.flatMap((l) => l.weights ?? [])
    .reduce((s, w) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  // Bytes handed to the backend as tensor values: default initial weights, or a setWeights
  // copy, would add to them (or run kernels).
  const backend = tf.backend() as unknown as { write(...a: unknown[]): unknown };
  const write = backend.write;
  let written = 0;
  backend.write = function (this: unknown, ...a: unknown[]) {
    written += 4 * (a[1] as number[]).reduce((x, y) => x * y, 1);
    return write.apply(this, a);
  };
  const before = tf.memory().numBytes;
  let model: tf.LayersModel | undefined;
  try {
    const info = await tf.profile(() => {
      model = buildArchModel(arch);
    });
    assertEquals(info.kernels.map((k) => k.name), []);
  } finally {
    backend.write = write;
  }
  try {
    assertEquals(written, weightBytes);
    assertEquals(tf.memory().numBytes - before, weightBytes);
  } finally {
    model?.dispose();
  }
});

Deno.test("arch_model: portableInitializer checks the shape it is asked for", () => {
  const w = { name: "l/kernel", shape: [2, 3], init: { tensor_index: 0, amp: 1 } };
  const init = portableInitializer(1, w);
  const t = init.apply([2, 3]);
  assertEquals(t.shape, [2, 3]);
  t.dispose();
  let msg = "";
  try {
    init.apply([3, 2]);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("l/kernel"), msg);
});
