/**
 * Output files: the output folder check, atomic writes (write a hidden temporary file in
 * the same folder, then rename it, so a reader or a crash never sees half a file) and
 * collision-free output names.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { FileError, problemOf } from "./_errors.ts";

/** Marker in the names of temporary files (skipped by discovery, removed on failure). */
export const TEMP_MARK = ".gradual-tmp-";

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
 * Creates the output folder if needed and checks that files can be written in it;
 * throws a {@linkcode FileError} naming the folder otherwise.
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
    `.${basename(path)}${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`,
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
 * The stem of every output of an input file: its name without extension plus a hash of
 * its folder, so `a/x.png` and `b/x.png` never collide (`x_1f3a2c`), and names stay the
 * same from run to run (for `--skip-existing`).
 */
export function outputStem(file: string): string {
  const base = basename(file);
  const dot = base.lastIndexOf(".");
  const name = dot > 0 ? base.slice(0, dot) : base;
  return `${safeName(name)}_${shortHash(dirname(resolve(file)))}`;
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
