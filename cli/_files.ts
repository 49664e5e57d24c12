/**
 * Input discovery: files, folders (searched recursively) and glob patterns, sorted, with
 * optional sharding (`--shard K/N`) so that N processes share a corpus without overlap.
 *
 * @module
 */
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

/** Every regular file under `dir` (recursively, hidden entries skipped), unsorted. */
async function walk(dir: string, maxDepth = Infinity, depth = 1): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".")) continue;
    const p = joinPath(dir, entry.name);
    let isFile = entry.isFile;
    let isDir = entry.isDirectory;
    if (entry.isSymlink) {
      const st = await statOf(p);
      isFile = st?.isFile ?? false;
      isDir = st?.isDirectory ?? false;
    }
    if (isFile) out.push(p);
    else if (isDir && depth < maxDepth) out.push(...await walk(p, maxDepth, depth + 1));
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

async function expandGlob(pattern: string, extensions: readonly string[]): Promise<string[]> {
  const parts = pattern.split("/");
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  const base = parts.slice(0, firstGlob).join("/") || (pattern.startsWith("/") ? "/" : ".");
  const rest = parts.slice(firstGlob);
  const deep = rest.some((p) => p.includes("**"));
  const st = await statOf(base);
  if (!st?.isDirectory) return [];
  const re = globToRegExp(pattern.startsWith("./") ? pattern.slice(2) : pattern);
  const found = await walk(base, deep ? Infinity : rest.length);
  return found.filter((f) => re.test(f) && extensions.includes(extOf(f)));
}

/**
 * Finds the files named by `args`: files as given, folders recursively (files with one of
 * `extensions`), globs matched against paths. Missing paths, empty folders and globs that
 * match nothing become problems; the rest is sorted and deduplicated.
 */
export async function discover(
  args: readonly string[],
  extensions: readonly string[] = IMAGE_EXTENSIONS,
): Promise<Discovery> {
  const files = new Set<string>();
  const problems: DiscoveryProblem[] = [];
  for (const arg of args) {
    const st = await statOf(arg);
    if (st?.isFile) {
      files.add(arg);
    } else if (st?.isDirectory) {
      const found = (await walk(arg)).filter((f) => extensions.includes(extOf(f)));
      if (found.length === 0) {
        problems.push({
          file: arg,
          problem: `no image files in this folder (looked for .${extensions.join(", .")})`,
        });
      }
      found.forEach((f) => files.add(f));
    } else if (st !== undefined) {
      problems.push({ file: arg, problem: "not a regular file or folder" });
    } else if (GLOB_CHARS.test(arg)) {
      const found = await expandGlob(arg, extensions);
      if (found.length === 0) problems.push({ file: arg, problem: "no files match this pattern" });
      found.forEach((f) => files.add(f));
    } else {
      problems.push({ file: arg, problem: "no such file or directory" });
    }
  }
  const sorted = [...files].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { files: sorted, problems };
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
