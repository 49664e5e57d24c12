/**
 * The playground page: controls, drag and drop, drawing the maps side by side (as in the
 * paper's figure) with the same renderer the CLI uses (`render/compose.ts`), and the PNG
 * download. All computing happens in `web/worker.ts`.
 *
 * URL parameters preset the controls: `backend`, `threads`, `model`, `sample`, `methods`
 * (comma-separated), `extrapolator`, `layer`, `colormap`, `opacity` (0..1). A `backend`
 * this browser does not offer is still tried, and the page says why it fell back to wasm.
 *
 * Status, errors and the buttons sit in a sticky header; results dim while work is under
 * way or when they no longer match the input (a failed image), and Cancel stops the worker.
 *
 * For tests, the page's state is readable as `globalThis.gradualPlayground`
 * ({@linkcode PlaygroundState}).
 *
 * @module
 */
/// <reference lib="dom" />
import { encodePng, type Rgba8Image } from "../io/mod.ts";
import { COLORMAPS } from "../render/colormap.ts";
import { figure, overlay } from "../render/compose.ts";
import {
  type BackendReport,
  type Catalog,
  type CatalogModel,
  type FromWorker,
  type ModelReport,
  type ModelSource,
  type PlaygroundBackend,
  type PlaygroundPreprocess,
  PRETTY_NAMES,
  type ResultReport,
  type ToWorker,
} from "./protocol.ts";

/** What the page exposes as `globalThis.gradualPlayground` (read by the browser test). */
export interface PlaygroundState {
  /** `starting`, `busy`, `done` (a result is shown) , `idle` or `error`. */
  state: string;
  /** The running backend. */
  backend: BackendReport | null;
  /** The loaded model. */
  model: ModelReport | null;
  /** The last result shown. */
  result: ResultReport | null;
  /** URLs the worker fetched (its resource timing entries). */
  workerResources: string[];
  /** The last error message. */
  error: string | null;
  /** The notice shown above the page (backend fallback), if any. */
  notice: string | null;
  /** The file name the Download button would use, or null when it is disabled. */
  downloadName: string | null;
  /** Explain times per backend, ms (the first run on a backend included). */
  backendTimes: Record<string, number[]>;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const ui = {
  model: $<HTMLSelectElement>("model"),
  modelFiles: $<HTMLInputElement>("model-files"),
  modelDrop: $<HTMLElement>("model-drop"),
  preprocess: $<HTMLSelectElement>("preprocess"),
  modelInfo: $<HTMLElement>("model-info"),
  backend: $<HTMLSelectElement>("backend"),
  badge: $<HTMLElement>("backend-badge"),
  samples: $<HTMLElement>("samples"),
  imageFile: $<HTMLInputElement>("image-file"),
  imageDrop: $<HTMLElement>("image-drop"),
  methods: $<HTMLElement>("methods"),
  extrapolator: $<HTMLSelectElement>("extrapolator"),
  target: $<HTMLSelectElement>("target"),
  colormap: $<HTMLSelectElement>("colormap"),
  opacity: $<HTMLInputElement>("opacity"),
  opacityValue: $<HTMLOutputElement>("opacity-value"),
  run: $<HTMLButtonElement>("run"),
  cancel: $<HTMLButtonElement>("cancel"),
  download: $<HTMLButtonElement>("download"),
  notice: $<HTMLElement>("notice"),
  backendNote: $<HTMLElement>("backend-note"),
  modelNote: $<HTMLElement>("model-note"),
  layer: $<HTMLSelectElement>("layer"),
  main: document.querySelector("main") as HTMLElement,
  progress: $<HTMLProgressElement>("progress"),
  status: $<HTMLElement>("status"),
  figure: $<HTMLElement>("figure"),
  classes: $<HTMLTableElement>("classes"),
  timing: $<HTMLTableElement>("timing"),
};

const params = new URLSearchParams(location.search);
const exposed: PlaygroundState = {
  state: "starting",
  backend: null,
  model: null,
  result: null,
  workerResources: [],
  error: null,
  notice: null,
  downloadName: null,
  backendTimes: {},
};
(globalThis as unknown as { gradualPlayground: PlaygroundState }).gradualPlayground = exposed;

let catalog: Catalog = { models: [], samples: [] };
let worker: Worker | null = null;
let nextId = 1;
let modelRequest = 0;
let explainRequest = 0;
let modelSource: ModelSource | null = null;
let modelName = "";
let image: { bytes: Uint8Array; name: string } | null = null;
let shown: ResultReport | null = null;
/** The image of the result shown (what Download names the figure after). */
let shownImage: { bytes: Uint8Array; name: string } | null = null;
/** Whether the current model is a built-in one (it knows only the scene classes). */
let builtinModel = false;
let workerReady = false;
let pluginsListed = false;
let modelReady = false;
let selectedMethods: Set<string> = new Set(
  (params.get("methods") ?? "grad-cam,contrastive-excitation-backprop").split(",").filter((s) => s),
);

function setState(state: string, text: string, done?: number, total?: number): void {
  exposed.state = state;
  document.body.dataset.state = state;
  ui.status.textContent = text;
  ui.cancel.hidden = state !== "busy";
  if (done !== undefined && total !== undefined && total > 0) {
    ui.progress.max = total;
    ui.progress.value = done;
  } else if (state === "busy" || state === "starting") {
    ui.progress.removeAttribute("value"); // indeterminate
  } else {
    ui.progress.max = 1;
    ui.progress.value = state === "done" ? 1 : 0;
  }
}

function fail(message: string): void {
  exposed.error = message;
  setState("error", message);
  markStale();
  console.error(`gradual playground: ${message}`);
}

function notice(text: string | null): void {
  exposed.notice = text;
  ui.notice.hidden = text === null;
  ui.notice.textContent = text ?? "";
}

/** Dims the results and disables Download when they do not match the current input. */
function markStale(): void {
  const current = shown !== null && shownImage !== null && image === shownImage;
  ui.main.classList.toggle("stale", shown !== null && !current);
  ui.download.disabled = !current;
  exposed.downloadName = current ? figureName() : null;
}

function send(msg: ToWorker): void {
  worker?.postMessage(msg);
}

// --------------------------------------------------------------------------------------------
// Worker
// --------------------------------------------------------------------------------------------

function startWorker(): void {
  worker?.terminate();
  workerReady = false;
  modelReady = false;
  const backend = ui.backend.value as PlaygroundBackend;
  setState("starting", `starting the ${backend} backend…`);
  ui.badge.textContent = `${backend}: starting…`;
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onWorkerMessage(ev.data);
  worker.onerror = (ev) => {
    ev.preventDefault();
    fail(`worker failed: ${ev.message || "could not start"}`);
  };
  const threads = Number(params.get("threads") ?? "0");
  send({ type: "init", backend, threads: threads > 0 ? threads : undefined });
  if (modelSource) loadModel(modelSource, modelName);
}

function onWorkerMessage(msg: FromWorker): void {
  switch (msg.type) {
    case "ready":
      workerReady = true;
      exposed.backend = msg.info;
      if (msg.info.fallbackFrom) {
        notice(
          `${msg.info.fallbackFrom} failed to start here (${
            msg.info.fallbackReason ?? "unknown reason"
          }); running on ${msg.info.backend} instead.`,
        );
        ui.backend.value = msg.info.backend;
      }
      showBackend(msg.info);
      fillPlugins(msg.info);
      if (!modelSource) setState("idle", "ready");
      break;
    case "model":
      if (msg.id !== modelRequest) return;
      modelReady = true;
      exposed.model = msg.info;
      showModel(msg.info);
      setState("idle", cancelled ? "cancelled" : `model loaded in ${msg.info.ms.toFixed(0)} ms`);
      if (!cancelled) explainNow();
      cancelled = false;
      markStale();
      break;
    case "progress":
      if (msg.id !== undefined && msg.id !== explainRequest && msg.id !== modelRequest) return;
      if (msg.stage === "done") return;
      setState("busy", `${msg.stage}…`, msg.done, msg.total);
      break;
    case "result":
      if (msg.result.id !== explainRequest) return;
      shown = msg.result;
      shownImage = pendingImage;
      exposed.result = msg.result;
      exposed.error = null;
      draw();
      showTables(msg.result);
      recordTime(msg.result);
      setState("done", `done in ${msg.result.timing.total.toFixed(0)} ms`);
      markStale();
      break;
    case "resources":
      exposed.workerResources = msg.urls;
      break;
    case "error":
      if (msg.id !== undefined && msg.id !== explainRequest && msg.id !== modelRequest) return;
      if (
        (msg.backend === "webgpu" || msg.backend === "webgl") &&
        (msg.stage === "explain" || msg.stage === "load-model")
      ) {
        // The GPU backend broke at run time: say so and go on with wasm.
        notice(`${msg.backend} failed here (${msg.message}); switched to wasm.`);
        ui.backend.value = "wasm";
        startWorker();
        return;
      }
      fail(msg.message);
      break;
  }
}

function showBackend(info: BackendReport): void {
  let text = info.backend;
  if (info.backend === "wasm") {
    text += `${info.simd ? " SIMD" : ""}, ${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  }
  if (!info.crossOriginIsolated) text += " (not cross-origin isolated)";
  if (info.fallbackFrom) text += ` (${info.fallbackFrom} failed to start)`;
  ui.badge.dataset.backend = info.backend;
  ui.badge.textContent = text;
  ui.badge.title = `backend started in ${info.ms.toFixed(0)} ms`;
}

function fillPlugins(info: BackendReport): void {
  ui.methods.replaceChildren();
  for (const m of info.methods) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = m.name;
    box.checked = selectedMethods.has(m.name);
    box.addEventListener("change", () => {
      selectedMethods = new Set(checkedMethods());
      explainNow();
    });
    label.title = m.name;
    const name = document.createElement("span");
    name.textContent = PRETTY_NAMES[m.name] ?? m.name;
    const about = document.createElement("small");
    about.textContent = shortDescription(m.description);
    label.append(box, name, about);
    ui.methods.append(label);
  }
  const want = pluginsListed ? ui.extrapolator.value : params.get("extrapolator") ?? "gradual";
  pluginsListed = true;
  ui.extrapolator.replaceChildren(new Option("none", "none"));
  for (const e of info.extrapolators) {
    const o = new Option(`${e.name}: ${shortDescription(e.description)}`, e.name);
    o.title = e.description;
    ui.extrapolator.append(o);
  }
  ui.extrapolator.value = [...ui.extrapolator.options].some((o) => o.value === want)
    ? want
    : "none";
}

function checkedMethods(): string[] {
  return [...ui.methods.querySelectorAll<HTMLInputElement>("input:checked:not(:disabled)")]
    .map((b) => b.value);
}

/** A plugin description without the name it starts with (`Grad-CAM: ...`). */
function shortDescription(d: string): string {
  return d.replace(/^[^:]{1,40}:\s*/, "");
}

function showModel(info: ModelReport): void {
  const keepLayer = ui.layer.value || params.get("layer") || "";
  ui.layer.replaceChildren(
    new Option(
      `each method's default${info.defaultLayer ? ` (Grad-CAM family: ${info.defaultLayer})` : ""}`,
      "",
    ),
  );
  for (const l of info.layers) ui.layer.append(new Option(l, l));
  ui.layer.value = info.layers.includes(keepLayer) ? keepLayer : "";
  ui.modelNote.hidden = !builtinModel;
  if (builtinModel) {
    ui.modelNote.textContent = `${info.name} knows only the ${info.numClasses} generated shape ` +
      `classes (${info.labels.join(", ")}): any photo gets one of these labels. To explain ` +
      "your own images, drop your model's model.json + weight shards, or a PyTorch .onnx " +
      "(+ labels.json), under Model.";
  }
  ui.modelInfo.textContent = `${info.name}: ${info.format}, ${info.inputSize[1]}x${
    info.inputSize[0]
  } input, ${info.numClasses} classes, ${info.preprocess} scaling; loaded in ${
    info.ms.toFixed(0)
  } ms`;
  const keep = ui.target.value;
  ui.target.replaceChildren(new Option("top-1 class", "top1"));
  info.labels.forEach((l, i) => ui.target.append(new Option(`${i}: ${l}`, String(i))));
  ui.target.value = [...ui.target.options].some((o) => o.value === keep) ? keep : "top1";
}

function loadModel(source: ModelSource, name: string): void {
  modelSource = source;
  modelName = name;
  modelReady = false;
  modelRequest = nextId++;
  setState("busy", `loading ${name}…`);
  send({ type: "load-model", id: modelRequest, source });
}

function explainNow(): void {
  if (!workerReady || !modelReady || !image) return;
  const methods = checkedMethods();
  if (methods.length === 0) {
    setState("idle", "pick at least one method");
    return;
  }
  explainRequest = nextId++;
  pendingImage = image;
  setState("busy", "explaining…");
  const t = ui.target.value;
  send({
    type: "explain",
    id: explainRequest,
    image: image.bytes.slice(),
    name: image.name,
    methods,
    extrapolator: ui.extrapolator.value,
    target: t === "top1" ? "top1" : Number(t),
    layer: ui.layer.value || undefined,
  });
}

/** The image of the explain request in flight. */
let pendingImage: { bytes: Uint8Array; name: string } | null = null;

/** Stops the work under way: the worker is replaced (the only way to stop a decode). */
function cancel(): void {
  // Back to the image of the result shown, so that the restart does not redo the work.
  image = shownImage;
  for (const b of ui.samples.querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.file === image?.name));
  }
  cancelled = true;
  startWorker();
  setState("busy", "cancelled; restarting the worker…");
}

let cancelled = false;

/** Records an explain time and says which backend has been fastest here. */
function recordTime(r: ResultReport): void {
  (exposed.backendTimes[r.backend] ??= []).push(r.timing.explain);
  const best = Object.entries(exposed.backendTimes).map(([b, ts]) => ({
    b,
    // The first run on a backend includes its warm-up (shader compilation on GPUs).
    ms: Math.min(...(ts.length > 1 ? ts.slice(1) : ts)),
  })).sort((x, y) => x.ms - y.ms);
  const list = best.map((x) => `${x.b} ${x.ms.toFixed(0)} ms`).join(", ");
  ui.backendNote.textContent = best.length > 1
    ? `Fastest here so far: ${best[0].b} (explain times: ${list}).`
    : `${list} per explanation. Pick another backend to compare; without a GPU, webgl ` +
      "renders in software and is usually far slower than wasm.";
}

// --------------------------------------------------------------------------------------------
// Drawing
// --------------------------------------------------------------------------------------------

function alpha(): number {
  return Number(ui.opacity.value) / 100;
}

function panels(): { title: string; image: Rgba8Image; note: string }[] {
  if (!shown) return [];
  const r = shown;
  const cls = r.top.find((c) => c.index === r.classIndex)?.label ?? `class ${r.classIndex}`;
  const out = [{
    title: "input",
    image: r.image,
    note: `${r.original.width}x${r.original.height}`,
  }];
  for (const m of r.maps) {
    out.push({
      title: m.title,
      image: overlay(r.image, m.map, m.width, m.height, ui.colormap.value, alpha()),
      note: `${cls} · layer ${m.layer}\n${m.ms.toFixed(1)} ms + ${
        r.timing.shared.toFixed(1)
      } ms shared forward pass`,
    });
  }
  return out;
}

function draw(): void {
  const items = panels().map(({ title, image, note }) => {
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    const canvas = document.createElement("canvas");
    canvas.width = image.width;
    canvas.height = image.height;
    const data = new ImageData(new Uint8ClampedArray(image.data), image.width, image.height);
    canvas.getContext("2d")!.putImageData(data, 0, 0);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", title);
    const small = document.createElement("small");
    small.textContent = note;
    fig.append(cap, canvas, small);
    return fig;
  });
  ui.figure.replaceChildren(...items);
}

function row(table: HTMLTableElement, cells: (string | Node)[], numeric: number[] = []): void {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    if (numeric.includes(i)) td.className = "num";
    td.append(c);
    tr.append(td);
  });
  table.tBodies[0].append(tr);
}

function showTables(r: ResultReport): void {
  ui.classes.tBodies[0].replaceChildren();
  for (const c of r.top) {
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, Math.round(c.probability * 120))}px`;
    row(ui.classes, [c.label, c.score.toFixed(3), `${(100 * c.probability).toFixed(1)} %`, bar], [
      1,
      2,
    ]);
  }
  ui.timing.tBodies[0].replaceChildren();
  row(ui.timing, ["decode + resize", `${r.timing.decode.toFixed(1)} ms`], [1]);
  row(ui.timing, ["classify (forward)", `${r.timing.classify.toFixed(1)} ms`], [1]);
  row(ui.timing, [
    "shared by all maps (forward pass, resizing, read-back)",
    `${r.timing.shared.toFixed(1)} ms`,
  ], [1]);
  for (const m of r.maps) row(ui.timing, [`${m.title} (${m.layer})`, `${m.ms.toFixed(1)} ms`], [1]);
  row(ui.timing, ["total", `${r.timing.total.toFixed(1)} ms`], [1]);
  row(ui.timing, ["backend", r.backend]);
}

/** The figure's file name: the shown result's image and model. */
function figureName(): string {
  const base = (shownImage?.name ?? "image").replace(/\.[^.]*$/, "");
  return `gradual-${base}-${modelName}.png`.replace(/[^\w.-]+/g, "_");
}

async function downloadFigure(): Promise<void> {
  const ps = panels();
  if (ps.length === 0) return;
  const fig = figure(ps.map(({ title, image }) => ({ title, image })));
  const png = await encodePng(fig.width, fig.height, fig.data);
  const url = URL.createObjectURL(
    new Blob([png as Uint8Array<ArrayBuffer>], { type: "image/png" }),
  );
  const a = document.createElement("a");
  a.href = url;
  a.download = figureName();
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// --------------------------------------------------------------------------------------------
// Inputs
// --------------------------------------------------------------------------------------------

function pickModel(m: CatalogModel): void {
  builtinModel = m.builtin;
  loadModel({
    kind: "url",
    name: m.name,
    modelUrl: m.modelUrl,
    labelsUrl: m.labelsUrl,
    preprocess: m.preprocess,
  }, m.name);
}

function useModelFiles(files: File[]): void {
  if (files.length === 0) return;
  const onnx = files.find((f) => f.name.toLowerCase().endsWith(".onnx"));
  const json = files.find((f) => f.name.toLowerCase().endsWith(".json"));
  ui.model.value = "";
  builtinModel = false;
  loadModel({
    kind: "files",
    files,
    preprocess: ui.preprocess.value as PlaygroundPreprocess,
  }, onnx?.name ?? json?.name.replace(/\.json$/i, "") ?? "dropped model");
}

async function useImage(bytes: Uint8Array, name: string): Promise<void> {
  image = { bytes, name };
  markStale();
  for (const b of ui.samples.querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.file === name));
  }
  await Promise.resolve();
  explainNow();
}

async function pickSample(file: string): Promise<void> {
  const s = catalog.samples.find((x) => x.file === file);
  if (!s) return;
  const res = await fetch(s.url);
  if (!res.ok) return fail(`${s.file}: HTTP ${res.status}`);
  await useImage(new Uint8Array(await res.arrayBuffer()), s.file);
}

function dropZone(zone: HTMLElement, onFiles: (files: File[]) => void): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...(e.dataTransfer?.files ?? [])]);
  });
}

async function imageFiles(files: File[]): Promise<void> {
  const f = files[0];
  if (f) await useImage(new Uint8Array(await f.arrayBuffer()), f.name);
}

function wire(): void {
  ui.model.addEventListener("change", () => {
    const m = catalog.models.find((x) => x.name === ui.model.value);
    if (m) pickModel(m);
  });
  ui.modelFiles.addEventListener("change", () => useModelFiles([...(ui.modelFiles.files ?? [])]));
  dropZone(ui.modelDrop, useModelFiles);
  ui.imageFile.addEventListener("change", () => imageFiles([...(ui.imageFile.files ?? [])]));
  dropZone(ui.imageDrop, imageFiles);
  ui.preprocess.addEventListener("change", () => {
    if (modelSource?.kind === "files") {
      loadModel(
        { ...modelSource, preprocess: ui.preprocess.value as PlaygroundPreprocess },
        modelName,
      );
    }
  });
  ui.backend.addEventListener("change", startWorker);
  ui.extrapolator.addEventListener("change", explainNow);
  ui.target.addEventListener("change", explainNow);
  ui.run.addEventListener("click", explainNow);
  ui.cancel.addEventListener("click", cancel);
  ui.layer.addEventListener("change", explainNow);
  ui.download.addEventListener("click", () => {
    downloadFigure().catch((e) => fail(String(e)));
  });
  ui.colormap.addEventListener("change", draw);
  ui.opacity.addEventListener("input", () => {
    ui.opacityValue.textContent = alpha().toFixed(2);
    draw();
  });
}

function webglAvailable(): boolean {
  try {
    return new OffscreenCanvas(1, 1).getContext("webgl2") != null;
  } catch {
    return false;
  }
}

async function webgpuAvailable(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (gpu === undefined) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  for (const c of COLORMAPS) ui.colormap.append(new Option(c, c));
  ui.colormap.value = params.get("colormap") ?? "jet";
  const op = params.get("opacity");
  if (op !== null && Number.isFinite(Number(op))) ui.opacity.value = String(Number(op) * 100);
  ui.opacityValue.textContent = alpha().toFixed(2);
  const webgpu = ui.backend.querySelector<HTMLOptionElement>('option[value="webgpu"]')!;
  webgpu.disabled = !(await webgpuAvailable());
  if (webgpu.disabled) webgpu.textContent += " (not offered by this browser)";
  const webgl = ui.backend.querySelector<HTMLOptionElement>('option[value="webgl"]')!;
  webgl.disabled = !webglAvailable();
  if (webgl.disabled) webgl.textContent += " (not offered by this browser)";
  const b = params.get("backend");
  // Asked for by name: tried even when not offered, so the page can say why it fell back.
  if (b && [...ui.backend.options].some((o) => o.value === b)) ui.backend.value = b;
  wire();

  const res = await fetch(new URL("../api/catalog.json", location.href));
  if (!res.ok) throw new Error(`catalog: HTTP ${res.status}`);
  catalog = await res.json() as Catalog;
  for (const m of catalog.models) {
    const o = new Option(m.title, m.name);
    o.title = m.description;
    ui.model.append(o);
  }
  ui.model.append(new Option("(dropped files)", ""));
  for (const s of catalog.samples) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.dataset.file = s.file;
    btn.title = s.className ? `${s.file} (${s.className})` : s.file;
    btn.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.src = s.url;
    img.alt = s.className ?? s.file;
    btn.append(img);
    btn.addEventListener("click", () => {
      pickSample(s.file).catch((e) => fail(String(e)));
    });
    ui.samples.append(btn);
  }

  startWorker();
  const wantModel = params.get("model");
  const m = catalog.models.find((x) => x.name === wantModel) ?? catalog.models[0];
  if (m) {
    ui.model.value = m.name;
    pickModel(m);
  } else setState("idle", "no model on the server: drop a model.json + shards");
  const sample = params.get("sample") ?? catalog.samples[0]?.file;
  if (sample) await pickSample(sample);
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
