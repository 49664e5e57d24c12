/**
 * Mean with a percentile-bootstrap confidence interval, deterministic for a given seed.
 *
 * @module
 */

/** A mean with its bootstrap confidence interval. */
export interface MeanCI {
  /** Mean of the finite values. */
  mean: number;
  /** Lower end of the confidence interval. */
  lo: number;
  /** Upper end of the confidence interval. */
  hi: number;
  /** Number of finite values the statistics are over. */
  n: number;
}

/** Options of {@linkcode bootstrapMean}. */
export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 1000). */
  resamples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  /** PRNG seed (default 0); the same seed and values always give the same interval. */
  seed?: number;
}

/**
 * A small deterministic PRNG (the mulberry32 recurrence over a hashed 32-bit seed) returning
 * floats in [0, 1). Not cryptographic; identical in every JavaScript engine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { seededRandom } from "./bootstrap.ts";
 * const a = seededRandom(7), b = seededRandom(7);
 * assert.equal(a(), b()); // the same seed, the same sequence
 * ```
 *
 * @param seed any number (only its 32-bit integer part is used)
 * @returns a function giving the next value of the stream
 */
export function seededRandom(seed: number): () => number {
  let s = Math.imul((seed | 0) ^ 0x5bd1e995, 0x27d4eb2d);
  s = (s ^ (s >>> 15)) >>> 0;
  return (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Linear-interpolation quantile (NumPy's default) of sorted values. */
function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Mean of `values` and its percentile-bootstrap confidence interval: `resamples` times,
 * draw `n` values with replacement (seeded PRNG) and take their mean; the interval is the
 * `(1 - level) / 2` and `(1 + level) / 2` quantiles of those means (linear interpolation).
 * Non-finite values (NaN, ±Infinity) are left out and not counted in `n`. With no value
 * every field but `n` is NaN; with one value the interval is that value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapMean } from "./bootstrap.ts";
 * const r = bootstrapMean([0, 1, 1, 0, 1, 1, 1, 0], { seed: 1 });
 * assert.equal(r.mean, 0.625);
 * assert.ok(r.lo <= r.mean && r.mean <= r.hi);
 * ```
 *
 * @param values per-sample measurements
 * @param opts resamples (default 1000), level (default 0.95), seed (default 0)
 * @returns mean, interval and count
 */
export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions = {}): MeanCI {
  const resamples = opts.resamples ?? 1000;
  const level = opts.level ?? 0.95;
  if (!(Number.isInteger(resamples) && resamples >= 1)) {
    throw new RangeError("bootstrapMean: resamples must be a positive integer");
  }
  if (!(level > 0 && level < 1)) throw new RangeError("bootstrapMean: level must be in (0, 1)");
  const xs: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) xs.push(values[i]);
  const n = xs.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  let sum = 0;
  for (const v of xs) sum += v;
  const mean = sum / n;
  if (n === 1) return { mean, lo: mean, hi: mean, n };
  const rand = seededRandom(opts.seed ?? 0);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += xs[Math.min(n - 1, Math.floor(rand() * n))];
    means[r] = s / n;
  }
  means.sort();
  const a = (1 - level) / 2;
  // Guard against rounding putting the mean a hair outside a degenerate interval.
  const lo = Math.min(quantileSorted(means, a), mean);
  const hi = Math.max(quantileSorted(means, 1 - a), mean);
  return { mean, lo, hi, n };
}
