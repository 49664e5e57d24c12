/**
 * Benchmark worker (one process per model and thread count; started by `bench/bench.ts`).
 *
 * Threads are fixed per process, so the driver starts one long-lived worker per variant
 * and sends it one command per line on stdin; every answer is one JSON line on stdout,
 * prefixed with `@@`. Only one worker computes at a time, so calls of different variants
 * can be interleaved without competing for the cores.
 *
 * Commands (`{"cmd": ...}`):
 * - `init`: builds the model (VGG16 from `tests/fixtures/models/vgg16/arch.json` with its
 *   portable weights, or the built-in `shapes-resnet`) and answers with the thread count,
 *   build time, the operations available, the logits of the shared bench input and the RSS
 *   and peak RSS so far.
 * - `run` (`op`, `batch`): one timed call; answers wall and cpu time, forward / backward
 *   pass counts, tf.memory() and RSS figures.
 * - `profile` (`op`, `batch`): one call under `tf.profile`; answers per-kernel times.
 * - `exit`.
 *
 * Usage: `deno run --allow-read bench/_worker.ts --model vgg16 --threads 1 [--winograd auto]`
 *
 * @module
 */
import process from "node:process";
import { exitProcess, initBackend, type WinogradMode } from "../backend/mod.ts";
import { explain } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { registry } from "../core/registry.ts";
import { ForwardPass, ModelSession } from "../core/session.ts";
import { tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import "../plugins/mod.ts";
import { type Arch, buildArchModel, lowbias32 } from "../conformance/arch_model.ts";
import { builtinModel } from "../models/builtin.ts";

/** The operations the benchmark times. */
export const OPS = ["fwd", "gradcam", "gradual-gradcam", "ceb", "gradual-ceb"] as const;

/** One benchmarked operation. */
export type OpName = typeof OPS[number];

/** Answer to `run`. */
export interface RunResult {
  /** Wall time of the call in ms. */
  wallMs: number;
  /** Process CPU time (all threads) during the call in ms. */
  cpuMs: number;
  /** `ModelSession.forward` calls during the call. */
  forwards: number;
  /** `ForwardPass.backward` calls during the call. */
  backwards: number;
  /** tf.memory().numTensors before the call. */
  tensorsBefore: number;
  /** tf.memory().numTensors after the call. */
  tensorsAfter: number;
  /** tf.memory().numBytes after the call. */
  bytesAfter: number;
  /** Resident set size after the call (MiB). */
  rssMiB: number;
  /** Peak RSS of the process so far (MiB; getrusage maxrss, includes the model build). */
  peakRssMiB: number;
}

/** Per-kernel time under `tf.profile`. */
export interface KernelTime {
  /** Kernel name (e.g. `Conv2D`). */
  name: string;
  /** Summed kernel time (ms). */
  ms: number;
  /** Number of calls. */
  calls: number;
}

/** Seed of the shared benchmark input (the Python side uses the same one). */
export const INPUT_KEY = 0x5eed1234;

/**
 * The deterministic benchmark input `[batch, h, w, 3]` (NHWC, row-major index i):
 * `v = ((lowbias32(lowbias32(i) ^ INPUT_KEY) >>> 8) + 0.5) / 2^23 - 1` in (-1, 1), then
 * `2 v` (normalised-image range) or `(v + 1) / 2` (unit range). Image k of a batch is the
 * same for every batch size.
 */
export function benchInput(
  batch: number,
  h: number,
  w: number,
  unit: boolean,
): tf.Tensor4D {
  const n = batch * h * w * 3;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = ((lowbias32(lowbias32(i) ^ INPUT_KEY) >>> 8) + 0.5) / 8388608 - 1;
    data[i] = unit ? (v + 1) / 2 : 2 * v;
  }
  return tf.tensor4d(data, [batch, h, w, 3]);
}

/** Current resident set size (MiB). */
export function rssMiB(): number {
  return Deno.memoryUsage().rss / 1048576;
}

/** Peak resident set size of this process so far (MiB; getrusage maxrss). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

// Pass counting: wrap the executor's two entry points.
const counts = { forwards: 0, backwards: 0 };
const origForward = ModelSession.prototype.forward;
ModelSession.prototype.forward = function (this: ModelSession, ...a) {
  counts.forwards++;
  return origForward.apply(this, a);
};
const origBackward = ForwardPass.prototype.backward;
ForwardPass.prototype.backward = function (this: ForwardPass, ...a) {
  counts.backwards++;
  return origBackward.apply(this, a);
};

/** The c-EB method: registered, else from the plugin file if it exists, else undefined. */
async function findCeb(): Promise<{ method?: SaliencyMethod; note: string }> {
  try {
    return { method: registry.method("c-eb"), note: "registered" };
  } catch {
    // not registered (yet): try the plugin module directly
  }
  const url = new URL("../plugins/excitation_backprop.ts", import.meta.url);
  try {
    const mod = await import(url.href);
    const m = mod.contrastiveExcitationBackprop as SaliencyMethod | undefined;
    if (m?.kind === "method") {
      return { method: m, note: "loaded from plugins/excitation_backprop.ts" };
    }
    return { note: "plugins/excitation_backprop.ts has no contrastiveExcitationBackprop export" };
  } catch (e) {
    return { note: `c-eb unavailable: ${(e as Error).message.split("\n")[0]}` };
  }
}

interface State {
  session: ModelSession;
  size: [number, number];
  unit: boolean;
  camLayer: string;
  ceb?: SaliencyMethod;
  inputs: Map<number, tf.Tensor4D>;
}

function inputFor(st: State, batch: number): tf.Tensor4D {
  let x = st.inputs.get(batch);
  if (!x) {
    x = benchInput(batch, st.size[0], st.size[1], st.unit);
    st.inputs.set(batch, x);
  }
  return x;
}

async function runOp(st: State, op: OpName, x: tf.Tensor4D): Promise<void> {
  const gc = registry.method("grad-cam");
  switch (op) {
    case "fwd": {
      const pass = st.session.forward(x);
      pass.scores.dataSync();
      pass.dispose();
      return;
    }
    case "gradcam":
    case "gradual-gradcam":
      await explain(st.session, x, {
        method: gc,
        layer: st.camLayer,
        extrapolator: op === "gradual-gradcam" ? "gradual" : undefined,
      });
      return;
    case "ceb":
    case "gradual-ceb":
      if (!st.ceb) throw new Error("c-eb is not available");
      await explain(st.session, x, {
        method: st.ceb,
        extrapolator: op === "gradual-ceb" ? "gradual" : undefined,
      });
      return;
  }
}

async function init(
  model: string,
  threads: number,
  winograd: WinogradMode,
): Promise<[State, Record<string, unknown>]> {
  const t0 = performance.now();
  const info = await initBackend({ backend: "wasm", threads, winograd });
  let lm: tf.LayersModel;
  let size: [number, number];
  let unit: boolean;
  let camLayer: string;
  if (model === "vgg16") {
    const url = new URL("../tests/fixtures/models/vgg16/arch.json", import.meta.url);
    lm = buildArchModel(JSON.parse(Deno.readTextFileSync(url)) as Arch);
    size = [224, 224];
    unit = false;
    camLayer = "features_29"; // the ReLU after features_28 (TorchRay's result at features.28)
  } else {
    const b = builtinModel(model);
    lm = await loadLayersModel(b.modelUrl);
    size = b.inputSize;
    unit = b.preprocess === "unit";
    camLayer = "";
  }
  const session = new ModelSession(lm);
  if (!camLayer) camLayer = session.graph.defaultTargetLayer ?? "";
  const ceb = await findCeb();
  const st: State = { session, size, unit, camLayer, ceb: ceb.method, inputs: new Map() };
  const buildMs = performance.now() - t0;
  const x = inputFor(st, 1);
  const logits = st.session.predict(x);
  const row = Array.from(logits.dataSync());
  logits.dispose();
  const cebLayer = ceb.method?.defaultLayer(session.graph, {});
  return [st, {
    threads: info.threads,
    simd: info.simd,
    buildMs,
    camLayer,
    cebLayer: cebLayer ?? null,
    cebNote: ceb.note,
    ops: OPS.filter((o) => !o.includes("ceb") || ceb.method !== undefined),
    logits0: row,
    argmax0: row.indexOf(Math.max(...row)),
    rssMiB: rssMiB(),
    peakRssMiB: peakRssMiB(),
  }];
}

async function run(st: State, op: OpName, batch: number): Promise<RunResult> {
  const x = inputFor(st, batch);
  const tensorsBefore = tf.memory().numTensors;
  counts.forwards = 0;
  counts.backwards = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await runOp(st, op, x);
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const mem = tf.memory();
  return {
    wallMs,
    cpuMs: (c.user + c.system) / 1000,
    forwards: counts.forwards,
    backwards: counts.backwards,
    tensorsBefore,
    tensorsAfter: mem.numTensors,
    bytesAfter: mem.numBytes,
    rssMiB: rssMiB(),
    peakRssMiB: peakRssMiB(),
  };
}

async function profile(st: State, op: OpName, batch: number): Promise<Record<string, unknown>> {
  const x = inputFor(st, batch);
  const t0 = performance.now();
  const p = await tf.profile(() => runOp(st, op, x));
  const wallMs = performance.now() - t0;
  const by = new Map<string, KernelTime>();
  const byShape = new Map<string, KernelTime>();
  for (const k of p.kernels) {
    const ms = Number(k.kernelTimeMs) || 0;
    const a = by.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
    a.ms += ms;
    a.calls++;
    by.set(k.name, a);
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const b = byShape.get(key) ?? { name: key, ms: 0, calls: 0 };
    b.ms += ms;
    b.calls++;
    byShape.set(key, b);
  }
  const top = (m: Map<string, KernelTime>, n: number) =>
    [...m.values()].sort((a, b) => b.ms - a.ms).slice(0, n).map((k) => ({
      ...k,
      ms: Math.round(k.ms * 10) / 10,
    }));
  return {
    wallMs,
    kernelMs: [...by.values()].reduce((s, k) => s + k.ms, 0),
    kernels: p.kernels.length,
    peakBytes: p.peakBytes,
    newBytes: p.newBytes,
    newTensors: p.newTensors,
    byKernel: top(by, 12),
    byKernelShape: top(byShape, 12),
  };
}

async function main(): Promise<void> {
  const arg = (k: string, d: string) => {
    const i = Deno.args.indexOf(k);
    return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : d;
  };
  const model = arg("--model", "vgg16");
  const threads = Number(arg("--threads", "1"));
  const winograd = arg("--winograd", "off") as WinogradMode;
  let st: State | undefined;
  const say = (o: unknown) => console.log("@@" + JSON.stringify(o));
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buf = "";
  for await (const chunk of lines) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const cmd = JSON.parse(line) as { cmd: string; op?: OpName; batch?: number };
      try {
        if (cmd.cmd === "exit") {
          if (st) { for (const x of st.inputs.values()) x.dispose(); }
          say({ ok: true, peakRssMiB: peakRssMiB() });
          exitProcess(0);
        } else if (cmd.cmd === "init") {
          const [s, info] = await init(model, threads, winograd);
          st = s;
          say({ ok: true, ...info });
        } else if (!st) {
          say({ ok: false, error: "not initialised" });
        } else if (cmd.cmd === "run") {
          say({ ok: true, ...(await run(st, cmd.op!, cmd.batch ?? 1)) });
        } else if (cmd.cmd === "profile") {
          say({ ok: true, ...(await profile(st, cmd.op!, cmd.batch ?? 1)) });
        } else {
          say({ ok: false, error: `unknown command ${cmd.cmd}` });
        }
      } catch (e) {
        say({ ok: false, error: (e as Error).message.split("\n")[0] });
      }
    }
  }
  exitProcess(0);
}

if (import.meta.main) await main();
