/**
 * The one place the CLI parses its command line. Built on `node:util`'s `parseArgs` today;
 * switching to `@std/cli`'s `parseArgs` later only changes this module.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./_errors.ts";

/** How one flag is read. */
export interface FlagSpec {
  /** `boolean` flags take no value; `string` flags take one. */
  readonly type: "string" | "boolean";
  /** One-letter alias, e.g. `o` for `--out`. */
  readonly short?: string;
  /** Whether the flag may repeat (values are collected in order). */
  readonly multiple?: boolean;
}

/** Parsed flags: a string, a list of strings (repeatable flags), or a boolean. */
export type FlagValues = Record<string, string | string[] | boolean | undefined>;

/** The result of {@linkcode parseFlags}. */
export interface ParsedArgs {
  /** Flag values by long name. */
  readonly flags: FlagValues;
  /** Arguments that are not flags, in order. */
  readonly positionals: string[];
}

/**
 * Parses `argv` against `spec`. Unknown flags and missing values raise a
 * {@linkcode UsageError} (exit status 2).
 */
export function parseFlags(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagSpec>>,
): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: spec as Record<string, FlagSpec>,
      allowPositionals: true,
      strict: true,
    });
    return { flags: values as FlagValues, positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new UsageError(msg.replace(/\. To specify a positional argument.*$/, ""));
  }
}

/** A string flag's value (the last one if repeated), or `fallback`. */
export function stringFlag(flags: FlagValues, name: string, fallback: string): string;
/** A string flag's value (the last one if repeated), or undefined. */
export function stringFlag(flags: FlagValues, name: string): string | undefined;
export function stringFlag(flags: FlagValues, name: string, fallback?: string): string | undefined {
  const v = flags[name];
  if (Array.isArray(v)) return v.length ? v[v.length - 1] : fallback;
  return typeof v === "string" ? v : fallback;
}

/** All values of a repeatable flag, each also split on commas (`--method a,b --method c`). */
export function listFlag(flags: FlagValues, name: string): string[] {
  const v = flags[name];
  const raw = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  return raw.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** All values of a repeatable flag, unsplit. */
export function repeatedFlag(flags: FlagValues, name: string): string[] {
  const v = flags[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

/** A boolean flag. */
export function boolFlag(flags: FlagValues, name: string): boolean {
  return flags[name] === true;
}

/** A numeric flag within `[min, max]` (integers only when `integer`), or `fallback`. */
export function numberFlag(
  flags: FlagValues,
  name: string,
  fallback: number,
  range: { min: number; max: number; integer?: boolean },
): number {
  const s = stringFlag(flags, name);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (
    s.trim() === "" || !Number.isFinite(n) || n < range.min || n > range.max ||
    (range.integer && !Number.isInteger(n))
  ) {
    const kind = range.integer ? "an integer" : "a number";
    throw new UsageError(`--${name} must be ${kind} from ${range.min} to ${range.max}, got '${s}'`);
  }
  return n;
}
