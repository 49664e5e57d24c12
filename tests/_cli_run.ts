/**
 * Test helpers: run Deno (or the `gradual` CLI, `cli/main.ts`) in a child process from the
 * repository root (or another folder) and return its exit code and output.
 *
 * @module
 */

/** What a child process printed, and its exit code. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Where and with what environment a child runs (default: the repository root, no colours). */
export interface RunOptions {
  /** Working folder. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** The repository root. */
export const ROOT: string = new URL("../", import.meta.url).pathname;

/** Runs `deno ARGS` in a child process. */
export async function runDeno(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: opts.cwd ?? ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `gradual ARGS` with read, write and env permissions (no colours). */
export function gradual(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  const main = new URL("../cli/main.ts", import.meta.url).pathname;
  return runDeno(
    ["run", "--quiet", "--allow-read", "--allow-write", "--allow-env", main, ...args],
    opts,
  );
}
