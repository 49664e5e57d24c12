/**
 * Errors of the command-line tool and how any error becomes ONE line on stderr:
 * `gradual: <file>: <problem>`. A stack trace is printed only with `GRADUAL_DEBUG=1`.
 *
 * @module
 */

/** A wrong command line (unknown flag, bad value, unknown method ...): exit status 2. */
export class UsageError extends Error {
  /**
   * Creates a usage error.
   *
   * @param message one-line description
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A problem with one file (input, model, output): exit status 1. */
export class FileError extends Error {
  /** The file (or folder, or URL) concerned. */
  readonly file: string;
  /**
   * Creates an error about one file.
   *
   * @param file the file concerned
   * @param problem one-line description
   */
  constructor(file: string, problem: string) {
    super(problem);
    this.name = "FileError";
    this.file = file;
  }
}

/** Exit status for usage errors. */
export const EXIT_USAGE = 2;
/** Exit status when anything failed. */
export const EXIT_FAILURE = 1;

/** Error classes of the toolkit whose messages are already written for users. */
const KNOWN = new Set([
  "UsageError",
  "FileError",
  "PluginError",
  "OptionError",
  "ModelLoadError",
  "TargetError",
  "ImageError",
  "NpyError",
]);

/** Plain-language text for Deno's file-system errors. */
const FS_PROBLEMS: Record<string, string> = {
  NotFound: "no such file or directory",
  PermissionDenied: "permission denied",
  AlreadyExists: "already exists",
  IsADirectory: "is a directory",
  NotADirectory: "a path component is not a folder",
  NotCapable: "access not granted (run with --allow-read / --allow-write)",
};

function firstLine(s: string): string {
  const line = s.split(/\r?\n/).find((l) => l.trim().length > 0) ?? "";
  const t = line.trim();
  return t.length > 400 ? `${t.slice(0, 397)}...` : t;
}

/** The problem part of the message for any thrown value (one line, no file name). */
export function problemOf(e: unknown): string {
  if (e instanceof Error) {
    const fs = FS_PROBLEMS[e.name];
    if (fs !== undefined) return fs;
    const msg = firstLine(e.message);
    if (KNOWN.has(e.name)) return msg || e.name;
    return msg ? msg : e.name || "unknown error";
  }
  return firstLine(String(e)) || "unknown error";
}

/**
 * The one-line message for an error: `gradual: <file>: <problem>`, or `gradual: <problem>`
 * when no file is concerned. `file` is used when the error does not name one itself.
 */
export function formatError(e: unknown, file?: string): string {
  const where = e instanceof FileError ? e.file : file;
  let problem = problemOf(e);
  if (where !== undefined && problem.startsWith(`${where}: `)) {
    problem = problem.slice(where.length + 2);
  }
  return where === undefined ? `gradual: ${problem}` : `gradual: ${where}: ${problem}`;
}

/** Whether stack traces were asked for (`GRADUAL_DEBUG=1`). */
export function debugEnabled(): boolean {
  try {
    return Deno.env.get("GRADUAL_DEBUG") === "1";
  } catch {
    return false;
  }
}

/** The one-line message, plus the stack trace when `GRADUAL_DEBUG=1`. */
export function errorText(e: unknown, file?: string): string {
  const line = formatError(e, file);
  return debugEnabled() && e instanceof Error && e.stack ? `${line}\n${e.stack}` : line;
}

/** Writes {@linkcode errorText} to stderr. */
export function reportError(e: unknown, file?: string): void {
  console.error(errorText(e, file));
}

/** Exit status for an error that ends the run. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
}
