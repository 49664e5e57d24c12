/**
 * Input discovery: files, folders (searched recursively) and glob patterns, sorted, with
 * optional sharding (`--shard K/N`) so that N processes share a corpus without overlap.
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "./_errors.ts";

/** A path the user gave that yields no usable file. */
export interface DiscoveryProblem {
  /** The argument (or file) concerned. */
  readonly file: string;
  /** One-line description. */
  readonly problem: string;
}

/** What {@linkcode discover} found. */
export interface Discovery {
  /** Files to process, sorted, without duplicates. */
  readonly files: string[];
  /** Arguments that yielded nothing (missing file, empty folder, glob without match). */
  readonly problems: DiscoveryProblem[];
  /** Entries skipped with a warning (symbolic-link loops, unreadable folders). */
  readonly warnings: DiscoveryProblem[];
  /** Files inside the searched folders skipped because of their extension. */
  readonly unsupported: number;
  /** Files skipped because they lie inside the output folder. */
  readonly inOutput: number;
}

/** Options of {@linkcode discover}. */
export interface DiscoverOptions {
  /** A folder never searched and never taken from (the output folder). */
  readonly exclude?: string;
}

/** Extensions picked up inside folders and by globs (files named directly are always taken). */
export const IMAGE_EXTENSIONS: readonly string[] = ["png", "jpg", "jpeg"];

const GLOB_CHARS = /[*?[{]/;

function extOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

function joinPath(dir: string, name: string): string {
  return dir === "." ? name : dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** Whether `path` names something (following links); false when missing. */
async function statOf(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

/** What a folder walk collects. */
interface WalkState {
  /** Real paths of the folders entered (a link back to one of them is a loop). */
  readonly seen: Set<string>;
  readonly warnings: DiscoveryProblem[];
  /** Resolved folder never entered. */
  readonly exclude?: string;
}

function isLoop(e: unknown): boolean {
  return e instanceof Deno.errors.FilesystemLoop ||
    (e instanceof Error && /os error 40\b/.test(e.message));
}

/**
 * Every regular file under `dir` (recursively, hidden entries skipped), unsorted. Symbolic
 * links are followed once: a link loop, a link to itself and a link back to a folder already
 * entered are skipped with a warning, and so is an unreadable subfolder.
 */
async function walk(dir: string, st: WalkState, maxDepth = Infinity, depth = 1): Promise<string[]> {
  const out: string[] = [];
  let real: string;
  try {
    real = await Deno.realPath(dir);
  } catch (e) {
    st.warnings.push({
      file: dir,
      problem: isLoop(e) ? "symbolic link loop; skipped" : `cannot read (${(e as Error).name})`,
    });
    return out;
  }
  if (st.exclude !== undefined && real === st.exclude) return out;
  if (st.seen.has(real)) {
    if (depth > 1) {
      st.warnings.push({
        file: dir,
        problem: "symbolic link loop (a folder already searched); skipped",
      });
    }
    return out;
  }
  st.seen.add(real);
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
  } catch (e) {
    if (depth === 1) throw e;
    st.warnings.push({ file: dir, problem: `cannot read this folder (${(e as Error).name})` });
    return out;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const p = joinPath(dir, entry.name);
    let isFile = entry.isFile;
    let isDir = entry.isDirectory;
    if (entry.isSymlink) {
      let info: Deno.FileInfo | undefined;
      try {
        info = await statOf(p);
      } catch (e) {
        if (!isLoop(e)) throw e;
        st.warnings.push({ file: p, problem: "symbolic link loop; skipped" });
        continue;
      }
      isFile = info?.isFile ?? false;
      isDir = info?.isDirectory ?? false;
    }
    if (isFile) out.push(p);
    else if (isDir && depth < maxDepth) out.push(...await walk(p, st, maxDepth, depth + 1));
  }
  return out;
}

/**
 * Converts a glob (`*`, `?`, `**`, `[abc]`, `{a,b}`) to a regular expression over paths
 * with `/` separators.
 */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  let inBraces = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      re += slash ? "(?:[^/]*(?:/|$))*" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else if (c === "{") {
      inBraces = true;
      re += "(?:";
    } else if (c === "}" && inBraces) {
      inBraces = false;
      re += ")";
    } else if (c === "," && inBraces) re += "|";
    else re += c.replace(/[.+^$()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

async function expandGlob(
  pattern: string,
  extensions: readonly string[],
  st: WalkState,
): Promise<string[]> {
  const parts = pattern.split("/");
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  const base = parts.slice(0, firstGlob).join("/") || (pattern.startsWith("/") ? "/" : ".");
  const rest = parts.slice(firstGlob);
  const deep = rest.some((p) => p.includes("**"));
  const info = await statOf(base);
  if (!info?.isDirectory) return [];
  const re = globToRegExp(pattern.startsWith("./") ? pattern.slice(2) : pattern);
  const found = await walk(base, st, deep ? Infinity : rest.length);
  return found.filter((f) => re.test(f) && extensions.includes(extOf(f)));
}

/**
 * Finds the files named by `args`: files as given, folders recursively (files with one of
 * `extensions`; the others are counted as unsupported), globs matched against paths.
 * Missing paths, empty folders and globs that match nothing become problems; symbolic-link
 * loops become warnings; nothing is taken from inside `opts.exclude` (the output folder, so
 * a run never explains its own outputs). The rest is sorted and deduplicated.
 */
export async function discover(
  args: readonly string[],
  extensions: readonly string[] = IMAGE_EXTENSIONS,
  opts: DiscoverOptions = {},
): Promise<Discovery> {
  const files = new Set<string>();
  const problems: DiscoveryProblem[] = [];
  const warnings: DiscoveryProblem[] = [];
  let unsupported = 0;
  let inOutput = 0;
  let exclude: string | undefined;
  if (opts.exclude !== undefined) {
    try {
      exclude = await Deno.realPath(opts.exclude);
    } catch {
      exclude = resolve(opts.exclude); // not created yet
    }
  }
  const inside = async (f: string): Promise<boolean> => {
    if (exclude === undefined) return false;
    let real: string;
    try {
      real = await Deno.realPath(f);
    } catch {
      real = resolve(f);
    }
    return real === exclude || real.startsWith(exclude.endsWith("/") ? exclude : `${exclude}/`);
  };
  const take = async (found: string[]): Promise<void> => {
    for (const f of found) {
      if (await inside(f)) inOutput++;
      else files.add(f);
    }
  };
  for (const arg of args) {
    let st: Deno.FileInfo | undefined;
    try {
      st = await statOf(arg);
    } catch (e) {
      if (!isLoop(e)) throw e;
      problems.push({ file: arg, problem: "symbolic link loop" });
      continue;
    }
    const state: WalkState = { seen: new Set(), warnings, exclude };
    if (st?.isFile) {
      if (await inside(arg)) {
        problems.push({ file: arg, problem: "inside the output folder; not taken as input" });
      } else files.add(arg);
    } else if (st?.isDirectory) {
      if (await inside(arg)) {
        problems.push({ file: arg, problem: "this is the output folder (or inside it)" });
        continue;
      }
      const all = await walk(arg, state);
      const found = all.filter((f) => extensions.includes(extOf(f)));
      unsupported += all.length - found.length;
      if (found.length === 0) {
        problems.push({
          file: arg,
          problem: `no image files in this folder (looked for .${extensions.join(", .")})`,
        });
      }
      await take(found);
    } else if (st !== undefined) {
      problems.push({ file: arg, problem: "not a regular file or folder" });
    } else if (GLOB_CHARS.test(arg)) {
      const found = await expandGlob(arg, extensions, state);
      if (found.length === 0) problems.push({ file: arg, problem: "no files match this pattern" });
      await take(found);
    } else {
      problems.push({ file: arg, problem: "no such file or directory" });
    }
  }
  const sorted = [...files].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { files: sorted, problems, warnings, unsupported, inOutput };
}

/** Summary notes for what discovery skipped (unsupported files, files in the output folder). */
export function skippedNotes(found: Discovery): string[] {
  const notes: string[] = [];
  const n = (k: number, what: string): string => `${k} ${what}${k === 1 ? "" : "s"}`;
  if (found.unsupported) {
    notes.push(`${n(found.unsupported, "unsupported file")} in folders skipped`);
  }
  if (found.inOutput) notes.push(`${n(found.inOutput, "file")} in the output folder skipped`);
  return notes;
}

/** A shard: this process takes files `i` with `i % count === index`. */
export interface Shard {
  /** Zero-based shard index K. */
  readonly index: number;
  /** Number of shards N. */
  readonly count: number;
}

/** Parses `K/N` (0 <= K < N); throws a {@linkcode UsageError} otherwise. */
export function parseShard(spec: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UsageError(`--shard must be K/N with 0 <= K < N (e.g. 0/4), got '${spec}'`);
  }
  return { index, count };
}

/** The files of one shard (round-robin over the sorted list, so shards stay balanced). */
export function applyShard<T>(files: readonly T[], shard: Shard | undefined): T[] {
  if (!shard) return [...files];
  return files.filter((_, i) => i % shard.count === shard.index);
}
