/**
 * The batch loop shared by `explain` and `compare`: read a batch of inputs, run every
 * requested method from ONE forward pass (`explainMany`), hand each image's explanations
 * to the command, and keep going when one file fails (a failing batch is retried image by
 * image, so one bad image or a throwing plugin only fails that image).
 *
 * @module
 */
import { explainMany, type ExplainRequest, type Explanation } from "../core/explain.ts";
import type { PreprocessPreset } from "../core/image.ts";
import type { TargetSpec } from "../core/targets.ts";
import { tf } from "../core/tensor.ts";
import { errorText } from "./_errors.ts";
import { type LoadedInput, loadInput } from "./_inputs.ts";
import type { LoadedModel } from "./_model.ts";
import type { Progress } from "./_progress.ts";

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
): Promise<Explanation[][]> {
  const [h, w, c] = job.model.session.inputSize;
  const data = new Float32Array(inputs.length * h * w * c);
  inputs.forEach((x, i) => data.set(x.input, i * h * w * c));
  const x = tf.tensor4d(data, [inputs.length, h, w, c]);
  try {
    return await explainMany(job.model.session, x, job.requests, {
      targets: job.target,
      labels: job.model.labels,
    });
  } finally {
    x.dispose();
  }
}

async function finish(job: BatchJob, input: LoadedInput, results: Explanation[][]): Promise<void> {
  try {
    await job.handle(input, results);
    job.progress.tick(input.file, true);
  } catch (e) {
    job.progress.line(errorText(e, input.file));
    job.progress.tick(input.file, false);
  }
}

/** Runs the job over `files`, `batch` at a time. */
export async function runBatches(job: BatchJob, files: readonly string[]): Promise<void> {
  const size = job.model.session.inputSize;
  for (let start = 0; start < files.length; start += job.batch) {
    const inputs: LoadedInput[] = [];
    for (const file of files.slice(start, start + job.batch)) {
      try {
        inputs.push(await loadInput(file, size, job.preprocess));
      } catch (e) {
        job.progress.line(errorText(e, file));
        job.progress.tick(file, false);
      }
    }
    if (inputs.length === 0) continue;
    let results: Explanation[][] | undefined;
    try {
      results = await explainInputs(job, inputs);
    } catch (e) {
      if (inputs.length === 1) {
        job.progress.line(errorText(e, inputs[0].file));
        job.progress.tick(inputs[0].file, false);
        continue;
      }
    }
    if (results === undefined) {
      // isolate the failing image(s): one forward pass each
      for (const x of inputs) {
        try {
          const one = await explainInputs(job, [x]);
          await finish(job, x, one);
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
