/**
 * Model set-up for the commands: `--model` (a built-in name or a path to a tfjs
 * `model.json`), labels, the default preprocessing, and up-front checks of methods, layers
 * and targets so that a wrong command line fails before any image is read.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ExplainRequest, sessionOf } from "../core/explain.ts";
import { loadOnnxModel } from "../core/frontends/onnx_model.ts";
import { checkLayer } from "../core/graph.ts";
import {
  displayName,
  loadGraphModel,
  loadLabels,
  loadLayersModel,
  modelFormat,
} from "../core/model_io.ts";
import type { ModelSession, Session } from "../core/session.ts";
import { resolveTargets, type TargetSpec } from "../core/targets.ts";
import { resolvePlugins, validateOptions } from "../core/options.ts";
import type { Extrapolator, PluginOptions, SaliencyMethod } from "../core/types.ts";
import type { PreprocessPreset } from "../io/mod.ts";
import { BUILTIN_MODEL_NAMES, BUILTIN_MODELS } from "../models/builtin.ts";
import { BUILTIN_LABELS } from "../models/labels/mod.ts";
import { FileError, problemOf, UsageError } from "./_errors.ts";

/** The model `--model` resolves to when it is not given. */
export const DEFAULT_MODEL = "shapes-vgg";

/** Where a model and its labels come from. */
export interface ModelSpec {
  /** Name shown in messages (built-in name or the path given). */
  readonly display: string;
  /** `model.json` path or URL. */
  readonly url: string | URL;
  /** Labels path or URL, if known. */
  readonly labels?: string | URL;
  /** The model's own preprocessing, if known (built-in models). */
  readonly preprocess?: PreprocessPreset;
}

/** Resolves `--model` (default {@linkcode DEFAULT_MODEL}) and `--labels`. */
export function resolveModelSpec(model?: string, labelsArg?: string): ModelSpec {
  const name = model ?? DEFAULT_MODEL;
  // A built-in list name (`imagenet`) stands for the list shipped with the package.
  const labels = labelsArg !== undefined && Object.hasOwn(BUILTIN_LABELS, labelsArg)
    ? BUILTIN_LABELS[labelsArg]
    : labelsArg;
  if (Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, name)) {
    const b = BUILTIN_MODELS[name];
    if (b.modelUrl.protocol === "file:" && !existsSync(b.modelUrl)) {
      throw new FileError(name, `the built-in model's files are missing (${b.modelUrl.pathname})`);
    }
    return {
      display: name,
      url: b.modelUrl,
      labels: labels ?? b.labelsUrl,
      preprocess: b.preprocess,
    };
  }
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(name);
  let path = name;
  if (!isUrl) {
    let isDir = false;
    try {
      isDir = Deno.statSync(name).isDirectory;
    } catch {
      isDir = false;
    }
    if (isDir) path = join(name, "model.json");
    else if (!name.endsWith(".json") && !existsSync(name)) {
      throw new FileError(
        name,
        `no such model file, and not a built-in model (built-in: ${
          BUILTIN_MODEL_NAMES.join(", ")
        })`,
      );
    }
  }
  const sibling = isUrl ? undefined : join(dirname(path), "labels.json");
  const autoLabels = sibling !== undefined && existsSync(sibling) ? sibling : undefined;
  return { display: path, url: path, labels: labels ?? autoLabels };
}

/** A loaded model with what the commands need to know about it. */
export interface LoadedModel {
  /** Where it came from. */
  readonly spec: ModelSpec;
  /** The session (graph facts, executor) shared by every explanation. */
  readonly session: Session;
  /** Class names, if any. */
  readonly labels?: string[];
  /** Number of classes (last dimension of the output). */
  readonly numClasses: number;
  /** Warnings for the user (e.g. label count mismatch). */
  readonly warnings: string[];
  /** Frees the model's weights. */
  dispose(): void;
}

/**
 * Parses `--input-size`: `N` (square) or `HxW`; undefined when not given. Needed for models
 * whose input size is open (`[-1, -1, -1, 3]` GraphModels).
 */
export function parseInputSize(s: string | undefined): [number, number] | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(s.trim());
  const h = Number(m?.[1]), w = Number(m?.[2] ?? m?.[1]);
  if (!m || !(h > 0 && w > 0)) throw new UsageError(`--input-size must be N or HxW, got '${s}'`);
  return [h, w];
}

/**
 * Loads the model and labels; every failure is a one-line error naming the file.
 * `inputSize` fills an input size the model leaves open (`--input-size`);
 * `allowOutsideFolder` lets weight shards sit outside the model's folder.
 */
export async function loadModel(
  spec: ModelSpec,
  opts: { inputSize?: [number, number]; allowOutsideFolder?: boolean } = {},
): Promise<LoadedModel> {
  const model = String(spec.url).toLowerCase().endsWith(".onnx")
    ? await loadOnnxModel(spec.url, opts).catch((e) => {
      throw new FileError(spec.display, problemOf(e).replace(/^.*?\.onnx: /, ""));
    })
    : (await modelFormat(spec.url)) === "graph-model"
    ? await loadGraphModel(spec.url, opts)
    : await loadLayersModel(spec.url, opts);
  let session: Session;
  try {
    session = sessionOf(model, opts);
  } catch (e) {
    model.dispose();
    throw new FileError(spec.display, `unsupported model: ${problemOf(e)}`);
  }
  const dispose = (): void => {
    (session as Partial<ModelSession>).dispose?.();
    model.dispose();
  };
  const g = session.graph;
  const out = g.nodes.find((n) => n.name === g.outputName)?.outputShape ?? [];
  const numClasses = Number(out[out.length - 1]);
  if (out.length !== 2 || !(numClasses > 0)) {
    dispose();
    throw new FileError(
      spec.display,
      `unsupported model: the output has shape [${
        out.join(", ")
      }], a classifier needs [null, classes]`,
    );
  }
  const warnings: string[] = [];
  let labels: string[] | undefined;
  if (spec.labels !== undefined) {
    try {
      labels = await loadLabels(spec.labels);
    } catch (e) {
      dispose();
      throw e;
    }
    if (labels.length !== numClasses) {
      warnings.push(
        `gradual: ${
          displayName(spec.labels)
        }: has ${labels.length} labels, the model has ${numClasses} classes`,
      );
    }
  }
  return { spec, session, labels, numClasses, warnings, dispose };
}

/** Parses `--target`: `top1`, `topK`, a class index or a class name. */
export function parseTarget(s: string | undefined): TargetSpec {
  if (s === undefined || s === "top1") return "top1";
  if (/^top\d+$/.test(s)) return s;
  if (/^\d+$/.test(s)) return Number(s);
  if (/^-\d+$/.test(s)) {
    throw new UsageError(`--target must be top1, topK, a class index or name, got '${s}'`);
  }
  return s;
}

/**
 * Checks methods, extrapolators, their options, layers and the target against the model
 * before any image is read. Unknown names are usage errors (exit 2); a model the methods cannot work
 * on is a {@linkcode FileError} naming the model.
 */
export function validateRun(
  m: LoadedModel,
  requests: readonly ExplainRequest[],
  target: TargetSpec,
): void {
  const graph = m.session.graph;
  for (const r of requests) {
    let method: SaliencyMethod, ex: Extrapolator | undefined;
    try {
      ({ method, extrapolator: ex } = resolvePlugins(r));
    } catch (e) {
      throw new UsageError(problemOf(e));
    }
    let mo: PluginOptions, eo: PluginOptions | undefined;
    try {
      mo = validateOptions(method, r.methodOptions, { graph });
      eo = ex && validateOptions(ex, r.extrapolatorOptions, { graph });
    } catch (e) {
      throw new UsageError(problemOf(e));
    }
    let layer: string | undefined;
    try {
      layer = r.layer ?? method.defaultLayer(graph, mo);
    } catch (e) {
      throw new FileError(m.spec.display, problemOf(e));
    }
    if (layer !== undefined) {
      try {
        checkLayer(graph, layer);
      } catch (e) {
        throw new UsageError(`${m.spec.display}: ${problemOf(e)}`);
      }
    }
    try {
      method.requires(graph, layer, mo);
      if (ex) ex.requires(graph, eo ?? {});
    } catch (e) {
      throw new FileError(m.spec.display, problemOf(e));
    }
  }
  try {
    // Score rows, not a tensor: no synchronous read (webgpu has none).
    resolveTargets(target, [new Array(m.numClasses).fill(0)], m.labels);
  } catch (e) {
    throw new UsageError(`${m.spec.display}: ${problemOf(e)}`);
  }
}
