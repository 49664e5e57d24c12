/**
 * Peak RSS of a process that only builds VGG16 (224x224, portable weights) and runs one
 * saliency operation at batch 1: the figure behind the "peak RSS for VGG16 batch-1 Grad-CAM"
 * target. Each thread count runs in a fresh `bench/_worker.ts` process (init, `--reps` calls of
 * `--op`, exit), so nothing else the full bench does (c-EB's cached weights, batch 8) counts.
 *
 * Prints, per thread count, the peak RSS after the model build (including one forward pass
 * on the bench input) and at exit, the build time and the wall time of every call.
 *
 * Usage: `deno run --allow-read --allow-run bench/peak_rss.ts [--threads 1,2] [--op gradcam]
 * [--reps 3] [--winograd auto] [--json]` (`--op`: fwd, gradcam, gradual-gradcam, ceb,
 * gradual-ceb; `--winograd`: auto, all, off).
 *
 * @module
 */

/** What one worker process measured. */
export interface PeakRssResult {
  /** Requested wasm threads. */
  threads: number;
  /** Threads the worker actually used. */
  threadsInUse: number;
  /** Operation timed. */
  op: string;
  /** Model build time, including the wasm backend start (ms). */
  buildMs: number;
  /** Peak RSS after the build and one forward pass (MiB). */
  peakAfterBuildMiB: number;
  /** Peak RSS of the whole process at exit (MiB). */
  peakMiB: number;
  /** Wall time of each call (ms). */
  callMs: number[];
}

function opt(name: string, d: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : d;
}

/** Runs one worker process: init, `reps` calls of `op` at batch 1, exit. */
export async function measurePeakRss(
  threads: number,
  op: string,
  reps: number,
  winograd = "auto",
): Promise<PeakRssResult> {
  const worker = new URL("_worker.ts", import.meta.url).pathname;
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      worker,
      "--model",
      "vgg16",
      "--threads",
      String(threads),
      "--winograd",
      winograd,
    ],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const cmds = [{ cmd: "init" }, ...Array.from({ length: reps }, () => ({ cmd: "run", op }))];
  cmds.push({ cmd: "exit" });
  const writer = proc.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(cmds.map((c) => JSON.stringify(c)).join("\n") + "\n"),
  );
  await writer.close();
  const { stdout } = await proc.output();
  const answers = new TextDecoder().decode(stdout).split("\n")
    .filter((l) => l.startsWith("@@"))
    .map((l) => JSON.parse(l.slice(2)) as Record<string, unknown>);
  const bad = answers.find((a) => a.ok !== true);
  if (bad || answers.length !== cmds.length) {
    throw new Error(`worker (${threads} threads) failed: ${JSON.stringify(bad ?? answers)}`);
  }
  const [init, ...rest] = answers;
  const exit = rest.pop()!;
  return {
    threads,
    threadsInUse: Number(init.threads),
    op,
    buildMs: Number(init.buildMs),
    peakAfterBuildMiB: Number(init.peakRssMiB),
    peakMiB: Number(exit.peakRssMiB),
    callMs: rest.map((r) => Number(r.wallMs)),
  };
}

async function main(): Promise<void> {
  const threads = opt("--threads", "1,2").split(",").map(Number);
  const op = opt("--op", "gradcam");
  const reps = Number(opt("--reps", "3"));
  const winograd = opt("--winograd", "auto");
  const results: PeakRssResult[] = [];
  for (const t of threads) results.push(await measurePeakRss(t, op, reps, winograd));
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  console.log(`vgg16 ${op} batch 1, ${reps} calls per process, winograd ${winograd}`);
  console.log("| threads | build ms | peak RSS after build (MiB) | peak RSS (MiB) | ms per call |");
  console.log("| ------- | -------- | -------------------------- | -------------- | ----------- |");
  for (const r of results) {
    console.log(
      `| ${r.threadsInUse} | ${r.buildMs.toFixed(0)} | ${r.peakAfterBuildMiB.toFixed(0)} | ` +
        `${r.peakMiB.toFixed(0)} | ${r.callMs.map((m) => m.toFixed(0)).join(", ")} |`,
    );
  }
}

if (import.meta.main) await main();
