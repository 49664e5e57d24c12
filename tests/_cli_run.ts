/**
 * Test helper: runs the `gradual` CLI (`cli/main.ts`) in a child Deno process from the
 * repository root, with read, write and env permissions, and returns its exit code and output.
 *
 * @module
 */

/** What a CLI run printed, and its exit code. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Runs `gradual ARGS` (no colours). */
export async function gradual(args: readonly string[]): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("../cli/main.ts", import.meta.url).pathname,
      ...args,
    ],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
