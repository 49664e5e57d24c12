/**
 * Backend setup for gradual: TensorFlow.js on the WASM backend (SIMD, and
 * multi-threaded where the runtime allows it) or on the plain cpu backend.
 *
 * Importing this module also registers the extra wasm kernels gradual needs
 * (Conv2DBackpropFilter, depthwise backprop kernels and a corrected
 * MaxPoolGrad), so that tf.layers models can be trained on wasm.
 *
 * **Threads keep the process alive.** With more than one wasm thread, the
 * emscripten pthread pool workers keep the event loop running after the
 * program's work is done. End such programs with {@link exitProcess} (or
 * `Deno.exit()` / `process.exit()`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./_wasm_kernels.ts";
import { setWinograd, type WinogradMode } from "./ops.ts";

registerWasmKernels();

/** Options for {@link initBackend}. */
export interface BackendOptions {
  /**
   * Backend to use; default `"wasm"`. `"webgpu"` needs a WebGPU adapter (`navigator.gpu`;
   * on Linux Deno needs a Vulkan driver) and fails with "no WebGPU adapter found" otherwise.
   */
  backend?: "wasm" | "cpu" | "webgpu";
  /**
   * Number of wasm threads. Default: all logical cores
   * (`navigator.hardwareConcurrency` or `os.cpus().length`), capped at 8.
   * `1` means single-threaded. Fixed once the wasm backend has started.
   */
  threads?: number;
  /**
   * When 3x3 convolutions take the Winograd F(4x4, 3x3) path on wasm (see
   * {@linkcode WinogradMode}); when given, the same as calling `setWinograd`. Default `"off"`
   * (exact: every convolution direct).
   */
  winograd?: WinogradMode;
}

/** What {@link initBackend} actually set up. */
export interface BackendInfo {
  /** Active tfjs backend name (`"wasm"` or `"cpu"`). */
  backend: string;
  /** Threads in use (from `getThreadsCount()` on wasm; 1 on cpu). */
  threads: number;
  /** Whether the wasm SIMD binary is in use (false on cpu). */
  simd: boolean;
  /** On webgpu: the adapter's description (and whether it is a software fallback). */
  adapter?: string;
}

const MAX_THREADS = 8;

interface RuntimeGlobals {
  Deno?: { exit(code?: number): never };
  process?: { versions?: { node?: string }; exit(code?: number): never };
  navigator?: { hardwareConcurrency?: number };
}

const G = globalThis as unknown as RuntimeGlobals;

function isDeno(): boolean {
  return typeof G.Deno?.exit === "function";
}

function isServerRuntime(): boolean {
  return isDeno() || typeof G.process?.versions?.node === "string";
}

let wasmInfo: BackendInfo | null = null;
let wasmRequested = -1;
let pending: Promise<BackendInfo> | null = null;

/** Logical core count, capped at {@link MAX_THREADS}. */
async function defaultThreads(): Promise<number> {
  let n = G.navigator?.hardwareConcurrency ?? 0;
  if (!(n > 0) && isServerRuntime()) {
    try {
      const os = await import("node:os");
      n = os.cpus().length;
    } catch {
      n = 1;
    }
  }
  return Math.max(1, Math.min(MAX_THREADS, Math.floor(n) || 1));
}

interface NodeRequire {
  (id: string): unknown;
  resolve(id: string): string;
}

type WorkerCtor = new (
  src: string,
  opts?: Record<string, unknown>,
) => { postMessage(msg: unknown, transfer?: unknown): void };

/**
 * Patches Node's `worker_threads.Worker` and `os.cpus` (as seen by the
 * emscripten glue of tfjs-backend-wasm 4.22) so that the threaded SIMD build
 * can start its pthread pool under Deno / Node. Returns the undo function;
 * call it once the backend has initialised.
 */
async function patchNodeForThreads(n: number): Promise<() => void> {
  const { createRequire } = await import("node:module");
  const require = createRequire(import.meta.url) as unknown as NodeRequire;
  const path = require("node:path") as { dirname(p: string): string; join(...p: string[]): string };
  const os = require("node:os") as { cpus: () => unknown[] };
  const wt = require("node:worker_threads") as { Worker: WorkerCtor };
  const dir = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const mainJs = path.join(dir, "wasm-out/tfjs-backend-wasm-threaded-simd.js");
  const workerMod = require(
    path.join(dir, "wasm-out/tfjs-backend-wasm-threaded-simd.worker.js"),
  ) as { wasmWorkerContents?: unknown };
  const contents = workerMod.wasmWorkerContents;
  if (typeof contents !== "string") throw new Error("wasm worker source not found");
  // Deno: worker globals `self`/`location` are getter-only; emscripten assigns them.
  const shim = isDeno()
    ? '["self","location","Worker","importScripts","postMessage","performance","require",' +
      '"Module"].forEach(k=>{try{Object.defineProperty(globalThis,k,{value:globalThis[k],' +
      "writable:true,configurable:true,enumerable:true})}catch(e){}});"
    : "";
  const src = '"use strict";' + shim + contents.replace(/\n/g, "\\n").replace(/^"use strict";/, "");
  // Fail here (-> 1-thread fallback) rather than in 8 workers, which would end the process.
  new Function(src);
  const OrigWorker = wt.Worker;
  const origCpus = os.cpus;
  const g = globalThis as Record<string, unknown>;
  const hadGlobalWorker = Object.prototype.hasOwnProperty.call(g, "Worker");
  const origGlobalWorker = g.Worker;
  class PthreadWorker extends OrigWorker {
    constructor(_url: unknown, opts: Record<string, unknown> = {}) {
      super(src, { ...opts, eval: true });
    }
    override postMessage(msg: unknown, transfer?: unknown): void {
      const m = msg as Record<string, unknown> | null;
      // The blob tfjs sends holds a rollup-mangled factory; load the pristine glue.
      const out = m != null && m.cmd === "load" ? { ...m, urlOrBlob: mainJs } : msg;
      super.postMessage(out, transfer);
    }
  }
  wt.Worker = PthreadWorker;
  // backend.cc caps threads at logical_cores / 2.
  os.cpus = () =>
    Array.from({ length: 2 * n }, () => ({
      model: "",
      speed: 0,
      times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 },
    }));
  return () => {
    wt.Worker = OrigWorker;
    os.cpus = origCpus;
    if (hadGlobalWorker) g.Worker = origGlobalWorker;
    else delete g.Worker;
  };
}

/** Longest wait for a threaded wasm start (a stuck pthread pool never resolves). */
const THREADED_INIT_TIMEOUT_MS = 30_000;

async function startWasm(threads: number): Promise<boolean> {
  wasm.setThreadsCount(threads);
  // Deno/Node report no thread support (IS_NODE); browsers keep their own detection.
  if (threads <= 1) tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  else if (isServerRuntime()) tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  let restore: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (threads > 1 && isServerRuntime()) restore = await patchNodeForThreads(threads);
    const started = tf.setBackend("wasm");
    const ok = threads > 1
      ? await Promise.race([
        started,
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), THREADED_INIT_TIMEOUT_MS);
        }),
      ])
      : await started;
    return ok && tf.getBackend() === "wasm";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    restore?.();
  }
}

async function simdInUse(): Promise<boolean> {
  try {
    return (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
  } catch {
    return false;
  }
}

async function initWasm(requested: number): Promise<BackendInfo> {
  if (wasmInfo != null) {
    // Threads are fixed once the wasm backend has started.
    if (tf.getBackend() !== "wasm") await tf.setBackend("wasm");
    return wasmInfo;
  }
  let ok = false;
  if (requested > 1) ok = await startWasm(requested);
  if (!ok) {
    // Single-threaded fallback (or the requested setting).
    ok = await startWasm(1);
  }
  if (!ok) throw new Error("initBackend: the wasm backend failed to initialise");
  wasmRequested = requested;
  wasmInfo = { backend: "wasm", threads: wasm.getThreadsCount(), simd: await simdInUse() };
  return wasmInfo;
}

/** Error of {@link initBackend} when WebGPU has no adapter here. */
export class NoWebGpuAdapterError extends Error {
  /** Creates the error.
   * @param detail what was missing
   */
  constructor(detail: string) {
    super(`no WebGPU adapter found (${detail})`);
    this.name = "NoWebGpuAdapterError";
  }
}

interface GpuLike {
  requestAdapter(o?: { powerPreference?: string }): Promise<
    { info?: { description?: string }; isFallbackAdapter?: boolean } | null
  >;
}

async function initWebGpu(): Promise<BackendInfo> {
  const gpu = (globalThis as unknown as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (gpu === undefined) throw new NoWebGpuAdapterError("this runtime has no navigator.gpu");
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" }).catch(
    () => null,
  );
  if (adapter === null) {
    throw new NoWebGpuAdapterError(
      "no GPU, or no driver for it: on Linux WebGPU needs a Vulkan driver",
    );
  }
  // Loaded only when asked for: it registers the "webgpu" backend.
  await import("@tensorflow/tfjs-backend-webgpu");
  let ok = false;
  try {
    ok = await tf.setBackend("webgpu");
  } catch {
    ok = false;
  }
  if (!ok) throw new NoWebGpuAdapterError("the tfjs webgpu backend did not start on it");
  await tf.ready();
  return {
    backend: "webgpu",
    threads: 1,
    simd: false,
    adapter: (adapter.info?.description || "unnamed adapter") +
      (adapter.isFallbackAdapter ? " (software fallback)" : ""),
  };
}

/**
 * Selects and initialises the tfjs backend. Idempotent: a second call with
 * the same settings returns the cached info.
 *
 * On `"wasm"` it uses the SIMD build and, with `threads > 1`, the threaded
 * SIMD build (under Deno/Node via a small patch of the emscripten worker
 * setup). If thread setup fails for any reason it falls back to one thread;
 * `threads` in the result is the count actually in use. **The thread count is
 * fixed once the wasm backend has started**: a later call asking for a
 * different count returns the current info unchanged.
 *
 * With threads > 1 the pool workers keep the process alive: end the program
 * with {@link exitProcess}.
 *
 * @param opts backend (`"wasm"` default, or `"cpu"`) and thread count.
 * @returns the backend, thread count and SIMD use actually in effect.
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  while (pending != null) await pending.catch(() => undefined);
  if (opts.winograd !== undefined) setWinograd(opts.winograd);
  const backend = opts.backend ?? "wasm";
  const run = async (): Promise<BackendInfo> => {
    if (backend === "webgpu") return await initWebGpu();
    if (backend === "cpu") {
      if (tf.getBackend() !== "cpu" && !(await tf.setBackend("cpu"))) {
        throw new Error("initBackend: the cpu backend failed to initialise");
      }
      await tf.ready();
      return { backend: "cpu", threads: 1, simd: false };
    }
    const requested = opts.threads != null && opts.threads >= 1
      ? Math.min(MAX_THREADS, Math.floor(opts.threads))
      : await defaultThreads();
    return await initWasm(wasmInfo != null ? wasmRequested : requested);
  };
  pending = run();
  try {
    return { ...(await pending) };
  } finally {
    pending = null;
  }
}

/**
 * Ends the process with `code` (Deno.exit or process.exit). Needed after
 * {@link initBackend} with threads > 1, whose pool workers keep the process
 * alive.
 *
 * @param code exit status.
 */
export function exitProcess(code: number): never {
  if (G.Deno != null) G.Deno.exit(code);
  if (G.process != null) G.process.exit(code);
  throw new Error(`exitProcess(${code}): no Deno or process in this runtime`);
}
