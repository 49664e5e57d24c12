/**
 * The playground's worker: starts the tfjs backend, loads models, decodes images and runs
 * `explainMany` with the same core and plugin modules the CLI uses, so the page's main thread
 * stays free. Bundled to `web/dist/worker.js` by `web/build.ts`; the tfjs wasm binaries are
 * served next to it.
 *
 * @module
 */
/// <reference lib="webworker" />
import * as tf from "@tensorflow/tfjs";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
// Registers the "webgpu" backend.
import "@tensorflow/tfjs-backend-webgpu";
import {
  decodeImageRgba8,
  explainMany,
  type ExplainRequest,
  type Extrapolator,
  initBackend,
  loadGraphModel,
  loadLabels,
  loadLayersModel,
  modelFormat,
  type ModelLike,
  ModelLoadError,
  onnxFromBytes,
  OnnxModel,
  registry,
  resizeRgba8,
  type SaliencyMaps,
  type SaliencyMethod,
  sessionOf,
  toModelInput,
} from "../mod.ts";
import {
  type BackendReport,
  type FromWorker,
  type ModelReport,
  type ModelSource,
  panelTitle,
  type PlaygroundBackend,
  type PlaygroundPreprocess,
  type PluginInfo,
  type ResultReport,
  type TopClass,
  type ToWorker,
} from "./protocol.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(msg, transfer);
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === "object" && "message" in e) return String(e.message);
  return String(e);
}

interface Loaded {
  model: tf.LayersModel | tf.GraphModel | OnnxModel;
  labels: string[];
  preprocess: PlaygroundPreprocess;
  inputSize: [number, number];
}

let backendName = "";
let current: Loaded | null = null;

async function startBackend(backend: PlaygroundBackend, threads?: number): Promise<void> {
  const t0 = performance.now();
  let info: { backend: string; threads: number; simd: boolean };
  let fallbackFrom: string | undefined;
  let fallbackReason: string | undefined;
  if (backend === "wasm") {
    // The .wasm binaries are copied next to this bundle by web/build.ts.
    tfwasm.setWasmPaths(new URL("./", import.meta.url).href);
    info = await initBackend({ backend: "wasm", threads });
  } else if (backend === "cpu") {
    info = await initBackend({ backend: "cpu" });
  } else {
    let reason: string | undefined;
    if (backend === "webgpu" && !(await webgpuAdapter())) reason = "no WebGPU adapter found";
    else {
      try {
        if (!(await tf.setBackend(backend))) reason = `${backend} did not start`;
        else await tf.ready();
      } catch (e) {
        reason = errorText(e);
      }
    }
    if (reason === undefined) {
      info = { backend: tf.getBackend(), threads: 1, simd: false };
    } else {
      // Not usable here after all: run on wasm and say so.
      fallbackFrom = backend;
      fallbackReason = reason;
      tfwasm.setWasmPaths(new URL("./", import.meta.url).href);
      info = await initBackend({ backend: "wasm", threads });
    }
  }
  backendName = info.backend;
  const list = (ps: (SaliencyMethod | Extrapolator)[]): PluginInfo[] =>
    ps.map((p) => ({
      name: p.name,
      description: p.description,
      usesRules: "usesRules" in p && p.usesRules === true,
    }));
  const report: BackendReport = {
    ...info,
    fallbackFrom,
    fallbackReason,
    crossOriginIsolated: scope.crossOriginIsolated === true,
    ms: performance.now() - t0,
    methods: list(registry.methods()),
    extrapolators: list(registry.extrapolators()),
  };
  post({ type: "ready", info: report });
}

/** Whether this worker's WebGPU has an adapter (tfjs needs one). */
async function webgpuAdapter(): Promise<boolean> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (gpu === undefined) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

/**
 * Loads a model dropped as files: `model.json` and its shards, or an `.onnx` file (and its
 * external data files), and optionally a labels file.
 */
async function loadFromFiles(files: File[]): Promise<{
  model: tf.LayersModel | tf.GraphModel | OnnxModel;
  labels?: string[];
  name: string;
}> {
  const jsons = files.filter((f) => f.name.toLowerCase().endsWith(".json"));
  let modelFile: File | undefined;
  let modelJson: Record<string, unknown> | undefined;
  let labels: string[] | undefined;
  for (const f of jsons) {
    let v: unknown;
    try {
      v = JSON.parse(await f.text());
    } catch (e) {
      throw new ModelLoadError(`${f.name}: invalid JSON (${errorText(e)})`);
    }
    if (v && typeof v === "object" && "modelTopology" in v) {
      modelFile = f;
      modelJson = v as Record<string, unknown>;
    } else {
      // A URL object: loadLabels reads it as a URL, not as a file path.
      const url = URL.createObjectURL(f);
      try {
        labels = await loadLabels(new URL(url));
      } catch (e) {
        throw new ModelLoadError(`${f.name}: ${errorText(e).replace(/^blob:\S+: /, "")}`);
      } finally {
        URL.revokeObjectURL(url);
      }
    }
  }
  const txt = files.find((f) => f.name.toLowerCase().endsWith(".txt"));
  if (labels === undefined && txt) {
    labels = (await txt.text()).split(/\r?\n/).map((l) => l.trim()).filter((l) => l);
  }
  const onnxFile = files.find((f) => f.name.toLowerCase().endsWith(".onnx"));
  if (onnxFile) {
    // A PyTorch export: the other files but labels are its external data.
    const data = new Map<string, Uint8Array>();
    for (const f of files) {
      if (f !== onnxFile && !/\.(json|txt)$/i.test(f.name)) {
        data.set(f.name, new Uint8Array(await f.arrayBuffer()));
      }
    }
    const bytes = new Uint8Array(await onnxFile.arrayBuffer());
    return { model: await onnxFromBytes(bytes, data, onnxFile.name), labels, name: onnxFile.name };
  }
  if (!modelFile || !modelJson) {
    throw new ModelLoadError("no model.json among the dropped files (drop model.json + shards)");
  }
  const byName = new Map(files.map((f) => [f.name, f]));
  const manifest = (modelJson.weightsManifest ?? []) as tf.io.WeightsManifestConfig;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of manifest) {
    for (const p of group.paths) {
      const base = p.split("/").pop() ?? p;
      const f = byName.get(base);
      if (!f) {
        throw new ModelLoadError(`${modelFile.name}: weights shard '${base}' was not dropped`);
      }
      parts.push(new Uint8Array(await f.arrayBuffer()));
    }
    specs.push(...group.weights);
  }
  const data = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  const art: tf.io.ModelArtifacts = {
    modelTopology: modelJson.modelTopology as tf.io.ModelArtifacts["modelTopology"],
    format: modelJson.format as string | undefined,
    weightSpecs: specs,
    weightData: data.buffer,
  };
  const topo = modelJson.modelTopology as Record<string, unknown>;
  const graph = modelJson.format === "graph-model" || "node" in topo;
  try {
    const model = graph
      ? await tf.loadGraphModel(tf.io.fromMemory(art))
      : await tf.loadLayersModel(tf.io.fromMemory(art));
    return { model, labels, name: modelFile.name };
  } catch (e) {
    throw new ModelLoadError(`${modelFile.name}: not a usable tfjs model (${errorText(e)})`);
  }
}

async function loadModel(id: number, source: ModelSource): Promise<void> {
  const t0 = performance.now();
  post({ type: "progress", id, stage: "loading the model", done: 0, total: 1 });
  let model: tf.LayersModel | tf.GraphModel | OnnxModel;
  let labels: string[] | undefined;
  let name: string;
  if (source.kind === "url") {
    const url = new URL(source.modelUrl, scope.location.href).href;
    model = (await modelFormat(url)) === "graph-model"
      ? await loadGraphModel(url)
      : await loadLayersModel(url);
    if (source.labelsUrl) {
      labels = await loadLabels(new URL(source.labelsUrl, scope.location.href).href);
    }
    name = source.name;
  } else {
    ({ model, labels, name } = await loadFromFiles(source.files));
  }
  const session = sessionOf(model);
  const [h, w] = session.inputSize;
  const numClasses = tf.tidy(() => session.predict(tf.zeros([1, h, w, 3]) as tf.Tensor4D).shape[1]);
  if (current) current.model.dispose();
  const names = Array.from({ length: numClasses }, (_, i) => labels?.[i] ?? `class ${i}`);
  current = { model, labels: names, preprocess: source.preprocess, inputSize: [h, w] };
  // Layers a method can work on: those with a spatial [N, h, w, c] output.
  const graph = session.graph;
  const layers = graph.nodes.filter((n) => n.outputShape.length === 4).map((n) => n.name);
  const info: ModelReport = {
    name,
    layers,
    defaultLayer: graph.defaultTargetLayer,
    format: model instanceof tf.GraphModel
      ? "graph-model"
      : model instanceof OnnxModel
      ? "onnx"
      : "layers-model",
    inputSize: [h, w],
    numClasses,
    labels: names,
    preprocess: source.preprocess,
    ms: performance.now() - t0,
  };
  post({ type: "model", id, info });
}

/**
 * Waits for a map's values where the backend runs asynchronously (webgl, webgpu), so that
 * the method's time is its work, not the time to queue it. Always an asynchronous read:
 * WebGPU in browsers allows no synchronous one.
 */
async function settle(maps: tf.Tensor): Promise<void> {
  if (backendName !== "wasm" && backendName !== "cpu") await maps.data();
}

async function runExplain(msg: Extract<ToWorker, { type: "explain" }>): Promise<void> {
  if (!current) throw new Error("no model loaded");
  const { id } = msg;
  const tStart = performance.now();
  const steps = 3 + msg.methods.length * (msg.extrapolator === "none" ? 1 : 2);
  let step = 0;
  const progress = (stage: string) =>
    post({ type: "progress", id, stage, done: step++, total: steps });

  progress("decoding the image");
  const t0 = performance.now();
  const rgba = await decodeImageRgba8(msg.image, msg.name);
  const [h, w] = current.inputSize;
  const input = toModelInput(rgba, w, h, current.preprocess);
  const tDecode = performance.now() - t0;

  const x = tf.tensor4d(input, [1, h, w, 3]);
  try {
    progress("classifying");
    const t1 = performance.now();
    const session = sessionOf(current.model as ModelLike);
    const scores = tf.tidy(() => session.predict(x));
    const probs = tf.tidy(() =>
      session.graph.scoreActivation === "sigmoid" ? tf.sigmoid(scores) : tf.softmax(scores)
    );
    const s = (await scores.data()) as Float32Array;
    const p = (await probs.data()) as Float32Array;
    scores.dispose();
    probs.dispose();
    const top: TopClass[] = Array.from(s, (score, index) => ({
      index,
      label: current!.labels[index],
      score,
      probability: p[index],
    })).sort((a, b) => b.score - a.score).slice(0, 5);
    const tClassify = performance.now() - t1;

    // Each request gets timing wrappers around its method / extrapolator.
    const times: number[] = [];
    const requests: ExplainRequest[] = [];
    const order: { method: string; extrapolator?: string }[] = [];
    for (const name of msg.methods) {
      const exs = msg.extrapolator === "none" ? [undefined] : [undefined, msg.extrapolator];
      for (const exName of exs) {
        const k = order.length;
        order.push({ method: name, extrapolator: exName });
        times.push(0);
        const base = registry.method(name);
        const method = Object.create(base) as {
          -readonly [K in keyof SaliencyMethod]: SaliencyMethod[K];
        };
        method.run = async (ctx) => {
          progress(`running ${panelTitle(name, exName)}`);
          const t = performance.now();
          const made = await base.run.call(base, ctx);
          await settle(made.maps);
          times[k] += performance.now() - t;
          return made;
        };
        let extrapolator: Extrapolator | undefined;
        if (exName !== undefined) {
          const ebase = registry.extrapolator(exName);
          const ex = Object.create(ebase) as {
            -readonly [K in keyof Extrapolator]: Extrapolator[K];
          };
          // refine is synchronous: on webgl / webgpu its time is the time to queue the
          // work (the work itself lands in the shared remainder, read asynchronously).
          ex.refine = (maps, ctx): SaliencyMaps => {
            const t = performance.now();
            const out = ebase.refine.call(ebase, maps, ctx);
            times[k] += performance.now() - t;
            return out;
          };
          extrapolator = ex;
        }
        requests.push({ method: method as SaliencyMethod, extrapolator, layer: msg.layer });
      }
    }
    const target = msg.target === "top1" ? "top1" : msg.target;
    const t2 = performance.now();
    const res = await explainMany(current.model as ModelLike, x, requests, {
      targets: target,
      labels: current.labels,
    });
    const tExplain = performance.now() - t2;
    progress("drawing");

    const maps = res.map((r, k) => {
      const e = r[0];
      return {
        method: order[k].method,
        extrapolator: order[k].extrapolator,
        title: panelTitle(order[k].method, order[k].extrapolator),
        layer: e.layer,
        map: e.map,
        width: e.width,
        height: e.height,
        ms: times[k],
      };
    });
    const scale = Math.min(1, 512 / Math.max(rgba.width, rgba.height));
    const shown = scale < 1
      ? resizeRgba8(
        rgba,
        Math.max(1, Math.round(rgba.width * scale)),
        Math.max(1, Math.round(rgba.height * scale)),
        { antialias: true },
      )
      : rgba;
    const image = {
      width: shown.width,
      height: shown.height,
      data: new Uint8ClampedArray(shown.data),
    };
    const result: ResultReport = {
      id,
      image,
      original: { width: rgba.width, height: rgba.height },
      top,
      classIndex: res[0]?.[0]?.classIndex ?? top[0].index,
      maps,
      timing: {
        decode: tDecode,
        classify: tClassify,
        explain: tExplain,
        shared: Math.max(0, tExplain - times.reduce((a, b) => a + b, 0)),
        total: performance.now() - tStart,
      },
      backend: backendName,
    };
    post({ type: "progress", id, stage: "done", done: steps, total: steps });
    post({ type: "result", result }, [image.data.buffer, ...maps.map((m) => m.map.buffer)]);
  } finally {
    x.dispose();
  }
}

function resourceUrls(): string[] {
  return performance.getEntriesByType("resource").map((e) => e.name);
}

let queue: Promise<void> = Promise.resolve();

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  // One message at a time, in order.
  queue = queue.then(async () => {
    try {
      if (msg.type === "init") await startBackend(msg.backend, msg.threads);
      else if (msg.type === "load-model") await loadModel(msg.id, msg.source);
      else if (msg.type === "explain") await runExplain(msg);
      post({ type: "resources", urls: resourceUrls() });
    } catch (e) {
      post({
        type: "error",
        id: "id" in msg ? msg.id : undefined,
        message: errorText(e),
        backend: backendName,
        stage: msg.type,
      });
    }
  });
};
