/**
 * The test suite's assertions, in one place. JSR (and so `@std/assert`) cannot be reached
 * from our machines; these wrap `node:assert/strict`, which is built into Deno. Switching to
 * `@std/assert` later is a change of this one module.
 *
 * @module
 */
import * as nodeAssert from "node:assert/strict";

/** Asserts deep equality. */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts a condition. */
export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

/** Asserts |actual - expected| <= tol. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tol = 1e-7,
  msg?: string,
): void {
  nodeAssert.ok(
    Math.abs(actual - expected) <= tol,
    msg ?? `expected ${actual} to be within ${tol} of ${expected}`,
  );
}

/** Asserts that `fn` throws (or rejects) with a message matching `pattern`. */
export async function assertRejects(
  fn: () => unknown,
  pattern: RegExp,
): Promise<void> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  nodeAssert.ok(err instanceof Error, "expected an error");
  nodeAssert.match((err as Error).message, pattern);
}
