/**
 * Trains the built-in "shapes" classifiers on procedurally generated scenes and writes them as
 * TensorFlow.js LayersModels (`model.json` + one weight shard), with `labels.json` and a
 * `MODEL_CARD.md`, into `models/shapes-vgg/` and `models/shapes-resnet/`.
 *
 * Usage: `deno run -A models/train.ts [--model vgg|resnet|all] [--train N] [--epochs E]
 * [--batch B] [--val N] [--seed S] [--out DIR] [--threads T]`.
 *
 * Everything is reproducible from `--seed`: the scenes come from fixed seed ranges, the
 * initialisers are seeded and the epoch shuffles use the generator's own PRNG. Training runs on
 * the wasm backend (see `backend/init.ts`), whose missing and slow kernels are registered by
 * `backend/_wasm_kernels.ts`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/mod.ts";
import { buildShapesResnet, buildShapesVgg, INPUT_SIZE, NUM_CLASSES } from "./architectures.ts";
import { CLASS_DESCRIPTIONS, CLASS_NAMES, generateScene, makeRng } from "./scenes.ts";

/** First seed of the training scenes (seeds `TRAIN_SEED_START .. + train - 1`). */
export const TRAIN_SEED_START = 0;
/** First seed of the held-out scenes that training reports accuracy on. */
export const VAL_SEED_START = 1_000_000;
/** First seed of the held-out scenes used by `tests/models_test.ts`. */
export const TEST_SEED_START = 2_000_000;

/** Settings of one training run. */
export interface TrainConfig {
  /** Which model: `"vgg"` or `"resnet"`. */
  model: "vgg" | "resnet";
  /** Number of training scenes (seeds `TRAIN_SEED_START ..`). */
  train: number;
  /** Epochs over the training scenes. */
  epochs: number;
  /** Mini-batch size. */
  batch: number;
  /** Number of held-out validation scenes (seeds `VAL_SEED_START ..`). */
  val: number;
  /** Seed of initialisers, shuffles and augmentation. */
  seed: number;
  /** Peak learning rate of Adam (linear warm-up, cosine decay to 2 % of it). */
  lr: number;
  /** Output folder (the model goes into `<out>/shapes-<model>/`). */
  out: string;
}

/** Result of {@link trainModel}. */
export interface TrainResult {
  /** Held-out accuracy on `val` scenes. */
  accuracy: number;
  /** Seconds spent in the training loop. */
  seconds: number;
  /** Number of parameters. */
  params: number;
  /** Bytes of the weight shard. */
  weightBytes: number;
}

const S = INPUT_SIZE;
const PX = S * S * 3;

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** Generate `n` scenes from `start`, quantised to 8 bits (as a PNG would be). */
function makeData(start: number, n: number): { images: Uint8Array; labels: Int32Array } {
  const images = new Uint8Array(n * PX);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = generateScene(start + i, { size: S });
    const off = i * PX;
    for (let j = 0; j < PX; j++) images[off + j] = Math.round(s.image[j] * 255);
    labels[i] = s.label;
  }
  return { images, labels };
}

/**
 * Copy scene `idx` into `dst` at `at`, scaled to [0, 1], under one of the 8 symmetries of the
 * square (every class is invariant to rotations and reflections).
 */
function copyAugmented(
  src: Uint8Array,
  idx: number,
  dst: Float32Array,
  at: number,
  sym: number,
): void {
  const base = idx * PX;
  const flipX = (sym & 1) !== 0, flipY = (sym & 2) !== 0, swap = (sym & 4) !== 0;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let sx = flipX ? S - 1 - x : x;
      let sy = flipY ? S - 1 - y : y;
      if (swap) [sx, sy] = [sy, sx];
      const si = base + (sy * S + sx) * 3;
      const di = at + (y * S + x) * 3;
      dst[di] = src[si] / 255;
      dst[di + 1] = src[si + 1] / 255;
      dst[di + 2] = src[si + 2] / 255;
    }
  }
}

/** Accuracy of `model` on quantised scenes. */
function accuracy(model: tf.LayersModel, data: { images: Uint8Array; labels: Int32Array }): number {
  const n = data.labels.length;
  let correct = 0;
  const bs = 50;
  for (let i = 0; i < n; i += bs) {
    const m = Math.min(bs, n - i);
    const buf = new Float32Array(m * PX);
    for (let j = 0; j < m; j++) copyAugmented(data.images, i + j, buf, j * PX, 0);
    const pred = tf.tidy(() => {
      const logits = model.predict(tf.tensor4d(buf, [m, S, S, 3])) as tf.Tensor;
      return tf.argMax(logits, 1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let j = 0; j < m; j++) if (p[j] === data.labels[i + j]) correct++;
  }
  return correct / n;
}

/** Write a LayersModel as `model.json` + `weights.bin`; returns the shard size in bytes. */
async function saveModel(model: tf.LayersModel, dir: string): Promise<number> {
  let bytes = 0;
  await model.save(tf.io.withSaveHandler(async (art: tf.io.ModelArtifacts) => {
    const data = art.weightData === undefined
      ? new ArrayBuffer(0)
      : tf.io.CompositeArrayBuffer.join(art.weightData);
    bytes = data.byteLength;
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(data));
    const json = {
      format: "layers-model",
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: art.modelTopology,
      weightsManifest: [{ paths: ["weights.bin"], weights: art.weightSpecs }],
    };
    await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: "JSON",
        weightDataBytes: bytes,
      },
    };
  }));
  return bytes;
}

function layerTable(model: tf.LayersModel): string {
  const rows = model.layers.map((l) => {
    const shape = JSON.stringify(l.outputShape).replace(/null/g, "N");
    return `| \`${l.name}\` | ${l.getClassName()} | ${shape} | ${l.countParams()} |`;
  });
  return ["| layer | type | output shape | params |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

function modelCard(
  cfg: TrainConfig,
  model: tf.LayersModel,
  res: TrainResult,
  history: string[],
): string {
  const title = cfg.model === "vgg" ? "shapes-vgg" : "shapes-resnet";
  const arch = cfg.model === "vgg"
    ? "VGG-style sequential model: five blocks of one 3x3 'same' Conv2D (linear activation) " +
      "followed by a separate ReLU `Activation` layer and a 2x2 max pool (128 -> 4 pixels, " +
      "five resolution reductions), global average pooling, Dense `logits` (10, linear). No " +
      "softmax and no batch normalisation."
    : "ResNet-style functional model: stem 3x3 stride-2 Conv2D + BatchNormalization + ReLU + " +
      "2x2 max pool (128 -> 32), four stages of one basic residual block (conv-BN-ReLU-conv-BN, " +
      "`Add` with the shortcut, ReLU after the add as a separate `Activation` layer); stages " +
      "2-4 downsample with a stride-2 3x3 convolution and a 1x1 stride-2 projection + BN on the " +
      "shortcut (32 -> 16 -> 8 -> 4), global average pooling, Dense `logits` (10, linear).";
  const classes = CLASS_NAMES.map((c, i) => `${i}. \`${c}\`: ${CLASS_DESCRIPTIONS[i]}`).join("\n");
  return `# ${title}

A small ${
    cfg.model === "vgg" ? "VGG" : "ResNet"
  }-style image classifier trained by this project from scratch on procedurally generated
scenes (\`models/scenes.ts\`), made so that the saliency methods of this toolkit can be checked
against KNOWN object locations: every scene has exactly one labelled target object whose exact
pixel mask and box the generator returns.

## Data

- Generator: \`generateScene(seed)\` in \`models/scenes.ts\` (deterministic from the seed, pure
  TypeScript). 128x128 RGB scenes: cluttered background (two-colour gradient, value noise, soft
  blobs, 1-4 random lines, pixel noise), 1-3 smaller distractor objects of other classes (at
  most half the target's size), and one target object (diameter 32-60 % of the side, any
  rotation, random colours that contrast with the background under it) drawn last, fully
  visible. The target class is \`seed mod 10\`, so every range of seeds is balanced.
- Classes (shape + texture identify the class; colours are random):
${classes}
- Training: ${cfg.train} scenes, seeds ${TRAIN_SEED_START}..${
    TRAIN_SEED_START + cfg.train - 1
  }, quantised to 8 bits, with random symmetries of the square (flips / transposition) as
  augmentation.
- Held-out: ${cfg.val} scenes, seeds ${VAL_SEED_START}..${
    VAL_SEED_START + cfg.val - 1
  } (disjoint from training). The test suite uses seeds from ${TEST_SEED_START}.

## Architecture

${arch}

Parameters: ${res.params} (${(res.weightBytes / 1024).toFixed(0)} KiB of float32 weights in
\`weights.bin\`).

${layerTable(model)}

## Training

- Seed ${cfg.seed} (initialisers: He normal for convolutions, Glorot uniform for \`logits\`,
  seeded per layer; shuffles and augmentation from the generator's PRNG).
- Loss: softmax cross-entropy on the logits (\`tf.losses.softmaxCrossEntropy\`).
- Optimiser: Adam, peak learning rate ${cfg.lr}, linear warm-up over the first 100 steps and
  cosine decay to 2 % of the peak; batch ${cfg.batch}; ${cfg.epochs} epochs
  (${Math.ceil(cfg.train / cfg.batch) * cfg.epochs} steps).
- Backend: TensorFlow.js ${tf.version.tfjs}, wasm (SIMD, 1 thread), on a 2-core machine
  shared with other jobs; training took ${(res.seconds / 60).toFixed(1)} minutes of wall time.
- Held-out accuracy after each epoch (epochs 1 to ${
    cfg.epochs - 1
  } on the first 500 held-out scenes, the last on all): ${history.join(", ")}.

## Result

**Held-out accuracy: ${
    (res.accuracy * 100).toFixed(2)
  } %** on ${cfg.val} scenes (seeds ${VAL_SEED_START}..${VAL_SEED_START + cfg.val - 1}).

## Preprocessing

Input: \`[N, 128, 128, 3]\` float32 RGB scaled to **[0, 1]** (pixel / 255), no mean/std
normalisation ("unit"). Output: 10 raw logits in the order of \`labels.json\` (apply softmax for
probabilities).

## Intended use and limitations

For testing and demonstrating saliency methods (Grad-CAM, excitation backprop, gradual
extrapolation, ...) where the true object location is known: the target's mask and box come
from the generator. It recognises only these ten synthetic classes on synthetic scenes; it has
never seen a natural image and its predictions on anything else are meaningless. The scene has
a single target, the largest object; distractors are smaller objects of other classes, so the
model may partly rely on size to pick the target. Not for any decision-making use.

Reproduce with \`deno task train\` (or \`deno run -A models/train.ts --model ${cfg.model}\`).
`;
}

/** Run `deno fmt` on the generated card so that the repository stays `deno fmt --check` clean. */
async function formatMarkdown(path: string): Promise<void> {
  try {
    const r = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
    if (!r.success) log(`deno fmt ${path} failed: ${new TextDecoder().decode(r.stderr)}`);
  } catch (e) {
    log(`deno fmt ${path} not run: ${(e as Error).message}`);
  }
}

/**
 * Train one model according to `cfg`, write it with its labels and model card, and return the
 * held-out accuracy and timing.
 *
 * @param cfg the run settings
 * @returns held-out accuracy, seconds, parameter count and shard size
 */
export async function trainModel(cfg: TrainConfig): Promise<TrainResult> {
  const name = cfg.model === "vgg" ? "shapes-vgg" : "shapes-resnet";
  const dir = `${cfg.out}/${name}`;
  log(`${name}: generating ${cfg.train} training + ${cfg.val} held-out scenes`);
  const train = makeData(TRAIN_SEED_START, cfg.train);
  const val = makeData(VAL_SEED_START, cfg.val);
  const valEpoch = {
    images: val.images.subarray(0, Math.min(500, cfg.val) * PX),
    labels: val.labels.subarray(0, Math.min(500, cfg.val)),
  };

  const model = cfg.model === "vgg"
    ? buildShapesVgg({ seed: cfg.seed })
    : buildShapesResnet({ seed: cfg.seed });
  const opt = tf.train.adam(cfg.lr);
  model.compile({
    optimizer: opt,
    loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  log(`${name}: ${model.countParams()} parameters`);

  const rng = makeRng(cfg.seed * 7919 + (cfg.model === "vgg" ? 1 : 2));
  const order = Array.from({ length: cfg.train }, (_, i) => i);
  const stepsPerEpoch = Math.ceil(cfg.train / cfg.batch);
  const total = stepsPerEpoch * cfg.epochs;
  const warm = 100;
  const history: string[] = [];
  const t0 = performance.now();
  let step = 0;
  for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let b = 0; b < stepsPerEpoch; b++) {
      const idx = order.slice(b * cfg.batch, (b + 1) * cfg.batch);
      const m = idx.length;
      const xs = new Float32Array(m * PX);
      const ys = new Float32Array(m * NUM_CLASSES);
      idx.forEach((k, j) => {
        copyAugmented(train.images, k, xs, j * PX, Math.floor(rng() * 8));
        ys[j * NUM_CLASSES + train.labels[k]] = 1;
      });
      const lr = step < warm
        ? cfg.lr * (step + 1) / warm
        : cfg.lr * (0.02 + 0.98 * 0.5 * (1 + Math.cos(Math.PI * (step - warm) / (total - warm))));
      (opt as unknown as { learningRate: number }).learningRate = lr;
      const x = tf.tensor4d(xs, [m, S, S, 3]);
      const y = tf.tensor2d(ys, [m, NUM_CLASSES]);
      const loss = await model.trainOnBatch(x, y) as number;
      x.dispose();
      y.dispose();
      lossSum += loss;
      step++;
      if (step % 25 === 0) {
        const el = (performance.now() - t0) / 1000;
        log(
          `${name}: epoch ${epoch} step ${step}/${total} loss ${(lossSum / (b + 1)).toFixed(4)} ` +
            `lr ${lr.toExponential(2)} ${el.toFixed(0)}s (eta ${
              (el / step * (total - step)).toFixed(0)
            }s) tensors ${tf.memory().numTensors}`,
        );
      }
    }
    const acc = accuracy(model, epoch === cfg.epochs ? val : valEpoch);
    history.push(`${(acc * 100).toFixed(1)} %`);
    log(`${name}: epoch ${epoch} done, held-out accuracy ${(acc * 100).toFixed(2)} %`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const acc = accuracy(model, val);
  await Deno.mkdir(dir, { recursive: true });
  const weightBytes = await saveModel(model, dir);
  await Deno.writeTextFile(`${dir}/labels.json`, JSON.stringify(CLASS_NAMES) + "\n");
  const res: TrainResult = { accuracy: acc, seconds, params: model.countParams(), weightBytes };
  await Deno.writeTextFile(`${dir}/MODEL_CARD.md`, modelCard(cfg, model, res, history));
  await formatMarkdown(`${dir}/MODEL_CARD.md`);
  log(`${name}: saved to ${dir}, held-out accuracy ${(acc * 100).toFixed(2)} %, ${seconds}s`);
  model.dispose();
  opt.dispose();
  return res;
}

function parseArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else out[a.slice(2)] = args[++i] ?? "";
  }
  return out;
}

if (import.meta.main) {
  const a = parseArgs(Deno.args);
  const which = a.model ?? "all";
  if (!["vgg", "resnet", "all"].includes(which)) throw new Error(`--model: vgg, resnet or all`);
  const info = await initBackend({ backend: "wasm", threads: Number(a.threads ?? 1) });
  log(`backend ${JSON.stringify(info)}`);
  const models: ("vgg" | "resnet")[] = which === "all" ? ["vgg", "resnet"] : [which as "vgg"];
  const outDir = a.out ?? new URL(".", import.meta.url).pathname.replace(/\/$/, "");
  for (const m of models) {
    await trainModel({
      model: m,
      train: Number(a.train ?? 10000),
      epochs: Number(a.epochs ?? 5),
      batch: Number(a.batch ?? 32),
      val: Number(a.val ?? 2000),
      seed: Number(a.seed ?? 1),
      lr: Number(a.lr ?? (m === "vgg" ? 2e-3 : 2e-3)),
      out: outDir,
    });
  }
  Deno.exit(0);
}
