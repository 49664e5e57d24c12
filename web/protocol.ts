/**
 * Messages between the playground page (`web/app.ts`) and its worker (`web/worker.ts`).
 * All heavy work (backend start, model loading, decoding, explaining) happens in the worker;
 * the page only draws.
 *
 * @module
 */

/** Backends the playground can start in the worker. */
export type PlaygroundBackend = "wasm" | "webgl" | "webgpu" | "cpu";

/** Input scaling of a model (the presets of `io/preprocess.ts`). */
export type PlaygroundPreprocess = "imagenet" | "unit" | "symmetric" | "caffe" | "none";

/** A model the server offers (from `/api/catalog.json`). */
export interface CatalogModel {
  /** Registry or fixture name, e.g. `shapes-vgg`. */
  name: string;
  /** Text for the model picker. */
  title: string;
  /** Absolute path of `model.json` on the server. */
  modelUrl: string;
  /** Absolute path of the labels file, if any. */
  labelsUrl?: string;
  /** Input scaling. */
  preprocess: PlaygroundPreprocess;
  /** One-line description. */
  description: string;
  /** Whether it is one of the built-in models of `models/builtin.ts`. */
  builtin: boolean;
}

/** A bundled sample image (from `/api/catalog.json`). */
export interface CatalogSample {
  /** File name, e.g. `disk_3000000.png`. */
  file: string;
  /** Absolute path on the server. */
  url: string;
  /** The true class name, when known. */
  className?: string;
}

/** What `/api/catalog.json` returns. */
export interface Catalog {
  /** Loadable models, built-in ones first. */
  models: CatalogModel[];
  /** Sample images. */
  samples: CatalogSample[];
}

/** Where a model comes from. */
export type ModelSource =
  | {
    kind: "url";
    name: string;
    modelUrl: string;
    labelsUrl?: string;
    preprocess: PlaygroundPreprocess;
  }
  | { kind: "files"; files: File[]; preprocess: PlaygroundPreprocess };

/** Page → worker. */
export type ToWorker =
  | { type: "init"; backend: PlaygroundBackend; threads?: number }
  | { type: "load-model"; id: number; source: ModelSource }
  | {
    type: "explain";
    id: number;
    /** Encoded PNG or JPEG bytes. */
    image: Uint8Array;
    /** Image name, for messages. */
    name: string;
    /** Method names, in panel order. */
    methods: string[];
    /** Extrapolator name or `"none"`. */
    extrapolator: string;
    /** Class index to explain, or `"top1"`. */
    target: number | "top1";
    /** Layer every method works on (absent: each method's default). */
    layer?: string;
  };

/** A plugin as listed to the page. */
export interface PluginInfo {
  /** Registry name. */
  name: string;
  /** One-line description. */
  description: string;
  /** Whether it replaces layers' gradients with backward rules. */
  usesRules: boolean;
}

/** What the worker reports once the backend runs. */
export interface BackendReport {
  /** The tfjs backend in use. */
  backend: string;
  /** wasm threads (1 elsewhere). */
  threads: number;
  /** Whether the SIMD wasm binary is in use. */
  simd: boolean;
  /** The backend asked for, when it failed to start and wasm runs instead. */
  fallbackFrom?: string;
  /** Why it failed to start (e.g. `no WebGPU adapter found`). */
  fallbackReason?: string;
  /** Whether the page is cross-origin isolated (needed for wasm threads). */
  crossOriginIsolated: boolean;
  /** Time to start the backend, ms. */
  ms: number;
  /** The registered methods. */
  methods: PluginInfo[];
  /** The registered extrapolators. */
  extrapolators: PluginInfo[];
}

/** A loaded model as reported to the page. */
export interface ModelReport {
  /** Display name. */
  name: string;
  /** `layers-model` or `graph-model`. */
  format: string;
  /** Input `[height, width]`. */
  inputSize: [number, number];
  /** Number of classes. */
  numClasses: number;
  /** Class names (generated `class i` when the model has no labels). */
  labels: string[];
  /** Input scaling in use. */
  preprocess: PlaygroundPreprocess;
  /** Load time, ms. */
  ms: number;
  /** Layers with a spatial output (a method can work on them), in execution order. */
  layers: string[];
  /** The graph's default layer for the Grad-CAM family. */
  defaultLayer?: string;
}

/** One class with its score. */
export interface TopClass {
  /** Class index. */
  index: number;
  /** Class name. */
  label: string;
  /** Logit. */
  score: number;
  /** Softmax probability. */
  probability: number;
}

/** One map of a result. */
export interface MapReport {
  /** Method name. */
  method: string;
  /** Extrapolator name, if one ran. */
  extrapolator?: string;
  /** Panel title, e.g. `Gradual Grad-CAM`. */
  title: string;
  /** Layer the method worked on. */
  layer: string;
  /** The map, row-major, values in [0, 1]. */
  map: Float32Array;
  /** Map width. */
  width: number;
  /** Map height. */
  height: number;
  /** Time of the method run (plus the extrapolator's refinement), ms. */
  ms: number;
}

/** The result of one `explain` message. */
export interface ResultReport {
  /** Request id. */
  id: number;
  /** The decoded image (RGBA), scaled down to at most 512 px per side for display. */
  image: { width: number; height: number; data: Uint8ClampedArray };
  /** Size of the decoded image. */
  original: { width: number; height: number };
  /** The five best classes. */
  top: TopClass[];
  /** Explained class. */
  classIndex: number;
  /** The maps, in panel order. */
  maps: MapReport[];
  /**
   * Timings, ms: decoding, classifying (a forward pass for the top classes), explaining
   * (all maps), of which `shared` is not any one map's (the forward pass all maps share,
   * resizing and reading back), and the total.
   */
  timing: { decode: number; classify: number; explain: number; shared: number; total: number };
  /** Backend that computed them. */
  backend: string;
}

/** Worker → page. */
export type FromWorker =
  | { type: "ready"; info: BackendReport }
  | { type: "model"; id: number; info: ModelReport }
  | { type: "progress"; id?: number; stage: string; done: number; total: number }
  | { type: "result"; result: ResultReport }
  | {
    type: "error";
    id?: number;
    message: string;
    /** The backend that was running. */
    backend?: string;
    /** What the worker was doing: `init`, `load-model` or `explain`. */
    stage?: string;
  }
  | { type: "resources"; urls: string[] };

/** Display names of the built-in plugins (the paper's spelling). */
export const PRETTY_NAMES: Readonly<Record<string, string>> = Object.freeze({
  "grad-cam": "Grad-CAM",
  "grad-cam++": "Grad-CAM++",
  "xgrad-cam": "XGrad-CAM",
  "layer-cam": "LayerCAM",
  "hires-cam": "HiResCAM",
  "grad-cam-elementwise": "Grad-CAM elementwise",
  "eigen-cam": "EigenCAM",
  "score-cam": "Score-CAM",
  "excitation-backprop": "EB",
  "contrastive-excitation-backprop": "c-EB",
  "gradient": "Gradient",
  "gradient-x-input": "Gradient x input",
  "guided-backprop": "Guided backprop",
  "deconvnet": "Deconvnet",
  "smooth-grad": "SmoothGrad",
  "integrated-gradients": "Integrated gradients",
  "gradual": "Gradual",
});

/**
 * The title of a panel, as in the paper's figure: `Grad-CAM`, `Gradual Grad-CAM`.
 *
 * @param method method name
 * @param extrapolator extrapolator name, or undefined / `"none"`
 * @returns the title
 */
export function panelTitle(method: string, extrapolator?: string): string {
  const m = PRETTY_NAMES[method] ?? method;
  if (extrapolator === undefined || extrapolator === "none") return m;
  const e = PRETTY_NAMES[extrapolator] ?? extrapolator;
  return `${e} ${m}`;
}
