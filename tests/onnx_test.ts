/**
 * The ONNX front end on PyTorch exports (tests/fixtures/onnx, made by make_fixtures.py with
 * Debian's python3-torch): logits equal PyTorch's, every method x extrapolator gives a sane
 * map, guided backprop differs from the plain gradient, unsupported ops fail in one line,
 * and no tensor is left behind.
 */
import { initBackend } from "../backend/mod.ts";
import { explain, sessionOf } from "../core/explain.ts";
import { createSession, loadOnnxModel, OnnxModel } from "../core/frontends/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { encodeNpy } from "../io/npy.ts";
import { registry } from "../core/registry.ts";
import { tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import onnxProto from "onnx-proto";
import { assert, assertEquals } from "./_assert.ts";
import { maxRel, sane } from "./_maps.ts";
import { gradual } from "./_cli_run.ts";

await initBackend({ backend: "wasm", threads: 1 });
const DIR = new URL("./fixtures/onnx/", import.meta.url);
const MODELS = ["resnet_tiny", "mobilenet_v2_tiny", "squeezenet_tiny", "mixed_tiny"];

function readF32(name: string): Float32Array {
  const b = Deno.readFileSync(new URL(name, DIR));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** The fixture input, NCHW on disk, as the NHWC batch the executor takes. */
const x = tf.tidy(() =>
  tf.tensor4d(readF32("inputs.bin"), [2, 3, 64, 64]).transpose([0, 2, 3, 1])
) as tf.Tensor4D;

const models = new Map<string, OnnxModel>();
for (const name of MODELS) models.set(name, await loadOnnxModel(new URL(`${name}.onnx`, DIR)));

Deno.test("ONNX: logits equal PyTorch's within 1e-4 relative", () => {
  for (const name of MODELS) {
    const s = sessionOf(models.get(name)!);
    const logits = s.predict(x);
    const err = maxRel(logits.dataSync(), readF32(`${name}_logits.bin`));
    logits.dispose();
    assert(err < 1e-4, `${name}: logits differ from PyTorch's by ${err}`);
  }
});

Deno.test("ONNX: input gradients equal PyTorch autograd's within 1e-4 relative", () => {
  for (const name of MODELS) {
    const s = sessionOf(models.get(name)!);
    const pass = s.forward(x, { gradientsFrom: [s.graph.inputName] });
    const top = tf.tidy(() => pass.scores.argMax(1));
    const seed = tf.tidy(() => tf.oneHot(top as tf.Tensor1D, pass.scores.shape[1]).cast("float32"));
    const [g] = pass.backward(seed, { wrt: [s.graph.inputName] });
    const nchw = tf.tidy(() => g.transpose([0, 3, 1, 2]));
    const err = maxRel(nchw.dataSync(), readF32(`${name}_grad.bin`));
    tf.dispose([top, seed, g, nchw]);
    pass.dispose();
    assert(err < 1e-4, `${name}: input gradient differs from PyTorch's by ${err}`);
  }
});

Deno.test("ONNX: raw Grad-CAM at a block output equals the hook-computed PyTorch map", async () => {
  const res = await explain(models.get("resnet_tiny")!, x, {
    method: "grad-cam",
    layer: "layer2.0.relu_1",
    resize: "none",
    normalize: "none",
  });
  const got = new Float32Array(res.reduce((a, r) => a + r.map.length, 0));
  res.forEach((r, i) => got.set(r.map, i * r.map.length));
  const err = maxRel(got, readF32("resnet_tiny_gradcam_layer2.bin"));
  assert(err < 1e-4, `Grad-CAM differs from PyTorch's by ${err}`);
});

/** float32 to float16 bits (round to nearest). */
function toHalf(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return exp < -10 ? sign : sign + (((mant | 0x800000) >> (1 - exp)) + 0x1000 >> 13);
  if (exp >= 31) return sign + 0x7c00;
  return sign + (exp << 10) + ((mant + 0x1000) >> 13);
}

Deno.test("ONNX: weights in an external data file, and float16 weights, load", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = Deno.readFileSync(new URL("resnet_tiny.onnx", DIR));
  const reference = readF32("resnet_tiny_logits.bin");
  // External data: every float initializer's bytes moved to weights.bin.
  const ext = OnnxModel.decode(bytes, "ext.onnx");
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of ext.proto.graph.initializer) {
    if (t.dataType !== 1 || !t.rawData.length) continue;
    chunks.push(t.rawData.slice());
    t.externalData = [
      { key: "location", value: "weights.bin" },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(t.rawData.length) },
    ];
    offset += t.rawData.length;
    t.rawData = new Uint8Array(0);
    t.dataLocation = 1;
  }
  const encode = (m: OnnxModel): Uint8Array =>
    onnxProto.onnx.ModelProto.encode(m.proto as never).finish();
  await Deno.writeFile(`${dir}/ext.onnx`, encode(ext));
  const all = new Uint8Array(offset);
  chunks.reduce((at, c) => (all.set(c, at), at + c.length), 0);
  await Deno.writeFile(`${dir}/weights.bin`, all);
  let msg = "";
  try {
    createSession(OnnxModel.decode(encode(ext), "ext.onnx"));
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/external data file/.test(msg), msg);
  const extModel = await loadOnnxModel(`${dir}/ext.onnx`);
  const s1 = createSession(extModel);
  const l1 = s1.predict(x);
  assert(maxRel(l1.dataSync(), reference) < 1e-4, "external-data logits");
  // float16: every float initializer stored as half-precision raw bytes.
  const half = OnnxModel.decode(bytes, "half.onnx");
  for (const t of half.proto.graph.initializer) {
    if (t.dataType !== 1 || !t.rawData.length) continue;
    const f = new Float32Array(t.rawData.slice().buffer);
    const h = new Uint16Array(f.length);
    f.forEach((v, i) => (h[i] = toHalf(v)));
    t.rawData = new Uint8Array(h.buffer);
    t.dataType = 10;
  }
  const s2 = createSession(OnnxModel.decode(encode(half), "half.onnx"));
  const l2 = s2.predict(x);
  const err = maxRel(l2.dataSync(), reference);
  assert(err > 0 && err < 1e-2, `float16 logits differ by ${err}`);
  tf.dispose([l1, l2]);
  // Disposing the model frees the weights its sessions were compiled with.
  const before = tf.memory().numTensors;
  extModel.dispose();
  assert(tf.memory().numTensors < before, "the ONNX model's dispose frees its weights");
  s2.dispose();
});

Deno.test("ONNX: vgg_tiny from PyTorch gives the LayersModel fixture's maps for every method", async () => {
  const onnxVgg = await loadOnnxModel(new URL("vgg_tiny.onnx", DIR));
  const layersVgg = await loadLayersModel(new URL("../models/vgg_tiny/tfjs/model.json", DIR));
  const b = Deno.readFileSync(new URL("../vgg_tiny/model_inputs.bin", DIR));
  const xv = tf.tensor4d(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), [
    4,
    64,
    64,
    3,
  ]);
  const tfName = (onnxName: string): string => onnxName.replace(/\./g, "_").toLowerCase();
  for (const method of registry.methods().map((m) => m.name)) {
    const fast = method === "smooth-grad" || method === "integrated-gradients";
    const opts = {
      method,
      targets: [9, 3, 5, 8],
      normalize: "none" as const,
      resize: "none" as const,
      methodOptions: fast ? (method === "smooth-grad" ? { samples: 4 } : { steps: 8 }) : {},
    };
    const a = await explain(onnxVgg, xv, opts);
    const r = await explain(layersVgg, xv, opts);
    for (let i = 0; i < 4; i++) {
      const what = `${method} image ${i}`;
      const inputs = [sessionOf(onnxVgg).graph.inputName, sessionOf(layersVgg).graph.inputName];
      const canon = (l: string) => (inputs.includes(l) ? "<input>" : tfName(l));
      assertEquals(canon(a[i].layer), canon(r[i].layer), what);
      const err = maxRel(a[i].map, r[i].map);
      assert(err < 1e-4, `${what}: ONNX and LayersModel maps differ by ${err}`);
    }
  }
  // Raw Grad-CAM straight against TorchRay's array on the PyTorch model.
  const raw = await explain(onnxVgg, xv, {
    layer: "features.11",
    targets: [9, 3, 5, 8],
    resize: "none",
    normalize: "none",
  });
  const ref = readF32("../vgg_tiny/gradcam_torchray_relu.bin");
  const got = new Float32Array(ref.length);
  raw.forEach((e, i) => got.set(e.map, i * e.map.length));
  assert(maxRel(got, ref) < 1e-4, "Grad-CAM differs from TorchRay's");
  xv.dispose();
  layersVgg.dispose();
});

Deno.test("ONNX: node names are PyTorch module paths; graph facts from the structure", () => {
  const g = sessionOf(models.get("resnet_tiny")!).graph;
  const names = g.nodes.map((n) => n.name);
  for (const n of ["conv1", "maxpool", "layer1.0.conv1", "layer1.0/Add", "layer1.0.relu_1", "fc"]) {
    assert(names.includes(n), `${n} not in ${names}`);
  }
  assertEquals(g.inputShape, [null, 64, 64, 3]);
  assertEquals(g.reducingLayers, [
    "conv1",
    "maxpool",
    "layer2.0.conv1",
    "layer2.0.downsample.0",
  ]);
  assertEquals(g.classifierLayer, "fc");
  assertEquals(g.scoreName, "fc");
  const maxpool = g.nodes.find((n) => n.name === "maxpool")!;
  assertEquals(maxpool.outputShape, [null, 16, 16, 16]);
});

Deno.test("ONNX: every method x extrapolator gives a sane map (resnet_tiny)", async () => {
  const model = models.get("resnet_tiny")!;
  const extrapolators = [undefined, ...registry.extrapolators().map((e) => e.name)];
  for (const method of registry.methods().map((m) => m.name)) {
    for (const extrapolator of extrapolators) {
      const fast = method === "smooth-grad" || method === "integrated-gradients";
      const res = await explain(model, x, {
        method,
        extrapolator,
        methodOptions: fast ? (method === "smooth-grad" ? { samples: 4 } : { steps: 8 }) : {},
      });
      for (const r of res) {
        assert(sane(r.map), `${method}+${extrapolator ?? "none"}: not a sane map`);
      }
    }
  }
  const [guided] = await explain(model, x, { method: "guided-backprop" });
  const [plain] = await explain(model, x, { method: "gradient" });
  assert(maxRel(guided.map, plain.map) > 0.05, "guided backprop equals the plain gradient");
});

Deno.test("ONNX: every method leaves no tensor behind", async () => {
  const model = models.get("resnet_tiny")!;
  const run = async () => {
    for (const method of registry.methods().map((m) => m.name)) {
      const fast = method === "smooth-grad" || method === "integrated-gradients";
      await explain(model, x, {
        method,
        extrapolator: "gradual",
        methodOptions: fast ? (method === "smooth-grad" ? { samples: 2 } : { steps: 4 }) : {},
      });
    }
  };
  await run();
  const before = tf.memory().numTensors;
  await run();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("ONNX: a dynamic input size (dynamic_axes) comes from the option or the images", async () => {
  const m = OnnxModel.decode(Deno.readFileSync(new URL("resnet_tiny.onnx", DIR)), "dyn.onnx");
  const dims = m.proto.graph.input[0].type!.tensorType!.shape!.dim!;
  for (const k of [0, 2, 3]) dims[k] = { dimParam: ["batch", "", "height", "width"][k] } as never;
  let msg = "";
  try {
    createSession(m);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/dynamic size.*--input-size/.test(msg), msg);
  const s = createSession(m, { inputSize: [64, 64] });
  const logits = s.predict(x);
  assert(maxRel(logits.dataSync(), readF32("resnet_tiny_logits.bin")) < 1e-4);
  logits.dispose();
  const big = tf.image.resizeBilinear(x, [96, 80]) as tf.Tensor4D;
  const [e] = await explain(m, big, { method: "grad-cam" });
  assertEquals([e.height, e.width], [96, 80]);
  big.dispose();
  m.dispose();
});

Deno.test("ONNX: an unsupported op is one error naming the op and the node", () => {
  const bytes = Deno.readFileSync(new URL("resnet_tiny.onnx", DIR));
  const m = OnnxModel.decode(bytes, "resnet_tiny.onnx");
  m.proto.graph.node[1].opType = "Erf";
  let msg = "";
  try {
    createSession(m);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/node 'relu' \(Erf\): op 'Erf' is not supported/.test(msg), msg);
  assert(!msg.includes("\n"), msg);
  let bad = "";
  try {
    OnnxModel.decode(new Uint8Array([1, 2, 3]), "x.onnx");
  } catch (e) {
    bad = (e as Error).message;
  }
  assert(/^x\.onnx: not an ONNX model/.test(bad), bad);
});

Deno.test("CLI: --model file.onnx explains (c-EB + gradual) and lists PyTorch layer names", async () => {
  const onnxPath = new URL("resnet_tiny.onnx", DIR).pathname;
  const dir = await Deno.makeTempDir();
  const first = x.slice([0], [1]);
  await Deno.writeFile(`${dir}/img.npy`, encodeNpy(first.dataSync() as Float32Array, [64, 64, 3]));
  first.dispose();
  const cli = gradual;
  const list = await cli(["list", "--model", onnxPath]);
  assertEquals(list.code, 0, list.stderr);
  assert(/layer1\.0\.conv1\s+Conv\s+\[N, 16, 16, 16\]/.test(list.stdout), list.stdout);
  const r = await cli([
    "explain",
    `${dir}/img.npy`,
    "--model",
    onnxPath,
    "--preprocess",
    "none",
    "--method",
    "c-eb",
    "--extrapolate",
    "gradual",
    "--format",
    "npy",
    "--json",
    "--out",
    `${dir}/out`,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const rec = JSON.parse(r.stdout.trim().split("\n")[0]);
  assertEquals(rec.method, "contrastive-excitation-backprop");
  assert(rec.map.max > rec.map.min, JSON.stringify(rec.map));
});
