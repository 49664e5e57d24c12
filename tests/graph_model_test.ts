import { initBackend } from "../core/backend.ts";
import { explain, sessionOf } from "../core/explain.ts";
import { loadGraphModel, loadLayersModel, modelFormat } from "../core/model_io.ts";
import { tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { toGraphModel } from "./_graph_model.ts";

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

function maxRel(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0, r = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - ref[i]));
    r = Math.max(r, Math.abs(ref[i]));
  }
  return m / r;
}

Deno.test("GraphModel: format detection and graph facts from the nodes", async () => {
  assertEquals(await modelFormat(`${dir}/model.json`), "graph-model");
  const g = sessionOf(graphModel).graph;
  assertEquals(g.reducingLayers, ["features_4", "features_9", "features_12"]);
  assertEquals(g.firstReducingInput, "features_3");
  assertEquals(g.scoreName, "classifier_0");
  assertEquals(g.defaultTargetLayer, "features_12");
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

Deno.test("GraphModel: methods that need backward rules fail clearly; no tensor leaks", async () => {
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) await explain(graphModel, x, { extrapolator: "gradual" });
  assertEquals(tf.memory().numTensors, before);
  let msg = "";
  try {
    const { registry } = await import("../core/registry.ts");
    registry.method("excitation-backprop");
    await explain(graphModel, x, { method: "excitation-backprop", layer: "features_6" });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/LayersModel|unknown method/.test(msg), msg);
});
