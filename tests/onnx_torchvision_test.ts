/**
 * The ONNX front end against PyTorch on reduced torchvision architectures
 * (tests/fixtures/onnx_torchvision, made by its generate.py with Debian's python3-torch,
 * pytorch-grad-cam and TorchRay): logits, pytorch-grad-cam's raw Grad-CAM, TorchRay's
 * gradient, guided backprop, excitation backprop and c-EB; every method x extrapolator gives
 * a finite, non-constant map and leaves no tensor behind. Each model loads as the CLI loads
 * it (`loadOnnxModel` on the `.onnx` path), and runs through `explain`.
 */
import { initBackend } from "../backend/mod.ts";
import { explain } from "../core/explain.ts";
import { createSession, loadOnnxModel } from "../core/frontends/mod.ts";
import type { ModelSession } from "../core/session.ts";
import { encodePng } from "../io/mod.ts";
import { registry } from "../core/registry.ts";
import { type Tensor4D, tf } from "../core/tensor.ts";
import { BUILTIN_LABELS } from "../models/labels/mod.ts";
import "../plugins/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { maxRel } from "./_maps.ts";
import { gradual } from "./_cli_run.ts";

await initBackend({ backend: "wasm", threads: 1 });

const DIR = new URL("./fixtures/onnx_torchvision/", import.meta.url);

interface ModelRefs {
  onnx: string;
  bin: string;
  targets: number[];
  gradcam_layer: string;
  eb_layer?: string;
  contrast_layer?: string;
  arrays: Record<string, { offset: number; shape: number[] }>;
}

const refs: { inputs_shape: [number, number, number, number]; models: Record<string, ModelRefs> } =
  JSON.parse(await Deno.readTextFile(new URL("refs.json", DIR)));
const inputBytes = await Deno.readFile(new URL("inputs.bin", DIR));
const inputs = new Float32Array(inputBytes.buffer, inputBytes.byteOffset, inputBytes.length / 4);

/** Tolerance of every comparison, relative to the reference's largest magnitude. */
const REL = 1e-4;

/**
 * Looser tolerances where the reference itself is ill-conditioned: TorchRay's EB on the
 * DenseNet fixture moves by 6.1e-4 of its max between float32 and float64 (measured by the
 * fixture generator with the model in double precision).
 */
const LOOSE: Record<string, Record<string, number>> = {
  densenet121: { eb_torchray: 1e-2, ceb_torchray: 1e-2 },
};

/**
 * pytorch-grad-cam's capture where an in-place ReLU follows the layer: DenseNet's forward runs
 * `F.relu(features, inplace=True)` on `features.norm5`'s output, so the library sees the
 * post-ReLU activations with the pre-ReLU gradient; `inplaceRelu: "pgc"` reproduces it.
 */
const PGC_OPTIONS: Record<string, Record<string, unknown>> = {
  densenet121: { inplaceRelu: "pgc" },
};

/**
 * Architectures whose guided backprop equals TorchRay's: TorchRay patches only `nn.ReLU`, so
 * its "guided backprop" passes the plain gradient through ReLU6 (MobileNetV2), Hardswish /
 * Hardsigmoid (MobileNetV3, which gradual compiles with a ReLU6 inside and guides) and
 * LeakyReLU (ops_mix), while gradual gives those the guided rule (EfficientNet has no ReLU:
 * both pass SiLU's gradient).
 */
const GUIDED_MATCHES = new Set([
  "resnet18",
  "vgg11",
  "vgg16",
  "densenet121",
  "efficientnet_b0",
  "squeezenet1_1",
  "googlenet",
]);

function reference(m: ModelRefs, name: string): Float32Array {
  const a = m.arrays[name];
  const bytes = Deno.readFileSync(new URL(m.bin, DIR));
  const n = a.shape.reduce((x, y) => x * y, 1);
  return new Float32Array(bytes.buffer, bytes.byteOffset + a.offset, n);
}

const batch = (): Tensor4D => tf.tensor4d(inputs, refs.inputs_shape);

/** The raw maps of both fixture images, concatenated. */
async function rawMaps(
  model: ModelSession,
  method: string,
  layer: string | undefined,
  methodOptions: Record<string, unknown>,
): Promise<Float32Array> {
  const x = batch();
  try {
    const es = await explain(model, x, {
      method,
      layer,
      methodOptions,
      resize: "none",
      normalize: "none",
    });
    const out = new Float32Array(es.reduce((s, e) => s + e.map.length, 0));
    es.forEach((e, i) => out.set(e.map, i * e.map.length));
    return out;
  } finally {
    x.dispose();
  }
}

/** The reference checks of one model: [reference, method, layer, method options]. */
function checksOf(
  name: string,
  m: ModelRefs,
): [string, string, string | undefined, Record<string, unknown>][] {
  const checks: [string, string, string | undefined, Record<string, unknown>][] = [
    ["gradcam_pgc_raw", "grad-cam", m.gradcam_layer, { raw: true, ...PGC_OPTIONS[name] }],
    ["gradient_torchray", "gradient", undefined, {}],
  ];
  if (GUIDED_MATCHES.has(name)) {
    checks.push(["guided_backprop_torchray", "guided-backprop", undefined, {}]);
  }
  if (m.eb_layer) {
    checks.push(["eb_torchray", "excitation-backprop", m.eb_layer, {}]);
    checks.push(["ceb_torchray", "contrastive-excitation-backprop", m.eb_layer, {
      contrastLayer: m.contrast_layer,
    }]);
  }
  return checks;
}

for (const [name, m] of Object.entries(refs.models)) {
  Deno.test(`ONNX ${name}: logits (PyTorch), Grad-CAM (pytorch-grad-cam), TorchRay's maps`, async () => {
    const session = createSession(await loadOnnxModel(new URL(m.onnx, DIR)));
    try {
      const x = batch();
      const y = session.predict(x);
      const e = maxRel(y.dataSync(), reference(m, "logits"));
      const top = Array.from(y.argMax(1).dataSync());
      tf.dispose([x, y]);
      assert(e <= REL, `${name}: logits differ by ${e.toExponential(2)} of their max`);
      assertEquals(top, m.targets, `${name}: top classes`);
      const errors: string[] = [];
      const checks = checksOf(name, m);
      for (const [ref, method, layer, opts] of checks) {
        const got = await rawMaps(session, method, layer, opts);
        const err = maxRel(got, reference(m, ref));
        if (!(err <= (LOOSE[name]?.[ref] ?? REL))) {
          errors.push(`${ref}: differs by ${err.toExponential(2)} of its max`);
        }
      }
      assertEquals(errors, [], name);
      // The first runs may fill per-model caches; a second run leaves nothing behind.
      const before = tf.memory().numTensors;
      for (const [, method, layer, opts] of checks) await rawMaps(session, method, layer, opts);
      assertEquals(tf.memory().numTensors, before, "tensors left behind");
    } finally {
      session.dispose();
    }
  });
}

Deno.test("ONNX torchvision: every method x extrapolator gives a sane map, no tensors left", async () => {
  const methods = registry.methods().map((p) => p.name);
  const extrapolators = ["none", ...registry.extrapolators().map((p) => p.name)];
  const failures: string[] = [];
  for (const [name, m] of Object.entries(refs.models)) {
    const session = createSession(await loadOnnxModel(new URL(m.onnx, DIR)));
    const x = tf.tidy(() => batch().slice([0, 0, 0, 0], [1, -1, -1, -1]) as Tensor4D);
    const sweep = async (check: boolean): Promise<void> => {
      for (const method of methods) {
        for (const ex of extrapolators) {
          const fast = method === "smooth-grad" || method === "integrated-gradients";
          const opts = method === "score-cam"
            ? { batchSize: 64 }
            : fast
            ? (method === "smooth-grad" ? { samples: 4 } : { steps: 8 })
            : {};
          try {
            const [e] = await explain(session, x, {
              method,
              extrapolator: ex,
              methodOptions: opts,
            });
            if (!check) continue;
            let finite = true, lo = Infinity, hi = -Infinity;
            for (const v of e.map) {
              if (!Number.isFinite(v)) finite = false;
              lo = Math.min(lo, v);
              hi = Math.max(hi, v);
            }
            if (!finite) failures.push(`${name} ${method}+${ex}: non-finite map`);
            else if (!(hi > lo)) failures.push(`${name} ${method}+${ex}: constant map`);
          } catch (err) {
            if (check) failures.push(`${name} ${method}+${ex}: ${(err as Error).message}`);
          }
        }
      }
    };
    try {
      await sweep(true);
      const before = tf.memory().numTensors;
      await sweep(false);
      assertEquals(tf.memory().numTensors, before, `${name}: tensors left behind`);
    } finally {
      x.dispose();
      session.dispose();
    }
  }
  assertEquals(failures, []);
});

Deno.test("CLI: the README recipe's lines (explain --labels imagenet, list) on a torchvision export", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = "tests/fixtures/onnx_torchvision/resnet18.onnx";
    const r = await gradual([
      "explain",
      "models/samples/star_3000004.png",
      "--model",
      model,
      "--labels",
      "imagenet",
      "--preprocess",
      "imagenet",
      "--method",
      "grad-cam,guided-backprop",
      "--extrapolate",
      "gradual",
      "--backend",
      "cpu",
      "-o",
      dir,
    ]);
    assertEquals(r.code, 0, r.stderr);
    // The fixture has 10 classes: the shipped ImageNet list is reported as a mismatch.
    assert(r.stderr.includes("has 1000 labels, the model has 10 classes"), r.stderr);
    assert(!r.stderr.includes("shape classes"), r.stderr);
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(files.filter((f) => f.endsWith(".overlay.png")).length, 2, files.join(" "));
    const l = await gradual(["list", "--model", model]);
    assertEquals(l.code, 0, l.stderr);
    for (const n of ["layer4.1.relu_1", "layer2.0.downsample.0", "fc"]) {
      assert(l.stdout.includes(n), `list shows ${n}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: --labels imagenet is the shipped list of the 1000 ImageNet classes", async () => {
  const names: string[] = JSON.parse(await Deno.readTextFile(BUILTIN_LABELS.imagenet));
  assertEquals(names.length, 1000);
  assertEquals([names[0], names[281], names[999]], ["tench", "tabby", "toilet tissue"]);
  assertEquals(new Set(names).size, 1000, "names are distinct");
});

Deno.test("CLI: the built-in shapes model says once that it knows only shapes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Two 90x60 pictures (not generated 128x128 scenes).
    const data = new Uint8Array(90 * 60 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 251));
    const png = await encodePng(90, 60, data);
    await Deno.writeFile(`${dir}/a.png`, png);
    await Deno.writeFile(`${dir}/b.png`, png);
    const args = ["explain", `${dir}/a.png`, `${dir}/b.png`, "--backend", "cpu", "-o", `${dir}/o`];
    const r = await gradual(args);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr.split("only the 10 generated shape classes").length, 2, r.stderr);
    assert(r.stderr.includes("--model model.onnx"), r.stderr);
    const q = await gradual([...args, "--quiet"]);
    assertEquals(q.code, 0, q.stderr);
    assertEquals(q.stderr, "");
    // A generated scene does not trigger it.
    const s = await gradual([
      "explain",
      "models/samples/disk_3000000.png",
      "--backend",
      "cpu",
      "-o",
      `${dir}/o`,
    ]);
    assertEquals(s.code, 0, s.stderr);
    assert(!s.stderr.includes("shape classes"), s.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: compare and eval take an .onnx model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = "tests/fixtures/onnx_torchvision/squeezenet1_1.onnx";
    const c = await gradual([
      "compare",
      "models/samples/star_3000004.png",
      "--model",
      model,
      "--backend",
      "cpu",
      "-o",
      dir,
    ]);
    assertEquals(c.code, 0, c.stderr);
    assertEquals(
      [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".compare.png")).length,
      1,
    );
    const e = await gradual([
      "eval",
      "--model",
      model,
      "--n",
      "3",
      "--steps",
      "4",
      "--methods",
      "grad-cam",
      "--extrapolate",
      "none",
      "--backend",
      "cpu",
      "--json",
    ]);
    assertEquals(e.code, 0, e.stderr);
    assert(e.stdout.includes('"grad-cam"'), e.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
