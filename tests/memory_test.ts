/**
 * Memory stability: explaining 200 images in a row (2 per call) must not leak tensors. Every call must
 * leave tf.memory().numTensors and numBytes where they were before it (Grad-CAM, Gradual
 * Grad-CAM and, when registered, c-EB with and without gradual, all on one forward pass per
 * call). RSS is printed, not asserted (wasm memory grows to its high-water mark and never
 * shrinks; only a runaway growth fails).
 */
import { initBackend } from "../backend/mod.ts";
import { explainMany, type ExplainRequest } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { registry } from "../core/registry.ts";
import { tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import { assert, assertEquals } from "./_assert.ts";

const MODEL = new URL("./fixtures/models/vgg_tiny/tfjs/model.json", import.meta.url);
const IMAGES = 200;
/** Images per call (small batches keep the test fast on a busy 2-core machine). */
const BATCH = 2;

function hasMethod(name: string): boolean {
  try {
    registry.method(name);
    return true;
  } catch {
    return false;
  }
}

Deno.test("explaining 200 images keeps tf.memory() flat", async () => {
  await initBackend({ backend: "wasm", threads: 1 });
  const model = await loadLayersModel(MODEL);
  const requests: ExplainRequest[] = [
    { method: "grad-cam" },
    { method: "grad-cam", extrapolator: "gradual" },
  ];
  if (hasMethod("c-eb")) {
    requests.push({ method: "c-eb" }, { method: "c-eb", extrapolator: "gradual" });
  } else {
    console.log("memory_test: c-eb is not registered: c-EB skipped");
  }
  const image = (i: number) =>
    tf.tidy(() => tf.randomUniform([BATCH, 64, 64, 3], -2, 2, "float32", 1000 + i) as tf.Tensor4D);
  // One warm-up call: anything created once (caches) may appear here, never later.
  const x0 = image(-1);
  await explainMany(model, x0, requests);
  x0.dispose();
  const before = tf.memory();
  const rss0 = Deno.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < IMAGES; i += BATCH) {
    const x = image(i);
    const res = await explainMany(model, x, requests);
    x.dispose();
    assertEquals(res.length, requests.length);
    for (const [k, r] of res.entries()) {
      assertEquals(r.length, BATCH, `request ${k}: ${r.length} explanations for image ${i}`);
      for (const e of r) {
        const bad = e.map.filter((v) => !Number.isFinite(v)).length;
        assertEquals(bad, 0, `request ${k}, image ${i + e.image}: ${bad} non-finite values`);
      }
    }
    const now = tf.memory();
    assertEquals(now.numTensors, before.numTensors, `numTensors after image ${i}`);
    assertEquals(now.numBytes, before.numBytes, `numBytes after image ${i}`);
  }
  const rss1 = Deno.memoryUsage().rss;
  const mib = (b: number) => (b / 1048576).toFixed(1);
  console.log(
    `memory_test: ${IMAGES} images (${BATCH} per call) x ${requests.length} requests in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s; numTensors ${before.numTensors} (flat), numBytes ${before.numBytes} (flat); ` +
      `RSS ${mib(rss0)} -> ${mib(rss1)} MiB`,
  );
  assert(rss1 - rss0 < 1024 * 1048576, "RSS grew by more than 1 GiB");
  model.dispose();
});
