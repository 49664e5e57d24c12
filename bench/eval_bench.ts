/**
 * `gradual eval` speed, before and after in one run: the same held-out scenes and rows
 * evaluated by `cli/main.ts eval --json` in fresh processes (the wasm thread count is fixed
 * per process) with
 *
 * - **before**: what `eval` did before curve sharing and multi-threaded scoring: every
 *   step image scored (`--no-share`) on one thread (`--threads 1`, the old default for the
 *   built-in models);
 * - **shared**: equal step images scored once, still one thread;
 * - **after**: the defaults (sharing, all cores up to 8).
 *
 * It checks that all three give the same figures (every mean and interval of the table) and
 * prints wall times, deletion / insertion throughput and the speed-ups.
 *
 * ```sh
 * deno task bench:eval                 # 40 scenes, grad-cam and gradual, shapes-vgg
 * deno task bench:eval --n 100 --methods grad-cam,c-eb
 * ```
 *
 * @module
 */

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const N = arg("n", "40");
const MODEL = arg("model", "shapes-vgg");
const METHODS = arg("methods", "grad-cam");
const CONFIGS: { name: string; flags: string[] }[] = [
  { name: "before", flags: ["--no-share", "--threads", "1"] },
  { name: "shared", flags: ["--threads", "1"] },
  { name: "after", flags: [] },
];

interface Report {
  seconds: number;
  curveWork: { images: number; scored: number; seconds: number };
  rows: Record<string, unknown>[];
}

async function runEval(flags: string[]): Promise<{ report: Report; wall: number }> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys=cpus",
      new URL("../cli/main.ts", import.meta.url).pathname,
      "eval",
      "--model",
      MODEL,
      "--methods",
      METHODS,
      "--n",
      N,
      "--json",
      "--quiet",
      ...flags,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - t0) / 1000;
  if (!r.success) {
    throw new Error(`eval ${flags.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  return { report: JSON.parse(new TextDecoder().decode(r.stdout)) as Report, wall };
}

/** The table's numbers without the timings. */
function figures(r: Report): string {
  return JSON.stringify(r.rows.map(({ msPerImage: _t, ...row }) => row));
}

const runs: { name: string; flags: string[]; report: Report; wall: number }[] = [];
for (const c of CONFIGS) {
  const { report, wall } = await runEval(c.flags);
  runs.push({ ...c, report, wall });
  console.error(`eval_bench: ${c.name} done in ${wall.toFixed(1)} s`);
}
const same = runs.every((r) => figures(r.report) === figures(runs[0].report));
console.log(
  `eval_bench: ${MODEL}, ${N} scenes, methods ${METHODS} (none and gradual) + centre baseline, ` +
    `${navigator.hardwareConcurrency} logical cores`,
);
console.log("| run | flags | eval s | curve images scored / total | curve images/s | speed-up |");
console.log("|---|---|--:|--:|--:|--:|");
const base = runs[0].report.seconds;
for (const r of runs) {
  const w = r.report.curveWork;
  console.log(
    `| ${r.name} | ${r.flags.join(" ") || "(defaults)"} | ${r.report.seconds.toFixed(1)} | ` +
      `${w.scored} / ${w.images} | ${(w.scored / w.seconds).toFixed(0)} | ${
        (base / r.report.seconds).toFixed(2)
      }x |`,
  );
}
console.log(`same figures in all runs: ${same ? "yes" : "NO"}`);
if (!same) Deno.exit(1);
