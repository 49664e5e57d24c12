/**
 * `gradual eval` speed, before and after in ONE run: the same held-out scenes and rows
 * evaluated by `cli/main.ts eval --json` in fresh processes (the wasm thread count is fixed
 * per process), the configurations interleaved round by round so that a change in the
 * machine's load hits all of them alike. Configurations (`--configs`, comma list):
 *
 * - **before**: the curve path as the issue measured it (31.5 minutes for 500 scenes × 7
 *   rows): every step image scored (`--no-share`), one thread (`--threads 1`, the old default
 *   for the built-in models), 32 images per model call. It runs today's code, so it already
 *   has the cheaper curve book-keeping (one radix sort per map, the batch read after the next
 *   is in the model); the ratios below therefore understate the gain over the old code.
 * - **shared**: equal step images scored once, still one thread.
 * - **after**: the defaults (sharing, all cores up to 8, 32 images per call).
 * - **webgpu**: the defaults on `--backend webgpu` (needs a GPU adapter).
 * - **webgpu-b128**: webgpu with 128 images per model call.
 *
 * It checks that the wasm configurations give the same figures (every mean and interval of
 * the table; webgpu is compared and reported, not required to match), and prints per
 * configuration the median eval wall time over the rounds, the time of the curves and the
 * model's share of it, the curve throughput, and the speed-up over `before`.
 *
 * ```sh
 * deno task bench:eval                          # 40 scenes, grad-cam (none, gradual), shapes-vgg
 * deno task bench:eval --n 10 --rounds 2        # quicker, two interleaved rounds
 * deno task bench:eval --configs before,after,webgpu --optional webgpu --n 20
 * ```
 *
 * `--optional` names configurations whose failure (no WebGPU adapter) is reported in a line
 * instead of stopping the bench; `--cli PATH` runs another CLI entry point (default
 * `cli/main.ts`). `bench/eval_device.sh` runs all five configurations on a GPU machine.
 *
 * @module
 */

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

/** The configurations this bench knows, by name. */
const KNOWN: Record<string, string[]> = {
  before: ["--no-share", "--threads", "1", "--batch", "32"],
  shared: ["--threads", "1"],
  after: [],
  webgpu: ["--backend", "webgpu"],
  "webgpu-b128": ["--backend", "webgpu", "--batch", "128"],
};

const N = arg("n", "40");
const MODEL = arg("model", "shapes-vgg");
const METHODS = arg("methods", "grad-cam");
const ROUNDS = Number(arg("rounds", "1"));
const CLI = arg("cli", new URL("../cli/main.ts", import.meta.url).pathname);
const NAMES = arg("configs", "before,shared,after").split(",");
/** Configurations whose failure (e.g. no WebGPU adapter) is reported, not fatal. */
const OPTIONAL = new Set(arg("optional", "").split(",").filter((x) => x));
for (const n of NAMES) {
  if (!(n in KNOWN)) {
    console.error(`eval_bench: unknown config '${n}' (${Object.keys(KNOWN).join(", ")})`);
    Deno.exit(2);
  }
}
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1)) {
  console.error("eval_bench: --rounds must be a positive integer");
  Deno.exit(2);
}

interface Report {
  seconds: number;
  curveWork: { images: number; scored: number; modelSeconds: number; seconds: number };
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
      CLI,
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

/** Largest absolute difference between two reports' means and interval ends. */
function maxDiff(a: Report, b: Report): number {
  let d = 0;
  a.rows.forEach((row, i) => {
    for (const [k, v] of Object.entries(row)) {
      const w = (b.rows[i] as Record<string, unknown>)[k];
      if (v && typeof v === "object" && w && typeof w === "object") {
        for (const f of ["mean", "lo", "hi"]) {
          const x = (v as Record<string, number>)[f], y = (w as Record<string, number>)[f];
          if (Number.isFinite(x) && Number.isFinite(y)) d = Math.max(d, Math.abs(x - y));
        }
      }
    }
  });
  return d;
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const load = (): string => {
  try {
    return Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
  } catch {
    return "n/a";
  }
};

const loadBefore = load();
const t0 = performance.now();
const all = NAMES.map((name) => ({
  name,
  flags: KNOWN[name],
  reports: [] as Report[],
  failed: undefined as string | undefined,
}));
for (let round = 0; round < ROUNDS; round++) {
  // Round r starts at configuration r: each one runs first, middle and last in turn.
  for (let k = 0; k < all.length; k++) {
    const run = all[(k + round) % all.length];
    if (run.failed) continue;
    try {
      const { report, wall } = await runEval(run.flags);
      run.reports.push(report);
      console.error(`eval_bench: round ${round + 1}, ${run.name} done in ${wall.toFixed(1)} s`);
    } catch (e) {
      if (!OPTIONAL.has(run.name)) throw e;
      run.failed = (e as Error).message.split("\n").find((l) => l.startsWith("gradual:")) ??
        (e as Error).message.split("\n")[0];
      console.error(`eval_bench: ${run.name} failed: ${run.failed}`);
    }
  }
}
const runs = all.filter((r) => !r.failed);
const total = (performance.now() - t0) / 1000;
const ref = runs[0].reports[0];
const isWasm = (name: string): boolean => !name.startsWith("webgpu");
const same = runs.every((r) =>
  !isWasm(r.name) || r.reports.every((rep) => figures(rep) === figures(ref))
);
console.log(
  `eval_bench: ${MODEL}, ${N} scenes, methods ${METHODS} (none and gradual) + centre baseline; ` +
    `${navigator.hardwareConcurrency} logical cores; ${ROUNDS} interleaved round(s), medians; ` +
    `load average ${loadBefore} before, ${load()} after; ${total.toFixed(0)} s in all`,
);
console.log(
  "| run | flags | eval s | curves s | in the model | curve images scored / total | " +
    "curve images/s | speed-up | same figures as " + runs[0].name + " |",
);
console.log("|---|---|--:|--:|--:|--:|--:|--:|---|");
const base = median(runs[0].reports.map((r) => r.seconds));
for (const r of runs) {
  const sec = median(r.reports.map((x) => x.seconds));
  const curve = median(r.reports.map((x) => x.curveWork.seconds));
  const model = median(r.reports.map((x) => x.curveWork.modelSeconds / x.curveWork.seconds));
  const w = r.reports[0].curveWork;
  const agree = r.reports.every((rep) => figures(rep) === figures(ref))
    ? (r === runs[0] ? "(reference)" : "yes")
    : `no (max diff ${Math.max(...r.reports.map((rep) => maxDiff(rep, ref))).toExponential(1)})`;
  console.log(
    `| ${r.name} | ${r.flags.join(" ") || "(defaults)"} | ${sec.toFixed(1)} | ` +
      `${curve.toFixed(1)} | ${(100 * model).toFixed(0)} % | ${w.scored} / ${w.images} | ` +
      `${(w.scored / curve).toFixed(0)} | ${(base / sec).toFixed(2)}x | ${agree} |`,
  );
}
for (const r of all) if (r.failed) console.log(`${r.name} (${r.flags.join(" ")}): ${r.failed}`);
console.log(`same figures in all wasm runs: ${same ? "yes" : "NO"}`);
if (!same) Deno.exit(1);
