/**
 * Tests of the procedural scene generator (`models/scenes.ts`) and the built-in models
 * (`models/builtin.ts`, trained by `models/train.ts`).
 */

import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { BUILTIN_MODEL_NAMES, builtinModel } from "../models/builtin.ts";
import { CLASS_NAMES, generateBatch, generateScene } from "../models/scenes.ts";

/** First seed of the held-out test scenes (disjoint from training seeds 0..9999). */
const TEST_SEED_START = 2_000_000;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function bytesEqual(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

Deno.test("scenes: same seed gives identical bytes, different seeds differ", () => {
  for (const seed of [0, 7, 123456, -5, 2_000_001]) {
    const a = generateScene(seed);
    const b = generateScene(seed);
    assert(bytesEqual(a.image, b.image), `image of seed ${seed} not deterministic`);
    assert(bytesEqual(a.mask, b.mask), `mask of seed ${seed} not deterministic`);
    assert(a.box.join() === b.box.join() && a.label === b.label, `seed ${seed} metadata`);
  }
  const a = generateScene(10), b = generateScene(20); // same class, different seeds
  assert(a.label === b.label, "seeds 10 and 20 should share a class");
  assert(!bytesEqual(a.image, b.image), "different seeds gave the same image");
  assert(!bytesEqual(a.mask, b.mask), "different seeds gave the same mask");
});

Deno.test("scenes: shapes, ranges, every class appears, batch matches scenes", () => {
  assert(CLASS_NAMES.length >= 10, "at least 10 classes");
  const batch = generateBatch(500, 40, { size: 128 });
  const seen = new Set<number>();
  for (let i = 0; i < batch.n; i++) {
    const s = generateScene(500 + i);
    assert(s.width === 128 && s.height === 128, "size");
    assert(s.image.length === 128 * 128 * 3 && s.mask.length === 128 * 128, "lengths");
    assert(s.image.every((v) => v >= 0 && v <= 1), "image values in [0, 1]");
    assert(s.className === CLASS_NAMES[s.label], "className matches label");
    assert(batch.labels[i] === s.label, "batch label");
    assert(bytesEqual(batch.images.subarray(i * 49152, (i + 1) * 49152), s.image), "batch image");
    assert(bytesEqual(batch.masks.subarray(i * 16384, (i + 1) * 16384), s.mask), "batch mask");
    seen.add(s.label);
  }
  assert(seen.size === CLASS_NAMES.length, `every class appears (saw ${seen.size})`);
  // Forced labels and other sizes.
  for (let c = 0; c < CLASS_NAMES.length; c++) {
    const s = generateScene(999, { label: c, size: 96 });
    assert(s.label === c && s.width === 96 && s.mask.some((v) => v === 1), `forced label ${c}`);
  }
});

Deno.test("scenes: mask non-empty and inside its tight box; target fully visible", () => {
  const size = 128;
  for (let seed = 0; seed < 60; seed++) {
    const s = generateScene(seed);
    const [x0, y0, x1, y1] = s.box;
    assert(0 < x0 && x0 < x1 && x1 < size && 0 < y0 && y0 < y1 && y1 < size, `box ${s.box}`);
    let area = 0;
    let tight = [size, size, 0, 0];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        if (!s.mask[y * size + x]) continue;
        area++;
        assert(x >= x0 && x < x1 && y >= y0 && y < y1, `mask pixel outside box, seed ${seed}`);
        tight = [
          Math.min(tight[0], x),
          Math.min(tight[1], y),
          Math.max(tight[2], x + 1),
          Math.max(tight[3], y + 1),
        ];
      }
    }
    assert(tight.join() === s.box.join(), `box is not tight, seed ${seed}`);
    // Diameter is at least 26 % of the side: a clearly visible object.
    assert(area >= 0.02 * size * size, `target too small (${area} px), seed ${seed}`);
    // Full visibility: the target (drawn last) does not change when the distractors are
    // removed, neither its mask nor the pixels well inside it.
    const alone = generateScene(seed, { distractors: 0 });
    assert(bytesEqual(alone.mask, s.mask), `mask depends on distractors, seed ${seed}`);
    let inner = 0, differ = 0;
    for (let y = 1; y < size - 1; y++) {
      for (let x = 1; x < size - 1; x++) {
        let all = true;
        for (let dy = -1; dy <= 1 && all; dy++) {
          for (let dx = -1; dx <= 1; dx++) if (!s.mask[(y + dy) * size + x + dx]) all = false;
        }
        if (!all) continue;
        inner++;
        const i = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) if (alone.image[i + c] !== s.image[i + c]) differ++;
      }
    }
    assert(inner > 0 && differ === 0, `target occluded (${differ} values), seed ${seed}`);
  }
});

Deno.test("builtin: registry lookups", () => {
  assert(BUILTIN_MODEL_NAMES.includes("shapes-vgg"), "shapes-vgg");
  assert(BUILTIN_MODEL_NAMES.includes("shapes-resnet"), "shapes-resnet");
  const m = builtinModel("shapes-vgg");
  assert(m.modelUrl.pathname.endsWith("/models/shapes-vgg/model.json"), "modelUrl");
  assert(m.inputSize[0] === 128 && m.inputSize[1] === 128, "inputSize");
  let msg = "";
  try {
    builtinModel("nope");
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("shapes-vgg") && msg.includes("shapes-resnet"), `error lists names: ${msg}`);
});

/** Load a built-in model from its files with tf.io.fromMemory. */
async function loadBuiltin(name: string): Promise<{ model: tf.LayersModel; bytes: number }> {
  const info = builtinModel(name);
  const json = JSON.parse(await Deno.readTextFile(info.modelUrl));
  const buffers: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) buffers.push(await Deno.readFile(new URL(p, info.modelUrl)));
    specs.push(...group.weights);
  }
  const total = buffers.reduce((n, b) => n + b.length, 0);
  const data = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    data.set(b, off);
    off += b.length;
  }
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: data.buffer,
  }));
  return { model, bytes: total };
}

for (const name of ["shapes-vgg", "shapes-resnet"]) {
  Deno.test({
    name: `builtin: ${name} loads and is >= 95 % accurate on 200 held-out scenes (wasm)`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await initBackend({ backend: "wasm", threads: 1 });
      assert(tf.getBackend() === "wasm", "wasm backend");
      const info = builtinModel(name);
      const labels = JSON.parse(await Deno.readTextFile(info.labelsUrl));
      assert(JSON.stringify(labels) === JSON.stringify(CLASS_NAMES), "labels.json");
      const { model, bytes } = await loadBuiltin(name);
      try {
        assert(bytes <= 8 * 1024 * 1024, `weights ${bytes} B > 8 MB`);
        const logits = model.getLayer("logits");
        assert(logits.getConfig().activation === "linear", "logits must be linear");
        assert(JSON.stringify(model.inputs[0].shape) === "[null,128,128,3]", "input shape");
        if (name === "shapes-vgg") {
          for (const l of ["block1_conv1", "block1_relu1", "block1_pool", "block4_pool"]) {
            assert(model.getLayer(l) !== undefined, `layer ${l}`);
          }
          assert(model.getLayer("block1_conv1").getConfig().activation === "linear", "conv");
        } else {
          const classes = new Set(model.layers.map((l) => l.getClassName()));
          for (const c of ["BatchNormalization", "Add", "Activation", "GlobalAveragePooling2D"]) {
            assert(classes.has(c), `has ${c}`);
          }
        }
        const n = 200, bs = 50;
        let correct = 0;
        for (let start = 0; start < n; start += bs) {
          const batch = generateBatch(TEST_SEED_START + start, bs, { size: 128 });
          const pred = tf.tidy(() =>
            tf.argMax(model.predict(tf.tensor4d(batch.images, [bs, 128, 128, 3])) as tf.Tensor, 1)
          );
          const p = await pred.data();
          pred.dispose();
          for (let i = 0; i < bs; i++) if (p[i] === batch.labels[i]) correct++;
        }
        const acc = correct / n;
        console.log(`${name}: held-out accuracy ${(acc * 100).toFixed(1)} % on ${n} scenes`);
        assert(acc >= 0.95, `${name} accuracy ${acc} < 0.95`);
      } finally {
        model.dispose();
      }
    },
  });
}
