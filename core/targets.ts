/**
 * Targets: which class score each image's explanation is about.
 *
 * @module
 */
import { type Tensor, type Tensor1D, type Tensor2D, tf } from "./tensor.ts";

/** A score function: from the class scores `[N, classes]` to one score per image `[N]`. */
export type ScoreFn = (scores: Tensor2D) => Tensor1D;

/**
 * What to explain:
 * - `"top1"` (default): each image's highest-scoring class;
 * - a class index, or one index per image (`number[]`);
 * - a class name (needs `labels`), or one name per image;
 * - `{ topK: k }`: the k best classes of each image (k explanations per image);
 * - a {@linkcode ScoreFn}: a custom differentiable score of the model output.
 */
export type TargetSpec =
  | "top1"
  | number
  | string
  | readonly (number | string)[]
  | { readonly topK: number }
  | ScoreFn;

/** One round of targets: one class per image (or -1 with a custom score). */
export interface TargetRound {
  /** Class per image, -1 for a custom score function. */
  readonly classes: readonly number[];
  /** The signal to start the backward pass from, `[N, classes]` (caller disposes). */
  seed(scores: Tensor2D): Tensor;
}

/** Error for a target that does not fit the model or labels. */
export class TargetError extends Error {
  /** Creates the error.
   * @param message one-line description
   */
  constructor(message: string) {
    super(message);
    this.name = "TargetError";
  }
}

function classIndex(t: number | string, numClasses: number, labels?: readonly string[]): number {
  if (typeof t === "number") {
    if (!Number.isInteger(t) || t < 0 || t >= numClasses) {
      throw new TargetError(
        `target class ${t} is out of range (the model has ${numClasses} classes)`,
      );
    }
    return t;
  }
  if (/^\d+$/.test(t)) return classIndex(Number(t), numClasses, labels);
  if (!labels) throw new TargetError(`target '${t}' is a class name, but no labels were given`);
  const i = labels.findIndex((l) => l.toLowerCase() === t.toLowerCase());
  if (i < 0) {
    const near = labels.filter((l) => l.toLowerCase().includes(t.toLowerCase())).slice(0, 3);
    throw new TargetError(
      `unknown class name '${t}'${
        near.length ? `; did you mean ${near.map((n) => `'${n}'`).join(", ")}?` : ""
      }`,
    );
  }
  return i;
}

/** One-hot seed with 1.0 at each image's class. */
export function oneHotSeed(classes: readonly number[], numClasses: number): Tensor2D {
  return tf.tidy(() =>
    tf.oneHot(tf.tensor1d([...classes], "int32"), numClasses).cast("float32") as Tensor2D
  );
}

/** Class scores as rows, read from a tensor (synchronously) or given already read. */
export type ScoreRows = readonly (ArrayLike<number>)[];

/** Indices of the `k` largest values of a row, descending; ties in index order. */
function topIndices(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => (row[a] === row[b] ? a - b : row[b] - row[a]));
  return idx.slice(0, k);
}

/**
 * Resolves a {@linkcode TargetSpec} against a batch's scores into rounds (one round per
 * explanation per image: one for top1/index/name, k for top-k).
 *
 * Pass the scores already read (`await scores.array()`) to avoid a synchronous read,
 * which WebGPU in browsers does not allow; a tensor is read with `arraySync`.
 *
 * @param spec what to explain (default top-1)
 * @param scores class scores `[N, classes]`, as a tensor or as rows
 * @param labels class names, for name targets
 * @returns the rounds
 */
export function resolveTargets(
  spec: TargetSpec | undefined,
  scores: Tensor2D | ScoreRows,
  labels?: readonly string[],
): TargetRound[] {
  const rows: ScoreRows = scores instanceof tf.Tensor ? (scores.arraySync() as number[][]) : scores;
  const n = rows.length;
  const numClasses = scores instanceof tf.Tensor ? scores.shape[1] : (rows[0]?.length ?? 0);
  const fixed = (classes: number[]): TargetRound => ({
    classes,
    seed: () => oneHotSeed(classes, numClasses),
  });
  if (spec === undefined || spec === "top1") {
    return [fixed(rows.map((r) => topIndices(r, 1)[0]))];
  }
  if (typeof spec === "function") {
    return [{
      classes: new Array(n).fill(-1),
      seed: (s) => tf.grad((x: tf.Tensor) => spec(x as Tensor2D).sum())(s),
    }];
  }
  if (typeof spec === "object" && !Array.isArray(spec) && "topK" in spec) {
    const k = (spec as { topK: number }).topK;
    if (!Number.isInteger(k) || k < 1 || k > numClasses) {
      throw new TargetError(`top-k needs 1 <= k <= ${numClasses}, got ${k}`);
    }
    const idx = rows.map((r) => topIndices(r, k));
    return Array.from({ length: k }, (_, j) => fixed(idx.map((row) => row[j])));
  }
  if (Array.isArray(spec)) {
    if (spec.length !== n) {
      throw new TargetError(`got ${spec.length} targets for ${n} images`);
    }
    return [fixed(spec.map((t) => classIndex(t, numClasses, labels)))];
  }
  if (typeof spec === "string" && /^top(\d+)$/.test(spec)) {
    return resolveTargets({ topK: Number(spec.slice(3)) }, rows, labels);
  }
  const c = classIndex(spec as number | string, numClasses, labels);
  return [fixed(new Array(n).fill(c))];
}
