/**
 * `--backend webgpu` without an adapter: the CLI and the GPU check script say so in one line
 * and exit with status 2. The adapter is hidden by asking Deno's WebGPU for a platform API
 * that Linux and macOS lack (`DENO_WEBGPU_BACKEND=dx12`); on Windows the test is skipped.
 * (With an adapter, `deno task webgpu-check` compares the maps with wasm's.)
 */
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);
const HIDE = { DENO_WEBGPU_BACKEND: "dx12" };

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: HIDE,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test({
  name: "webgpu without an adapter: one line and exit 2 (CLI and bench/webgpu_check.ts)",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const cli = await run([
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "cli/main.ts",
      "eval",
      "--model",
      "tests/fixtures/models/vgg_tiny/tfjs/model.json",
      "--n",
      "2",
      "--backend",
      "webgpu",
    ]);
    assertEquals(cli.code, 2, cli.err);
    const lines = cli.err.trim().split("\n").filter((l) => l.startsWith("gradual:"));
    assertEquals(lines.length, 1, cli.err);
    assert(lines[0].startsWith("gradual: --backend webgpu: no WebGPU adapter found"), lines[0]);
    assertEquals(cli.out, "");

    const check = await run([
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys=cpus",
      "bench/webgpu_check.ts",
    ]);
    assertEquals(check.code, 2, check.err);
    assertEquals(check.out.trim().split("\n").length, 1);
    assert(check.out.startsWith("webgpu_check: no adapter"), check.out);
  },
});
