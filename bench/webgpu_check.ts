/**
 * WebGPU check for GPU machines: the same maps on `webgpu` and on `wasm`, their largest
 * difference, and the time per image of each, for VGG16 at 224 × 224 (seeded weights, as
 * the benchmark) and the built-in `shapes-vgg` (128 × 128); then the forward throughput at
 * batch 32 and a small `evaluate` (8 held-out scenes, deletion / insertion included) on both
 * backends, the work a GPU speeds up most.
 *
 * Without a WebGPU adapter it prints one line starting with `webgpu_check: no adapter` and
 * exits with status 2, before any other work.
 *
 * ```sh
 * npx -y deno@2 task webgpu-check            # everything (a few minutes at most)
 * deno task webgpu-check --models shapes-vgg --reps 1 --no-eval
 * ```
 *
 * Options: `--models vgg16,shapes-vgg` (also `vgg_tiny`, the test fixture), `--reps N`
 * timed runs per method after one warm-up (default 3), `--threads N` for wasm (default: all
 * cores, at most 8), `--no-eval`, `--json FILE` to write the numbers.
 *
 * @module
 */
import { type BackendInfo, exitProcess, initBackend } from "../backend/mod.ts";
import { explainMany, type ExplainRequest, sessionOf } from "../core/explain.ts";
import { preprocess } from "../io/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { type LayersModel, tf } from "../core/tensor.ts";
import "../plugins/mod.ts";
import { type Arch, buildArchModel } from "../conformance/arch_model.ts";
import { heldOutScenes } from "../cli/eval.ts";
import { type EvalResult, evaluate } from "../metrics/evaluate.ts";
import { builtinModel } from "../models/builtin.ts";
import { generateScene } from "../models/scenes.ts";
import { median } from "./_timing.ts";

/** The methods compared (one or two per family; Score-CAM is left out: 512 passes on VGG16). */
const REQUESTS: readonly ExplainRequest[] = [
  { method: "grad-cam" },
  { method: "grad-cam", extrapolator: "gradual" },
  { method: "contrastive-excitation-backprop" },
  { method: "gradient" },
  { method: "integrated-gradients" },
];

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const MODELS = (arg("models") ?? "vgg16,shapes-vgg").split(",");
const REPS = Number(arg("reps") ?? "3");
const THREADS = arg("threads") ? Number(arg("threads")) : undefined;
const EVAL = !Deno.args.includes("--no-eval");

/** One method on one backend: its maps (batch of 1) and median time. */
interface MethodRun {
  name: string;
  map: Float32Array;
  ms: number;
}

/** Everything measured on one backend. */
interface BackendRun {
  info: BackendInfo;
  models: Record<string, { methods: MethodRun[]; forwardPerSecond: number }>;
  eval?: EvalResult;
}

async function buildModel(name: string): Promise<{ model: LayersModel; input: tf.Tensor4D }> {
  if (name === "vgg16") {
    const url = new URL("../tests/fixtures/models/vgg16/arch.json", import.meta.url);
    const model = buildArchModel(JSON.parse(await Deno.readTextFile(url)) as Arch);
    return { model, input: sceneInput(224, "imagenet") };
  }
  if (name === "vgg_tiny") {
    const url = new URL("../tests/fixtures/models/vgg_tiny/tfjs/model.json", import.meta.url);
    return { model: await loadLayersModel(url), input: sceneInput(64, "imagenet") };
  }
  const b = builtinModel(name);
  const model = await loadLayersModel(b.modelUrl);
  const [, h] = model.inputs[0].shape as number[];
  return { model, input: sceneInput(h, b.preprocess) };
}

/** A generated scene at `size`, preprocessed: the same input on every backend. */
function sceneInput(size: number, preset: "imagenet" | "unit"): tf.Tensor4D {
  const s = generateScene(4_000_000, { size });
  const x = preprocess({ width: size, height: size, data: s.image }, preset);
  return tf.tensor4d(x, [1, size, size, 3]);
}

const label = (r: ExplainRequest): string =>
  `${r.method}${r.extrapolator ? `+${r.extrapolator}` : ""}`;

async function runBackend(backend: "wasm" | "webgpu"): Promise<BackendRun> {
  const info = await initBackend({ backend, threads: THREADS });
  const out: BackendRun = { info, models: {} };
  for (const name of MODELS) {
    const { model, input } = await buildModel(name);
    const methods: MethodRun[] = [];
    for (const r of REQUESTS) {
      const once = async (): Promise<Float32Array> =>
        (await explainMany(model, input, [r]))[0][0].map;
      const map = await once(); // warm-up (shader compilation on webgpu)
      const times: number[] = [];
      for (let k = 0; k < REPS; k++) {
        const t0 = performance.now();
        await once();
        times.push(performance.now() - t0);
      }
      methods.push({ name: label(r), map, ms: median(times) });
    }
    // Forward throughput at batch 32 (what deletion / insertion scoring does).
    const [h, w] = sessionOf(model).inputSize;
    const batch = tf.tile(input, [32, 1, 1, 1]) as tf.Tensor4D;
    const fwd = async (): Promise<void> => {
      const y = sessionOf(model).predict(batch);
      await y.data();
      y.dispose();
    };
    await fwd();
    const t0 = performance.now();
    for (let k = 0; k < Math.max(1, REPS - 1); k++) await fwd();
    const perSecond = 32 * Math.max(1, REPS - 1) / ((performance.now() - t0) / 1000);
    batch.dispose();
    input.dispose();
    model.dispose();
    out.models[name] = { methods, forwardPerSecond: perSecond };
    console.error(`webgpu_check: ${backend} ${name} (${h}×${w}) done`);
  }
  if (EVAL) {
    const b = builtinModel("shapes-vgg");
    const model = await loadLayersModel(b.modelUrl);
    const [, h] = model.inputs[0].shape as number[];
    out.eval = await evaluate({
      model,
      samples: heldOutScenes(8, 0, h, b.preprocess),
      methods: ["grad-cam"],
      extrapolators: ["none", "gradual"],
    });
    model.dispose();
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return a.length === b.length ? d : Infinity;
}

/**
 * Runs the check with the command-line options; returns the exit status (0 ok, 1 webgpu
 * failed, 2 no adapter).
 *
 * @returns the exit status
 */
export async function main(): Promise<number> {
  // The adapter first: without one, say so before any other work.
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (!adapter) {
    console.log(
      "webgpu_check: no adapter (no WebGPU adapter found: no GPU, or no Vulkan driver on Linux)",
    );
    return 2;
  }
  const wasmRun = await runBackend("wasm");
  let gpuRun: BackendRun;
  try {
    gpuRun = await runBackend("webgpu");
  } catch (e) {
    console.log(`webgpu_check: webgpu failed: ${(e as Error).message.split("\n")[0]}`);
    return 1;
  }
  console.log(
    `webgpu_check: webgpu on ${gpuRun.info.adapter}; wasm with ${wasmRun.info.threads} thread(s)` +
      `${wasmRun.info.simd ? ", SIMD" : ""}; median of ${REPS} run(s) after a warm-up`,
  );
  console.log(
    "\n| model | method | wasm ms/image | webgpu ms/image | max abs diff (maps in [0, 1]) |",
  );
  console.log("|---|---|--:|--:|--:|");
  const rows: unknown[] = [];
  for (const name of MODELS) {
    const a = wasmRun.models[name], g = gpuRun.models[name];
    a.methods.forEach((m, i) => {
      const d = maxDiff(m.map, g.methods[i].map);
      rows.push({
        model: name,
        method: m.name,
        wasmMs: m.ms,
        webgpuMs: g.methods[i].ms,
        maxDiff: d,
      });
      console.log(
        `| ${name} | ${m.name} | ${m.ms.toFixed(1)} | ${g.methods[i].ms.toFixed(1)} | ${
          d.toExponential(2)
        } |`,
      );
    });
    console.log(
      `| ${name} | forward, batch 32 (images/s) | ${a.forwardPerSecond.toFixed(1)} | ${
        g.forwardPerSecond.toFixed(1)
      } | |`,
    );
  }
  if (wasmRun.eval && gpuRun.eval) {
    const we = wasmRun.eval, ge = gpuRun.eval;
    let d = 0;
    we.rows.forEach((r, i) => {
      for (const k of ["pointing", "energy", "deletion", "insertion"] as const) {
        d = Math.max(d, Math.abs(r[k].mean - ge.rows[i][k].mean));
      }
    });
    const rate = (e: EvalResult) => (e.curveWork.scored / e.curveWork.seconds).toFixed(0);
    console.log(
      `\neval, shapes-vgg, 8 scenes, grad-cam ± gradual: deletion/insertion ${
        rate(we)
      } images/s on wasm, ${rate(ge)} on webgpu; whole eval ${we.seconds.toFixed(1)} s vs ${
        ge.seconds.toFixed(1)
      } s; max |difference| of the metric means ${d.toExponential(2)}`,
    );
  }
  const json = arg("json");
  if (json) {
    await Deno.writeTextFile(
      json,
      JSON.stringify({ wasm: wasmRun.info, webgpu: gpuRun.info, rows }, null, 2),
    );
  }
  return 0;
}

if (import.meta.main) exitProcess(await main());
