/**
 * Timing helpers shared by the micro-benchmarks (`kernels_bench.ts`, `winograd_bench.ts`).
 *
 * @module
 */
import { tf } from "../core/tensor.ts";

/** Median of `v` (mean of the middle two for an even count). */
export function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A cheap deterministic tensor with values in [lo, hi) (tf.random* is slow for 10^8 values). */
export function filled(shape: number[], lo: number, hi: number, seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = lo + (hi - lo) * (s / 4294967296);
  }
  return tf.tensor(data, shape);
}

/** Times `fns` interleaved (1 warm-up each, then `reps` rounds); median ms per function. */
export function timeInterleaved(fns: (() => void)[], reps: number): number[] {
  fns.forEach((f) => f());
  const times = fns.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      f();
      times[i].push(performance.now() - t0);
    });
  }
  return times.map(median);
}
