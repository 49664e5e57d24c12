/**
 * The batch loop shared by `explain` and `compare`: read a batch of inputs, run every
 * requested method from ONE forward pass (`explainMany`), hand each image's explanations
 * to the command, and keep going when one file fails (a failing batch is retried image by
 * image, so one bad image or a throwing plugin only fails that image).
 *
 * @module
 */
import { explainMany, type ExplainRequest, type Explanation } from "../core/explain.ts";
import type { PreprocessPreset } from "../io/mod.ts";
import type { TargetSpec } from "../core/targets.ts";
import { tf } from "../core/tensor.ts";
import { errorText, formatError, problemOf } from "./_errors.ts";
import { type LoadedInput, loadInput } from "./_inputs.ts";
import type { LoadedModel } from "./_model.ts";
import type { Progress } from "./_progress.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";

/** What the batch loop needs. */
export interface BatchJob {
  /** The model. */
  readonly model: LoadedModel;
  /** Methods to run on every image. */
  readonly requests: readonly ExplainRequest[];
  /** Targets. */
  readonly target: TargetSpec;
  /** Input preprocessing. */
  readonly preprocess: PreprocessPreset;
  /** Images per forward pass. */
  readonly batch: number;
  /** Largest image accepted, in pixels (`--max-pixels`). */
  readonly maxPixels?: number;
  /** Progress and failure counting. */
  readonly progress: Progress;
  /**
   * Writes one image's outputs; `results[i]` holds request i's explanations of this image
   * (one per target round).
   */
  handle(input: LoadedInput, results: Explanation[][]): Promise<void>;
}

async function explainInputs(
  job: BatchJob,
  inputs: readonly LoadedInput[],
  requests: readonly ExplainRequest[] = job.requests,
): Promise<Explanation[][]> {
  const [h, w, c] = job.model.session.inputSize;
  const data = new Float32Array(inputs.length * h * w * c);
  inputs.forEach((x, i) => data.set(x.input, i * h * w * c));
  const x = tf.tensor4d(data, [inputs.length, h, w, c]);
  try {
    return await explainMany(job.model.session, x, requests, {
      targets: job.target,
      labels: job.model.labels,
    });
  } finally {
    x.dispose();
  }
}

/** `grad-cam` or `grad-cam+gradual` for a request. */
function requestName(r: ExplainRequest): string {
  const m = typeof r.method === "object" ? r.method.name : r.method ?? "grad-cam";
  const e = typeof r.extrapolator === "object" ? r.extrapolator.name : r.extrapolator;
  return e === undefined || e === "none" ? m : `${m}+${e}`;
}

/**
 * One image alone; when that fails and several methods were asked for, each method alone,
 * so that a broken plugin fails only its own method (`failures`, one line each) and the
 * other methods' outputs are still written. Throws when every method fails.
 */
async function explainOne(
  job: BatchJob,
  x: LoadedInput,
): Promise<{ results: Explanation[][]; failures: string[] }> {
  try {
    return { results: await explainInputs(job, [x]), failures: [] };
  } catch (e) {
    if (job.requests.length === 1) throw e;
    const results: Explanation[][] = [];
    const failures: string[] = [];
    for (const r of job.requests) {
      try {
        results.push((await explainInputs(job, [x], [r]))[0]);
      } catch (err) {
        results.push([]);
        failures.push(formatError(new Error(`${requestName(r)}: ${problemOf(err)}`), x.file));
      }
    }
    if (failures.length === job.requests.length) throw e;
    return { results, failures };
  }
}

async function finish(
  job: BatchJob,
  input: LoadedInput,
  results: Explanation[][],
  failures: readonly string[] = [],
): Promise<void> {
  try {
    await job.handle(input, results);
    failures.forEach((f) => job.progress.line(f));
    job.progress.tick(input.file, failures.length === 0);
  } catch (e) {
    failures.forEach((f) => job.progress.line(f));
    job.progress.line(errorText(e, input.file));
    job.progress.tick(input.file, false);
  }
}

/** Said once per run when a built-in (shapes) model meets a picture that is not a scene. */
export const SHAPES_NOTE =
  "gradual: note: the built-in model knows only the 10 generated shape classes (disk, ring, " +
  "triangle, ...), so on other pictures its maps explain a shape guess; for your own images " +
  "pass your own model: --model model.json (tfjs) or --model model.onnx (PyTorch export), " +
  "with --labels imagenet for ImageNet classifiers";

/** Whether an input looks like a generated scene: a `.npy` tensor or a PNG of the input size. */
function sceneLike(file: string, x: LoadedInput, size: readonly number[]): boolean {
  if (/\.npy$/i.test(file)) return true;
  return /\.png$/i.test(file) && x.height === size[0] && x.width === size[1];
}

/** Runs the job over `files`, `batch` at a time. */
export async function runBatches(job: BatchJob, files: readonly string[]): Promise<void> {
  const size = job.model.session.inputSize;
  let noted = job.progress.quiet || !Object.hasOwn(BUILTIN_MODELS, job.model.spec.display);
  for (let start = 0; start < files.length; start += job.batch) {
    const inputs: LoadedInput[] = [];
    for (const file of files.slice(start, start + job.batch)) {
      try {
        const x = await loadInput(file, size, job.preprocess, job.maxPixels);
        inputs.push(x);
        if (!noted && !sceneLike(file, x, size)) {
          noted = true;
          job.progress.line(SHAPES_NOTE);
        }
      } catch (e) {
        job.progress.line(errorText(e, file));
        job.progress.tick(file, false);
      }
    }
    if (inputs.length === 0) continue;
    let results: Explanation[][] | undefined;
    try {
      results = await explainInputs(job, inputs);
    } catch {
      // isolated below
    }
    if (results === undefined) {
      // isolate the failing image(s) and method(s): one forward pass each
      for (const x of inputs) {
        try {
          const one = await explainOne(job, x);
          await finish(job, x, one.results, one.failures);
        } catch (e) {
          job.progress.line(errorText(e, x.file));
          job.progress.tick(x.file, false);
        }
      }
      continue;
    }
    for (let b = 0; b < inputs.length; b++) {
      const mine = results.map((list) => list.filter((e) => e.image === b));
      await finish(job, inputs[b], mine);
    }
  }
}
