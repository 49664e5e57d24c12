/**
 * Output files: the output folder check, atomic writes (write a hidden temporary file in
 * the same folder, then rename it, so a reader or a crash never sees half a file) and
 * collision-free output names.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import type { Explanation } from "../core/explain.ts";
import type { Discovery } from "./_files.ts";
import { FileError, problemOf } from "./_errors.ts";

/** Marker in the names of temporary files (skipped by discovery, removed on failure). */
export const TEMP_MARK = ".gradual-tmp-";

/** A temporary file of ours: `.<name>.gradual-tmp-<pid>-<8 hex>` (or the older `-<8 hex>`). */
const TEMP_NAME = /^\..*\.gradual-tmp-(?:\d+-)?[0-9a-f]{8}$/;

/**
 * Temporaries at least this old are stale: a write takes seconds, so one this old was left
 * by a process that was killed between writing and renaming. (Whether that process still
 * runs cannot be asked without more permissions than the CLI has.)
 */
const STALE_MS = 10 * 60 * 1000;

const inFlight = new Set<string>();

/** Removes the temporary files of writes still in progress (e.g. on Ctrl-C). */
export function removeTempFiles(): void {
  for (const t of inFlight) {
    try {
      Deno.removeSync(t);
    } catch {
      // already gone
    }
  }
  inFlight.clear();
}

/**
 * Removes stale temporary files of our own naming from `dir` (left by a process that was
 * killed between writing and renaming): hidden files `.<name>.gradual-tmp-…` at least ten
 * minutes old. Returns how many were removed.
 */
export async function removeStaleTemps(dir: string, now = Date.now()): Promise<number> {
  let removed = 0;
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) entries.push(e);
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile || !TEMP_NAME.test(e.name)) continue;
    const path = join(dir, e.name);
    try {
      const age = now - ((await Deno.lstat(path)).mtime?.getTime() ?? now);
      if (age < STALE_MS) continue;
      await Deno.remove(path);
      removed++;
    } catch {
      // vanished meanwhile (its writer renamed it) or not removable: leave it
    }
  }
  return removed;
}

/**
 * Creates the output folder if needed, checks that files can be written in it and removes
 * stale temporaries of ours ({@linkcode removeStaleTemps}); throws a {@linkcode FileError}
 * naming the folder otherwise.
 */
export async function prepareOutDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new FileError(dir, `cannot create the output folder (${problemOf(e)})`);
  }
  const probe = join(dir, `${TEMP_MARK}probe-${crypto.randomUUID().slice(0, 8)}`);
  try {
    await Deno.writeFile(probe, new Uint8Array(0));
  } catch (e) {
    throw new FileError(dir, `the output folder is not writable (${problemOf(e)})`);
  }
  await Deno.remove(probe).catch(() => undefined);
  await removeStaleTemps(dir);
}

/**
 * Writes `data` to `path` atomically: to a temporary name in the same folder first, then
 * renamed over `path`. On failure nothing is left behind and a {@linkcode FileError}
 * naming `path` is thrown.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = join(
    dirname(path),
    `.${basename(path)}${TEMP_MARK}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
  );
  inFlight.add(tmp);
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => undefined);
    throw new FileError(path, `cannot write (${problemOf(e)})`);
  } finally {
    inFlight.delete(tmp);
  }
}

/** 32-bit FNV-1a hash as 6 hex digits (a short, stable disambiguator). */
export function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0").slice(0, 6);
}

/** Replaces characters that are awkward in file names. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._+-]+/g, "_").replace(/^\.+/, "_").slice(0, 80);
}

/**
 * The stem of every output of an input file: its name without extension (letters, digits,
 * `_`, `+`, `-` only, at most 80 characters) plus a hash of its absolute path, so `a/x.png`,
 * `b/x.png`, `x.jpg`, `café.png` and `cafè.png` get different stems (`x_1f3a2c`), and names
 * stay the same from run to run (for `--skip-existing`). A stem never contains a dot, so an
 * output name's stem is everything before its first dot.
 */
export function outputStem(file: string): string {
  const base = basename(file);
  const dot = base.lastIndexOf(".");
  const name = dot > 0 ? base.slice(0, dot) : base;
  return `${name.replace(/[^A-Za-z0-9_+-]+/g, "_").slice(0, 80)}_${shortHash(resolve(file))}`;
}

/** The stem of an output file name (everything before the first dot). */
export function stemOfName(name: string): string {
  const dot = name.indexOf(".");
  return dot < 0 ? name : name.slice(0, dot);
}

/**
 * Inputs whose outputs would share a stem (a hash collision), as `[first, second]` pairs;
 * the commands refuse to start when there is any, before writing anything.
 */
export function stemCollisions(files: readonly string[]): [string, string][] {
  const seen = new Map<string, string>();
  const out: [string, string][] = [];
  for (const f of files) {
    const stem = outputStem(f);
    const other = seen.get(stem);
    if (other !== undefined && resolve(other) !== resolve(f)) out.push([other, f]);
    else seen.set(stem, f);
  }
  return out;
}

/** `grad-cam` or `grad-cam+gradual`. */
export function variantName(method: string, extrapolator?: string): string {
  return extrapolator ? `${method}+${extrapolator}` : method;
}

/** `c3` or `c3-tabby_cat` for a class index and optional name. */
export function classTag(index: number, name?: string): string {
  if (index < 0) return "custom";
  return name ? `c${index}-${safeName(name)}` : `c${index}`;
}

/** `<stem>.<variant>.<class>.<suffix>`, e.g. `x_1f3a2c.grad-cam+gradual.c3.overlay.png`. */
export function outputName(stem: string, variant: string, cls: string, suffix: string): string {
  return `${stem}.${safeName(variant)}.${cls}.${suffix}`;
}

/** Names of the files in `dir` (empty when it does not exist yet). */
export async function listNames(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for await (const e of Deno.readDir(dir)) names.add(e.name);
  } catch {
    // no folder yet: nothing exists
  }
  return names;
}

/**
 * Prints discovery's warnings (symbolic-link loops) and checks that there is work: returns
 * false, after printing why, when there is no input, or when two inputs would get the same
 * output names (nothing has been written then).
 */
export function reportDiscovery(
  found: Discovery,
  files: readonly string[],
  quiet: boolean,
): boolean {
  if (!quiet) {
    found.warnings.forEach((w) => console.error(`gradual: warning: ${w.file}: ${w.problem}`));
  }
  if (files.length === 0) {
    found.problems.forEach((p) => console.error(`gradual: ${p.file}: ${p.problem}`));
    if (found.problems.length === 0) console.error("gradual: no input files in this shard");
    return false;
  }
  const clashes = stemCollisions(found.files);
  for (const [a, b] of clashes) {
    console.error(
      `gradual: ${b}: its outputs would have the same names as those of ${a}; rename one`,
    );
  }
  return clashes.length === 0;
}

/**
 * Why an explanation's map cannot be written (NaN or infinite values), naming the method,
 * extrapolator and class; undefined when the map is finite.
 */
export function nonFiniteProblem(e: Explanation): string | undefined {
  let bad = 0;
  for (const v of e.map) if (!Number.isFinite(v)) bad++;
  if (bad === 0) return undefined;
  const what = variantName(e.method, e.extrapolator);
  return `${what} (class ${e.classIndex}) gave a map with ${bad} of ${e.map.length} values ` +
    `not finite (NaN or infinity); not written`;
}
