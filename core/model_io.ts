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

async function fetchBytes(url: string, what: string): Promise<Uint8Array> {
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
  return new Uint8Array(await res.arrayBuffer());
}

function displayName(pathOrUrl: string | URL): string {
  const s = String(pathOrUrl);
  return s.startsWith("file://") ? decodeURIComponent(new URL(s).pathname) : s;
}

/** The parsed `model.json` plus its weights, ready for tfjs. */
async function readArtifacts(pathOrUrl: string | URL): Promise<tf.io.ModelArtifacts> {
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
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of manifest) {
    for (const p of group.paths) {
      const shardUrl = new URL(p, url).href;
      buffers.push(await fetchBytes(shardUrl, `${name}: weights shard '${p}'`));
    }
    specs.push(...group.weights);
  }
  const total = buffers.reduce((a, b) => a + b.length, 0);
  const data = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    data.set(b, off);
    off += b.length;
  }
  const expected = specs.reduce((a, s) => {
    const size = s.shape.reduce((x, y) => x * y, 1);
    const bytesPer = s.dtype === "int32" || s.dtype === "float32" ? 4 : 1;
    return a + size * bytesPer;
  }, 0);
  if (!specs.some((s) => s.quantization) && expected !== total) {
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
 * Loads a tfjs LayersModel from a `model.json` path or URL (shards next to it).
 *
 * @example
 * ```ts
 * import { loadLayersModel } from "./model_io.ts";
 * // const model = await loadLayersModel("models/shapes-vgg/model.json");
 * ```
 */
export async function loadLayersModel(pathOrUrl: string | URL): Promise<LayersModel> {
  const art = await readArtifacts(pathOrUrl);
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

/** Loads a tfjs GraphModel (converted SavedModel) from a `model.json` path or URL. */
export async function loadGraphModel(pathOrUrl: string | URL): Promise<GraphModel> {
  const art = await readArtifacts(pathOrUrl);
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
