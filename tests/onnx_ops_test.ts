/**
 * ONNX front end, op by op on small models built here with onnx-proto: the activations
 * PyTorch exports (LeakyRelu, HardSigmoid with PyTorch's alpha, HardSwish, Elu, Selu,
 * Softplus), Sum, Cast and an identity Transpose equal their ONNX definitions; a transpose to
 * NHWC before a flatten; constant folding of shape arithmetic (F.pad's export); a dilated
 * convolution's input gradient; an unsupported op, attribute or layout is one error naming
 * it and the node; the loader's reliability rules (external data inside the model's folder,
 * regular files, sizes checked first), weights as typed fields and float16, and in-memory
 * external data (the playground).
 */
import { initBackend } from "../backend/mod.ts";
import { createSession, loadOnnxModel, onnxFromBytes, OnnxModel } from "../core/frontends/mod.ts";
import type { Constant } from "../core/frontends/onnx_model.ts";
import { foldConstant } from "../core/frontends/onnx_const.ts";
import { convOp } from "../core/frontends/ops.ts";
import { dilatedKernel } from "../core/layer_ops.ts";
import { tf } from "../core/tensor.ts";
import onnxProto from "onnx-proto";
import { assert, assertEquals, assertRejects } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });
const { onnx } = onnxProto;

type Attr = { name: string; type: number; f?: number; i?: number; ints?: number[] };
const A = onnx.AttributeProto.AttributeType;
const f = (name: string, v: number): Attr => ({ name, type: A.FLOAT, f: v });
const i = (name: string, v: number): Attr => ({ name, type: A.INT, i: v });
const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });

const SHAPE = [1, 2, 3, 3];
const valueInfo = (name: string) => ({
  name,
  type: {
    tensorType: { elemType: 1, shape: { dim: SHAPE.map((d) => ({ dimValue: d })) } },
  },
});

/** The bytes of a model `y = op(x, x, ...)` on an input `[1, 2, 3, 3]`. */
function oneNode(opType: string, attribute: Attr[] = [], inputs = 1): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 14 }],
    graph: {
      name: "g",
      node: [{
        name: `/block/${opType}`,
        opType,
        input: Array(inputs).fill("x"),
        output: ["y"],
        attribute,
      }],
      input: [valueInfo("x")],
      output: [valueInfo("y")],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

const X = Float32Array.from({ length: 18 }, (_, k) => (k - 8.5) * 0.7);

/** Runs a one-node model (bytes or loaded) on `X` and returns its NCHW output. */
function run(model: Uint8Array | OnnxModel): Float32Array {
  const session = createSession(
    model instanceof OnnxModel ? model : OnnxModel.decode(model, "op.onnx"),
  );
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(X, SHAPE as [number, number, number, number]).transpose([0, 2, 3, 1]);
      const y = session.predict(x as tf.Tensor4D).reshape([1, 3, 3, 2]);
      return y.transpose([0, 3, 1, 2]).dataSync() as Float32Array;
    });
  } finally {
    session.dispose();
  }
}

const SELU_A = 1.67326319217681884765625, SELU_G = 1.05070102214813232421875;
const hsig = (v: number, a: number, b: number) => Math.max(0, Math.min(1, a * v + b));

Deno.test("ONNX ops: the activations PyTorch exports equal their ONNX definitions", () => {
  const before = tf.memory().numTensors;
  const cases: [string, Uint8Array, (v: number) => number][] = [
    ["LeakyRelu", oneNode("LeakyRelu", [f("alpha", 0.1)]), (v) => (v > 0 ? v : 0.1 * v)],
    ["LeakyRelu default", oneNode("LeakyRelu"), (v) => (v > 0 ? v : 0.01 * v)],
    [
      "HardSigmoid (PyTorch's 1/6)",
      oneNode("HardSigmoid", [f("alpha", 1 / 6)]),
      (v) => hsig(v, 1 / 6, 0.5),
    ],
    ["HardSigmoid default", oneNode("HardSigmoid"), (v) => hsig(v, 0.2, 0.5)],
    ["HardSwish", oneNode("HardSwish"), (v) => v * hsig(v, 1 / 6, 0.5)],
    ["Elu", oneNode("Elu", [f("alpha", 0.5)]), (v) => (v > 0 ? v : 0.5 * (Math.exp(v) - 1))],
    ["Selu", oneNode("Selu"), (v) => SELU_G * (v > 0 ? v : SELU_A * (Math.exp(v) - 1))],
    ["Softplus", oneNode("Softplus"), (v) => Math.log1p(Math.exp(v))],
    ["Sum", oneNode("Sum", [], 3), (v) => 3 * v],
    ["Cast to float", oneNode("Cast", [i("to", 1)]), (v) => v],
    ["Transpose (identity)", oneNode("Transpose", [ints("perm", [0, 1, 2, 3])]), (v) => v],
  ];
  for (const [what, bytes, want] of cases) {
    const got = run(bytes);
    X.forEach((v, k) => {
      assert(
        Math.abs(got[k] - want(v)) <= 1e-5 * Math.max(1, Math.abs(want(v))),
        `${what} at ${v}`,
      );
    });
  }
  assertEquals(tf.memory().numTensors, before, "tensors left behind");
});

Deno.test("ONNX ops: an unsupported op, attribute or layout is one error naming it and the node", () => {
  const cases: [Uint8Array, string][] = [
    [oneNode("Erf"), "op.onnx: node 'block' (Erf): op 'Erf' is not supported"],
    [
      oneNode("LeakyRelu", [f("alpha", 0.1), i("storage_order", 1)]),
      "op.onnx: node 'block' (LeakyRelu): attribute 'storage_order' = 1 is not supported",
    ],
    [
      oneNode("Transpose", [ints("perm", [0, 1, 3, 2])]),
      "node 'block' (Transpose): perm [0,1,3,2]: only the identity or NCHW <-> NHWC",
    ],
    [
      then(oneNode("Transpose", [ints("perm", [0, 2, 3, 1])]), "Relu"),
      "node 'next' (Relu): input 'y' was transposed to NHWC; only Flatten, Reshape",
    ],
    [oneNode("Cast", [i("to", 7)]), "(Cast): cast to data type 7: only to floats"],
  ];
  const before = tf.memory().numTensors;
  for (const [bytes, want] of cases) {
    let msg = "";
    try {
      createSession(OnnxModel.decode(bytes, "op.onnx"));
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes(want), `${want} in: ${msg}`);
    assert(!msg.includes("\n"), msg);
  }
  assertEquals(tf.memory().numTensors, before, "tensors left behind");
});

/** A model's bytes with one more node `opType` reading its output `y` (output `z`). */
function then(bytes: Uint8Array, opType: string): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.graph!.node!.push({ name: "/next/" + opType, opType, input: ["y"], output: ["z"] });
  model.graph!.output = [valueInfo("z")];
  return onnx.ModelProto.encode(model).finish();
}

Deno.test("ONNX ops: NCHW -> NHWC transpose then flatten reads H, W, C order", () => {
  const got = run(then(oneNode("Transpose", [ints("perm", [0, 2, 3, 1])]), "Flatten"));
  // The flattened [1, 3, 3, 2] (H, W, C) of the NCHW input X.
  const want = Array.from({ length: 18 }, (_, k) => X[(k % 2) * 9 + Math.floor(k / 2)]);
  // run() reads its output back as [1, 3, 3, 2] NHWC -> NCHW: undo that to compare.
  const flat = Array.from({ length: 18 }, (_, k) => got[(k % 2) * 9 + Math.floor(k / 2)]);
  assertEquals(flat, want.map(Math.fround));
});

Deno.test("ONNX ops: shape arithmetic on constants folds (F.pad's export)", () => {
  const c = (dims: number[], v: number[]): Constant => ({ dims, data: Int32Array.from(v) });
  const pads = foldConstant("ConstantOfShape", {}, [c([1], [4])]);
  assertEquals([pads.dims, Array.from(pads.data)], [[4], [0, 0, 0, 0]]);
  const cat = foldConstant("Concat", { axis: 0 }, [c([4], [0, 1, 0, 1]), pads]);
  const r = foldConstant("Reshape", {}, [cat, c([2], [-1, 2])]);
  assertEquals(r.dims, [4, 2]);
  // Reverse the rows (INT64_MIN clamped to int32 as the end), then transpose and flatten.
  const rev = foldConstant("Slice", {}, [
    r,
    c([1], [-1]),
    c([1], [-(2 ** 31)]),
    c([1], [0]),
    c([1], [-1]),
  ]);
  assertEquals(Array.from(rev.data), [0, 0, 0, 0, 0, 1, 0, 1]);
  const t = foldConstant("Transpose", { perm: [1, 0] }, [rev]);
  assertEquals(Array.from(t.data), [0, 0, 0, 0, 0, 0, 1, 1]);
  const g = foldConstant("Gather", { axis: 1 }, [t, c([2], [3, -4])]);
  assertEquals([g.dims, Array.from(g.data)], [[2, 2], [0, 0, 1, 0]]);
  const u = foldConstant("Unsqueeze", { axes: [0] }, [g]);
  assertEquals(u.dims, [1, 2, 2]);
  assertEquals(foldConstant("Squeeze", {}, [u]).dims, [2, 2]);
  const f = foldConstant("Cast", { to: 1 }, [g]);
  assert(f.data instanceof Float32Array);
});

Deno.test("ONNX ops: a dilated convolution's input gradient (zero-stuffed kernel)", () => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.randomUniform([1, 9, 8, 3], -1, 1, "float32", 1) as tf.Tensor4D;
    const k = tf.randomUniform([3, 2, 3, 4], -1, 1, "float32", 2) as tf.Tensor4D;
    const d: [number, number] = [2, 3];
    const stuffed = dilatedKernel(k, d);
    assertEquals(stuffed.shape, [5, 4, 3, 4]);
    for (const padding of ["same", "valid"] as const) {
      const a = tf.conv2d(x, k, 1, padding, "NHWC", d);
      const b = tf.conv2d(x, stuffed, 1, padding);
      assert(a.sub(b).abs().max().dataSync()[0] < 1e-5, `forward ${padding}`);
      const op = convOp("c", "Conv", { kernel: k, padding, dilations: d });
      const dy = tf.randomUniform(a.shape, -1, 1, "float32", 3);
      const [g] = op.backward(dy, [x], a);
      const ref = tf.grad((z: tf.Tensor) =>
        tf.conv2d(z as tf.Tensor4D, stuffed, 1, padding).mul(dy).sum()
      )(x);
      assert(g.sub(ref).abs().max().dataSync()[0] < 1e-4, `gradient ${padding}`);
    }
  });
  assertEquals(tf.memory().numTensors, before);
});

/** `oneNode("Mul")` with its second operand an external initializer at `location`. */
function externalMul(location: string, length: number): Uint8Array {
  const model = onnx.ModelProto.decode(oneNode("Mul", [], 1));
  model.graph!.node![0].input = ["x", "w"];
  model.graph!.initializer = [{
    name: "w",
    dims: [1, 2, 1, 1],
    dataType: 1,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [{ key: "location", value: location }, {
      key: "length",
      value: String(length),
    }],
  }];
  return onnx.ModelProto.encode(model).finish();
}

Deno.test("ONNX loader: external data stays in the model's folder, regular files, sizes first", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/model`;
    await Deno.mkdir(dir);
    const w = new Uint8Array(new Float32Array([2, -3]).buffer);
    await Deno.writeFile(`${dir}/w.bin`, w);
    await Deno.writeFile(`${root}/outside.bin`, w);
    // Inside the folder: loads, and multiplies channel 0 by 2 and channel 1 by -3.
    await Deno.writeFile(`${dir}/ok.onnx`, externalMul("w.bin", 8));
    const got = run(await loadOnnxModel(`${dir}/ok.onnx`));
    X.forEach((v, k) => assertEquals(got[k], Math.fround(Math.fround(v) * (k < 9 ? 2 : -3))));
    // ../ and absolute paths are refused unless allowed.
    await Deno.writeFile(`${dir}/up.onnx`, externalMul("../outside.bin", 8));
    await assertRejects(
      () => loadOnnxModel(`${dir}/up.onnx`),
      /up\.onnx: external data '\.\.\/outside\.bin': outside the model's folder/,
    );
    await Deno.writeFile(`${dir}/abs.onnx`, externalMul(`${root}/outside.bin`, 8));
    await assertRejects(() => loadOnnxModel(`${dir}/abs.onnx`), /outside the model's folder/);
    const allowed = await loadOnnxModel(`${dir}/up.onnx`, { allowOutsideFolder: true });
    assertEquals(allowed.proto.graph.initializer[0].rawData.length, 8);
    // An external file bigger than its tensors need is refused before it is read.
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(64));
    await Deno.writeFile(`${dir}/big.onnx`, externalMul("big.bin", 8));
    await assertRejects(
      () => loadOnnxModel(`${dir}/big.onnx`),
      /external data 'big\.bin': 64 bytes, more than the 8 expected/,
    );
    // A folder or a device is not a model; a missing file is one error naming it.
    await Deno.mkdir(`${dir}/folder.onnx`);
    await assertRejects(() => loadOnnxModel(`${dir}/folder.onnx`), /folder\.onnx: not a regular/);
    await Deno.writeFile(`${dir}/dev.onnx`, externalMul("/dev/zero", 8));
    await assertRejects(
      () => loadOnnxModel(`${dir}/dev.onnx`, { allowOutsideFolder: true }),
      /external data '\/dev\/zero': not a regular file/,
    );
    // The same weights as typed fields (floatData; float16 bit patterns in int32Data).
    const typed = onnx.ModelProto.decode(externalMul("w.bin", 8));
    const init = typed.graph!.initializer![0];
    init.dataLocation = 0;
    init.externalData = [];
    init.floatData = [2, -3];
    assertEquals(run(onnx.ModelProto.encode(typed).finish()), got);
    init.floatData = [];
    init.dataType = 10; // FLOAT16: 2 = 0x4000, -3 = 0xc200
    init.int32Data = [0x4000, 0xc200];
    assertEquals(run(onnx.ModelProto.encode(typed).finish()), got);
    // In memory (the playground's dropped files): external data by file name.
    const mem = await onnxFromBytes(externalMul("w.bin", 8), new Map([["w.bin", w]]), "m.onnx");
    assertEquals(run(mem), got);
    await assertRejects(
      () => onnxFromBytes(externalMul("w.bin", 8), new Map(), "m.onnx"),
      /m\.onnx: external data 'w\.bin': not among the given files/,
    );
    await Deno.writeFile(`${dir}/gone.onnx`, externalMul("gone.bin", 8));
    await assertRejects(
      () => loadOnnxModel(`${dir}/gone.onnx`),
      /gone\.onnx: external data 'gone\.bin': cannot read/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
