/**
 * The ONNX front end's costs on one model that exists in two formats: a VGG16-style network
 * (VGG16's 13 convolutions at 224x224, then Flatten, Dense 448, Dense 1000; 26.4 M parameters,
 * 105 MB of float32 weights) built as a tfjs LayersModel with seeded weights and written here
 * as an equivalent `.onnx` file (NCHW weights, the first dense layer's rows in ONNX's C, H, W
 * flatten order), which is checked to give the same logits.
 *
 * 1. Load memory: a fresh process reads and compiles the `.onnx` file (`loadOnnxModel`, then
 *    `createSession`), another loads the same model saved as a tfjs LayersModel; each prints
 *    its RSS before loading, its peak RSS (getrusage maxrss) after loading and after a first
 *    predict, and the weight bytes. Compiling runs each node once on zeros (to learn shapes),
 *    which already makes the backend's per-kernel caches that a LayersModel makes at its first
 *    predict, so the two are compared after a first predict.
 * 2. Speed: Grad-CAM (batch 1, default layer) from the ONNX session and from the LayersModel,
 *    interleaved in one run; prints the median ms per image of each and their ratio.
 *
 * Usage: `deno run --allow-read --allow-write --allow-run --allow-env bench/onnx_bench.ts
 * [--reps 10] [--backend wasm|cpu]`; `--write FILE.onnx` only writes the `.onnx` file.
 *
 * @module
 */
import process from "node:process";
import onnxProto from "onnx-proto";
import { initBackend } from "../backend/mod.ts";
import { explain } from "../core/explain.ts";
import { createSession, loadOnnxModel } from "../core/frontends/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import type { ModelSession } from "../core/session.ts";
import { type LayersModel, type Tensor, type Tensor4D, tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import { filled, median } from "./_timing.ts";

const { onnx } = onnxProto;

function opt(name: string, d: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : d;
}

/** Current RSS, or the peak RSS so far (getrusage maxrss), in MiB. */
function statusMiB(key: "rss" | "peak"): number {
  return key === "rss" ? Deno.memoryUsage().rss / 2 ** 20 : process.resourceUsage().maxRSS / 1024;
}

const backend = opt("--backend", "wasm") as "wasm" | "cpu";
await initBackend({ backend, threads: 1 });

/** Weight bytes of a session's ops (kernels and biases). */
function weightBytes(session: ModelSession): number {
  return session.graph.nodes.flatMap((n) => n.ops).reduce((s, op) => {
    const ts = [op.params.kernel, op.params.bias].filter((t) => t instanceof tf.Tensor);
    return s + ts.reduce((a, t) => a + 4 * (t as Tensor).size, 0);
  }, 0);
}

// Child processes: load one format, report peak RSS after loading and after a first predict
// (which makes the backend's own per-kernel caches, the same for both formats).
const childOnnx = opt("--child-onnx", "");
const childTfjs = opt("--child-tfjs", "");
if (childOnnx || childTfjs) {
  const base = statusMiB("rss");
  const m = childOnnx
    ? createSession(await loadOnnxModel(childOnnx))
    : await loadLayersModel(childTfjs);
  const loaded = statusMiB("peak");
  const x = tf.zeros([1, 224, 224, 3]);
  tf.dispose([m.predict(x as Tensor4D) as Tensor, x]);
  console.log(JSON.stringify({
    baseMiB: base,
    loadedMiB: loaded,
    predictedMiB: statusMiB("peak"),
    weightsMiB:
      (childOnnx ? weightBytes(m as ModelSession) : (m as LayersModel).countParams() * 4) /
      2 ** 20,
  }));
  Deno.exit(0);
}

/** The LayersModel: VGG16's convolutions, Flatten, Dense 448 (ReLU), Dense 1000. */
function buildModel(): LayersModel {
  const layers: tf.layers.Layer[] = [];
  let first = true;
  for (const block of [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]) {
    for (const filters of block) {
      layers.push(tf.layers.conv2d({
        filters,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: tf.initializers.heNormal({ seed: layers.length }),
        ...(first ? { inputShape: [224, 224, 3] } : {}),
      }));
      first = false;
    }
    layers.push(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  layers.push(tf.layers.flatten());
  layers.push(tf.layers.dense({ units: 448, activation: "relu" }));
  layers.push(tf.layers.dense({ units: 1000 }));
  return tf.sequential({ layers });
}

/** The LayersModel as ONNX bytes (NCHW input, ONNX weight layouts). */
function toOnnx(model: LayersModel): Uint8Array {
  const node: onnxProto.onnx.INodeProto[] = [];
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  const A = onnx.AttributeProto.AttributeType;
  const ints = (name: string, v: number[]) => ({ name, type: A.INTS, ints: v });
  const init = (name: string, t: Tensor): string => {
    const data = t.dataSync() as Float32Array;
    initializer.push({
      name,
      dims: t.shape,
      dataType: 1,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  };
  let cur = "input";
  let spatial: number[] = [];
  for (const layer of model.layers) {
    const name = layer.name;
    const [k, b] = layer.getWeights();
    const out = (
      op: string,
      inputs: string[],
      attribute: onnxProto.onnx.IAttributeProto[] = [],
    ): void => {
      const y = `${name}/${op}`;
      node.push({ name: `/${name}/${op}`, opType: op, input: inputs, output: [y], attribute });
      cur = y;
    };
    const cls = layer.getClassName();
    if (cls === "Conv2D") {
      const w = tf.tidy(() => k.transpose([3, 2, 0, 1]));
      out("Conv", [cur, init(`${name}.weight`, w), init(`${name}.bias`, b)], [
        ints("kernel_shape", [3, 3]),
        ints("pads", [1, 1, 1, 1]),
      ]);
      w.dispose();
      out("Relu", [cur]);
    } else if (cls === "MaxPooling2D") {
      out("MaxPool", [cur], [ints("kernel_shape", [2, 2]), ints("strides", [2, 2])]);
    } else if (cls === "Flatten") {
      spatial = (layer.input as tf.SymbolicTensor).shape.slice(1) as number[];
      out("Flatten", [cur]);
    } else if (cls === "Dense") {
      // Keras flattens H, W, C; ONNX C, H, W: the first dense layer's rows follow ONNX's order.
      const w = spatial.length
        ? tf.tidy(() => k.reshape([...spatial, -1]).transpose([2, 0, 1, 3]).reshape(k.shape))
        : k.clone();
      spatial = [];
      out("Gemm", [cur, init(`${name}.weight`, w), init(`${name}.bias`, b)]);
      w.dispose();
      if ((layer.getConfig().activation as string) === "relu") out("Relu", [cur]);
    } else throw new Error(`onnx_bench: no export for ${cls}`);
  }
  const dims = (d: number[]) => ({ dim: d.map((v) => ({ dimValue: v })) });
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "vgg16_style",
      node,
      initializer,
      input: [{
        name: "input",
        type: { tensorType: { elemType: 1, shape: dims([1, 3, 224, 224]) } },
      }],
      output: [{ name: cur, type: { tensorType: { elemType: 1, shape: dims([1, 1000]) } } }],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

const tfjs = buildModel();
const writeTo = opt("--write", "");
if (writeTo) {
  // Only write the `.onnx` file (for other measurements), then stop.
  await Deno.writeFile(writeTo, toOnnx(tfjs));
  tfjs.dispose();
  Deno.exit(0);
}
const dir = await Deno.makeTempDir();
const file = `${dir}/vgg16_style.onnx`;
try {
  await Deno.writeFile(file, toOnnx(tfjs));
  await tfjs.save(tf.io.withSaveHandler(async (art) => {
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(art.weightData as ArrayBuffer));
    const json = {
      modelTopology: art.modelTopology,
      format: "layers-model",
      weightsManifest: [{ paths: ["weights.bin"], weights: art.weightSpecs }],
    };
    await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
  const measure = async (flag: string, path: string) => {
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        new URL(import.meta.url).pathname,
        "--backend",
        backend,
        flag,
        path,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const r = JSON.parse(new TextDecoder().decode(child.stdout).trim().split("\n").pop()!);
    const copies = (v: number) => ((v - r.baseMiB - r.weightsMiB) / r.weightsMiB).toFixed(2);
    console.log(
      `${flag === "--child-onnx" ? "ONNX file" : "tfjs LayersModel"} (${backend}): RSS before ` +
        `${r.baseMiB.toFixed(0)} MiB; weights ${r.weightsMiB.toFixed(1)} MiB; peak after loading ` +
        `${r.loadedMiB.toFixed(0)} MiB (${copies(r.loadedMiB)} weight copies besides the ` +
        `weights), after a first predict ${r.predictedMiB.toFixed(0)} MiB (${
          copies(r.predictedMiB)
        })`,
    );
  };
  console.log(`ONNX file ${(Deno.statSync(file).size / 2 ** 20).toFixed(1)} MiB`);
  await measure("--child-onnx", file);
  await measure("--child-tfjs", `${dir}/model.json`);
  const session = createSession(await loadOnnxModel(file));
  const x = filled([1, 224, 224, 3], -2, 2, 7) as Tensor4D;
  const [ya, yb] = [session.predict(x), tfjs.predict(x) as Tensor];
  const diff = tf.tidy(() => ya.sub(yb).abs().max().div(yb.abs().max()).dataSync()[0]);
  tf.dispose([ya, yb]);
  console.log(`logits: ONNX vs LayersModel differ by ${diff.toExponential(2)} of their max`);
  const reps = Number(opt("--reps", "10"));
  const run = async (m: LayersModel | typeof session): Promise<number> => {
    const t0 = performance.now();
    await explain(m, x, { method: "grad-cam" });
    return performance.now() - t0;
  };
  await run(session);
  await run(tfjs);
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r < reps; r++) {
    times[0].push(await run(session));
    times[1].push(await run(tfjs));
  }
  const [a, b] = times.map(median);
  console.log(
    `grad-cam batch 1 (${backend}, ${reps} interleaved reps): ONNX ${a.toFixed(1)} ms, ` +
      `tfjs LayersModel ${b.toFixed(1)} ms, ratio ${(a / b).toFixed(3)}`,
  );
  x.dispose();
  session.dispose();
} finally {
  tfjs.dispose();
  await Deno.remove(dir, { recursive: true });
}
