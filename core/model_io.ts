/**
 * Loading tfjs models and label files from a path or URL, with one-line errors that name
 * the file and the problem. Uses `fetch`, which reads `file:` URLs in Deno and `http(s):`
 * URLs everywhere, so the same code runs in Deno and the browser.
 *
 * @module
 */
import { ignoredKerasParameters } from "./layer_ops.ts";
import { toModuleUrl } from "./registry.ts";
import { type GraphModel, type LayersModel, tf } from "./tensor.ts";

/** Error for a model or labels file that cannot be used. */
export class ModelLoadError extends Error {
  /** Creates the error.
   * @param message one-line description naming the file
   */
  constructor(message: string) {
    super(message);
    this.name = "ModelLoadError";
  }
}

/** Largest `model.json` or labels file read (they are JSON or text; bigger is not one). */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;

/** Options of the model loaders. */
export interface ModelLoadOptions {
  /**
   * Allow weights shards outside the `model.json`'s folder (absolute paths, `../`); by
   * default such a manifest is refused, so a model file cannot make the loader read
   * arbitrary files.
   */
  allowOutsideFolder?: boolean;
}

type DenoFs = {
  stat(path: string | URL): Promise<{ isFile: boolean; size: number }>;
  readFile(path: string | URL): Promise<Uint8Array>;
};

function denoFs(): DenoFs | undefined {
  return (globalThis as unknown as { Deno?: DenoFs }).Deno;
}

/**
 * Reads a `file:` URL (Deno) only when it names a regular file (not a device such as
 * `/dev/zero`, a FIFO or a folder) of at most `maxBytes` bytes, checked before reading.
 * Other URLs are fetched, and the body is cut off past `maxBytes`. Failures are
 * {@linkcode ModelLoadError}s starting with `what`.
 */
export async function fetchBytes(
  url: string,
  what: string,
  maxBytes = MAX_TEXT_BYTES,
): Promise<Uint8Array> {
  const fs = denoFs();
  if (url.startsWith("file:") && fs !== undefined) {
    let info: { isFile: boolean; size: number };
    try {
      info = await fs.stat(new URL(url));
    } catch (e) {
      const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
      throw new ModelLoadError(`${what}: cannot read (${msg.replace(/^.*?: /, "")})`);
    }
    if (!info.isFile) throw new ModelLoadError(`${what}: not a regular file`);
    if (info.size > maxBytes) {
      throw new ModelLoadError(`${what}: ${info.size} bytes, more than the ${maxBytes} expected`);
    }
    try {
      return await fs.readFile(new URL(url));
    } catch (e) {
      const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
      throw new ModelLoadError(`${what}: cannot read (${msg.replace(/^.*?: /, "")})`);
    }
  }
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ModelLoadError(`${what}: cannot read (${msg.replace(/^.*?: /, "")})`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ModelLoadError(`${what}: cannot read (HTTP ${res.status})`);
  }
  const tooBig = (): never => {
    throw new ModelLoadError(`${what}: more than the ${maxBytes} bytes expected`);
  };
  if (Number(res.headers.get("content-length") ?? 0) > maxBytes) {
    await res.body?.cancel();
    tooBig();
  }
  if (!res.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      tooBig();
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes a weight entry takes in the shards (quantized entries by their stored dtype). */
function entryBytes(s: tf.io.WeightsManifestEntry): number {
  const size = s.shape.reduce((x, y) => x * y, 1);
  const q = s.quantization?.dtype;
  if (q !== undefined) return size * (q === "uint8" ? 1 : 2);
  return size * (s.dtype === "int32" || s.dtype === "float32" ? 4 : 1);
}

/**
 * The URL of a file a model refers to (`ref`, relative to the model's URL `modelUrl`);
 * throws a {@linkcode ModelLoadError} starting with `what` when it lies outside the model's
 * folder (absolute paths, `../`) unless `opts.allowOutsideFolder`.
 */
export function companionUrl(
  modelUrl: string,
  ref: string,
  what: string,
  opts: ModelLoadOptions = {},
): string {
  const url = new URL(ref, modelUrl).href;
  const folder = new URL(".", modelUrl).href;
  if (!opts.allowOutsideFolder && (!url.startsWith(folder) || /^[a-z]+:|^\//i.test(ref))) {
    throw new ModelLoadError(
      `${what}: outside the model's folder (absolute paths and ../ are refused unless allowed)`,
    );
  }
  return url;
}

/** A path or URL as shown in messages (`file:` URLs as paths). */
export function displayName(pathOrUrl: string | URL): string {
  const s = String(pathOrUrl);
  return s.startsWith("file://") ? decodeURIComponent(new URL(s).pathname) : s;
}

/** The parsed `model.json` plus its weights, ready for tfjs. */
async function readArtifacts(
  pathOrUrl: string | URL,
  opts: ModelLoadOptions = {},
): Promise<tf.io.ModelArtifacts> {
  const url = toModuleUrl(pathOrUrl);
  const name = displayName(pathOrUrl);
  const bytes = await fetchBytes(url, name);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelLoadError(`${name}: invalid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || !json.modelTopology) {
    throw new ModelLoadError(`${name}: not a tfjs model.json (no modelTopology)`);
  }
  const manifest = (json.weightsManifest ?? []) as tf.io.WeightsManifestConfig;
  if (!Array.isArray(manifest)) throw new ModelLoadError(`${name}: weightsManifest is not a list`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const group of manifest) specs.push(...(group.weights ?? []));
  const expected = specs.reduce((a, s) => a + entryBytes(s), 0);
  const buffers: Uint8Array[] = [];
  let left = expected;
  for (const group of manifest) {
    for (const p of group.paths ?? []) {
      const what = `${name}: weights shard '${p}'`;
      const shardUrl = companionUrl(url, p, what, opts);
      const b = await fetchBytes(shardUrl, what, left);
      left -= b.length;
      buffers.push(b);
    }
  }
  const total = buffers.reduce((a, b) => a + b.length, 0);
  const data = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    data.set(b, off);
    off += b.length;
  }
  if (expected !== total) {
    throw new ModelLoadError(
      `${name}: weights shards hold ${total} bytes, the manifest needs ${expected}`,
    );
  }
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
    format: json.format as string | undefined,
    weightSpecs: specs,
    weightData: data.buffer,
  };
}

/**
 * Loads a tfjs LayersModel from a `model.json` path or URL (shards next to it: only regular
 * files inside the model's folder, no bigger than the manifest says, unless
 * `opts.allowOutsideFolder`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../mod.ts";
 * import { loadLayersModel } from "./model_io.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const model = await loadLayersModel("models/shapes-vgg/model.json"); // the built-in model
 * assert.deepEqual(model.outputs[0].shape, [null, 10]); // ten shape classes
 * ```
 */
export async function loadLayersModel(
  pathOrUrl: string | URL,
  opts: ModelLoadOptions = {},
): Promise<LayersModel> {
  const art = await readArtifacts(pathOrUrl, opts);
  // Keras parameters tfjs-layers would silently drop (a model that runs differently).
  const ignored = ignoredKerasParameters(art.modelTopology);
  if (ignored.length) throw new ModelLoadError(`${displayName(pathOrUrl)}: ${ignored[0]}`);
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(art));
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ModelLoadError(`${displayName(pathOrUrl)}: not a usable LayersModel (${msg})`);
  }
}

/**
 * Loads a tfjs GraphModel (converted SavedModel) from a `model.json` path or URL (shards
 * as for {@linkcode loadLayersModel}).
 */
export async function loadGraphModel(
  pathOrUrl: string | URL,
  opts: ModelLoadOptions = {},
): Promise<GraphModel> {
  const art = await readArtifacts(pathOrUrl, opts);
  try {
    return await tf.loadGraphModel(tf.io.fromMemory(art));
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ModelLoadError(`${displayName(pathOrUrl)}: not a usable GraphModel (${msg})`);
  }
}

/** Reads a `model.json` and tells whether it is a `layers-model` or a `graph-model`. */
export async function modelFormat(
  pathOrUrl: string | URL,
): Promise<"layers-model" | "graph-model"> {
  const name = displayName(pathOrUrl);
  const bytes = await fetchBytes(toModuleUrl(pathOrUrl), name);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelLoadError(`${name}: invalid JSON (${(e as Error).message})`);
  }
  const topo = json.modelTopology as Record<string, unknown> | undefined;
  if (json.format === "graph-model" || (topo && "node" in topo)) return "graph-model";
  return "layers-model";
}

/**
 * Loads class labels: a JSON array of names, a JSON object `{index: name}` (Keras
 * `imagenet_class_index.json` style `{ "0": ["n01440764", "tench"] }` too), or a text
 * file with one name per line.
 */
export async function loadLabels(pathOrUrl: string | URL): Promise<string[]> {
  const name = displayName(pathOrUrl);
  const text = new TextDecoder().decode(await fetchBytes(toModuleUrl(pathOrUrl), name));
  const trimmed = text.trim();
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (e) {
      throw new ModelLoadError(`${name}: invalid JSON (${(e as Error).message})`);
    }
    if (Array.isArray(v)) return v.map(String);
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => /^\d+$/.test(k)).sort((a, b) => +a - +b);
    if (keys.length === 0) throw new ModelLoadError(`${name}: no labels found`);
    return keys.map((k) => {
      const e = o[k];
      return Array.isArray(e) ? String(e[e.length - 1]) : String(e);
    });
  }
  const lines = trimmed.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines.length === 0) throw new ModelLoadError(`${name}: the labels file is empty`);
  return lines;
}
