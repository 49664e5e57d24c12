/**
 * Explanation-quality metrics: pointing game (TorchRay protocol, with a documented tie
 * rule), energy-based pointing game, RISE deletion / insertion curves (batched model
 * scoring), a centre-baseline map, bootstrap confidence intervals, and
 * {@linkcode evaluate} tying them together over a labelled dataset.
 *
 * Pure functions over typed arrays plus batched tfjs scoring; no file system or Deno APIs,
 * so the module runs in browsers as well as in Deno.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapMean, centreBaseline, pointingGame } from "./mod.ts";
 * const h = 8, w = 8;
 * const mask = new Uint8Array(h * w);
 * mask[3 * w + 4] = 1;
 * const score = pointingGame(centreBaseline(h, w), mask, h, w, { tolerance: 1 });
 * assert.equal(score, 0.25); // the centre's four tied maxima, one within 1 px of the object
 * assert.equal(bootstrapMean([score, 1, 0], { seed: 1 }).mean, 1.25 / 3);
 * ```
 *
 * @module
 */
export * from "./pointing.ts";
export * from "./deletion_insertion.ts";
export * from "./baseline.ts";
export * from "./bootstrap.ts";
export * from "./evaluate.ts";
