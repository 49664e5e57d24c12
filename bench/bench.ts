/**
 * `deno task bench`: times forward, Grad-CAM, Gradual Grad-CAM, c-EB and Gradual c-EB on the
 * paper's VGG16 (224x224, exact portable weights) and, when present, the built-in
 * `shapes-resnet`, at batch 1 and 8, on WASM with 1 thread and with all cores, and the same
 * operations in PyTorch (`bench/torch_bench.py`) on the same weights and input.
 *
 * Each variant is a long-lived worker process (threads are fixed per process); only one
 * computes at a time, and the measured calls are interleaved across variants and operations
 * in a shuffled order each round, so slow drifts of a shared machine hit every row alike.
 * Before each call the driver waits (up to `--idle-wait` s) for the other cores to be idle
 * and records the CPU time other processes used during the call ("foreign" CPU).
 *
 * Prints a markdown table and writes `bench/results.json`.
 *
 * Usage:
 * `deno run --allow-read --allow-write=bench/results.json --allow-run=deno,/usr/bin/python3
 * --allow-sys=cpus bench/bench.ts` (workers: `--allow-read` only)
 * Options: `--quick` (1 warm-up + 2 runs, batch 1 only), `--reps1 N`, `--reps8 N`,
 * `--reps8-ceb N` (ours' c-EB rows at batch 8: no warm-up, default 1 call),
 * `--batches 1,8`, `--models vgg16,shapes-resnet`, `--winograd auto|all|off`, `--no-torch`,
 * `--threads 1,2` (thread counts of the variants; default 1 and all cores),
 * `--no-profile`,
 * `--idle-wait S`, `--print FILE` (reprint the tables of a saved results.json), `--json FILE`
 * (where to write the results; default `bench/results.json`), `--torchray DIR` / `--pgc DIR`
 * (or `GRADUAL_TORCHRAY` / `GRADUAL_PGC`): also time the real TorchRay (`grad_cam`,
 * `contrastive_excitation_backprop`) and pytorch-grad-cam (`GradCAM`) imported from a checkout
 * at DIR, on the same model and input, with all cores (rows `torchray-Nt`, `pgc-Nt`); skipped
 * with a message when not given or when they fail to import.
 *
 * @module
 */
import os from "node:os";

/** The operations, in table order. */
const OPS = ["fwd", "gradcam", "gradual-gradcam", "ceb", "gradual-ceb"] as const;
type Op = typeof OPS[number];

const OP_LABEL: Record<Op, string> = {
  fwd: "forward only",
  gradcam: "Grad-CAM",
  "gradual-gradcam": "Gradual Grad-CAM",
  ceb: "c-EB",
  "gradual-ceb": "Gradual c-EB",
};

/** One timed call as a worker reports it, plus what the driver observed. */
export interface Sample {
  /** Wall time (ms). */
  wallMs: number;
  /** Worker CPU time, all threads (ms). */
  cpuMs: number;
  /** Forward passes in the call. */
  forwards: number;
  /** Backward passes in the call. */
  backwards: number;
  /** CPU time other processes used during the call (ms). */
  foreignMs: number;
  /** How long the driver waited for an idle machine before the call (ms). */
  waitedMs: number;
  /** tf.memory().numTensors before / after (ours only). */
  tensorsBefore?: number;
  /** tf.memory().numTensors after the call (ours only). */
  tensorsAfter?: number;
  /** tf.memory().numBytes after the call (ours only). */
  bytesAfter?: number;
  /** RSS after the call (MiB). */
  rssMiB: number;
  /** Peak RSS of the worker process so far (MiB). */
  peakRssMiB: number;
}

/** One row of the results. */
export interface Row {
  /** Model name. */
  model: string;
  /** Batch size. */
  batch: number;
  /** Operation. */
  op: Op;
  /** Variant (`ours-1t`, `ours-2t`, `torch-1t`, `torch-2t`). */
  variant: string;
  /** Threads in use. */
  threads: number;
  /** Median per-image wall time (ms). */
  perImageMs: number;
  /** Min / max per-image wall time (ms). */
  rangeMs: [number, number];
  /** Median cpu / wall. */
  cpuOverWall: number;
  /** Median foreign CPU during the calls, in cores. */
  foreignCores: number;
  /** Pass counts (forwards, backwards) per call. */
  passes: [number, number];
  /** Measured calls. */
  n: number;
  /** Raw samples. */
  samples: Sample[];
}

interface Answer {
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

const HERE = new URL(".", import.meta.url);
const ROOT = new URL("..", HERE);
const PYTHON = "/usr/bin/python3";

/** `deno` by name when `--allow-run=deno` grants it (the narrow task line), else this binary. */
function denoCommand(): string {
  const q = Deno.permissions.querySync({ name: "run", command: "deno" });
  return q.state === "granted" ? "deno" : Deno.execPath();
}

function flag(name: string): boolean {
  return Deno.args.includes(name);
}

function opt(name: string, d: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : d;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Busy CPU time of the whole machine so far (ms, all cores). */
function machineBusyMs(): number {
  let busy = 0;
  for (const c of os.cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return busy;
}

/** Waits until the machine is (nearly) idle, at most `maxMs`; returns the time waited. */
async function waitIdle(maxMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const b0 = machineBusyMs();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    const cores = (machineBusyMs() - b0) / (performance.now() - w0);
    if (cores < 0.25 || performance.now() - t0 >= maxMs) return performance.now() - t0;
  }
}

/** A long-lived worker process speaking the `@@json` line protocol. */
class Worker {
  readonly name: string;
  readonly #proc: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  #stderr = "";

  constructor(name: string, cmd: string, args: string[]) {
    this.name = name;
    const proc = new Deno.Command(cmd, {
      args,
      cwd: ROOT.pathname,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#proc = proc;
    this.#writer = proc.stdin.getWriter();
    this.#lines = this.#readLines();
    (async () => {
      for await (const c of proc.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + c).slice(-2000);
      }
    })();
  }

  async *#readLines(): AsyncGenerator<string> {
    let buf = "";
    for await (const c of this.#proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("@@")) yield line.slice(2);
      }
    }
  }

  async send(cmd: Record<string, unknown>): Promise<Answer> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
    const r = await this.#lines.next();
    if (r.done) {
      throw new Error(`${this.name} ended unexpectedly: ${this.#stderr.trim().slice(-600)}`);
    }
    return JSON.parse(r.value) as Answer;
  }

  async close(): Promise<Answer | undefined> {
    try {
      const a = await this.send({ cmd: "exit" });
      await this.#writer.close().catch(() => undefined);
      await this.#proc.status;
      return a;
    } catch {
      try {
        this.#proc.kill();
      } catch { /* already gone */ }
      return undefined;
    }
  }
}

/** Whether /usr/bin/python3 can import torch (and its version). */
async function torchVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", "import torch, numpy; print(torch.__version__)"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** An environment variable, or undefined (also without `--allow-env`). */
function envVar(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name) || undefined;
}

/** Deterministic shuffle (mulberry32). */
function shuffle<T>(items: T[], seed: number): T[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

interface Variant {
  name: string;
  worker: Worker;
  threads: number;
  ops: Op[];
  info: Answer;
  torch: boolean;
}

function fmt(v: number, d = 0): string {
  return Number.isFinite(v) ? v.toFixed(d) : "-";
}

/** Milliseconds: whole numbers, one decimal below 100 ms. */
function ms(v: number): string {
  return fmt(v, Math.abs(v) < 100 ? 1 : 0);
}

async function main(): Promise<void> {
  const printFrom = opt("--print", "");
  if (printFrom) {
    const saved = JSON.parse(Deno.readTextFileSync(printFrom));
    printTable(saved.rows, saved.models, saved.notes, saved.torch ?? undefined);
    return;
  }
  const quick = flag("--quick");
  const reps1 = Number(opt("--reps1", quick ? "2" : "5"));
  const reps8 = Number(opt("--reps8", quick ? "1" : "3"));
  // c-EB at batch 8 takes minutes per call on wasm: by default no warm-up (the batch-1
  // phase has created every kernel) and one measured call.
  const reps8Ceb = Number(opt("--reps8-ceb", "1"));
  const batches = opt("--batches", quick ? "1" : "1,8").split(",").map(Number);
  const idleWaitMs = Number(opt("--idle-wait", "10")) * 1000;
  const profile = !flag("--no-profile");
  const cores = Math.max(1, Math.min(8, navigator.hardwareConcurrency ?? 1));
  const threadCounts = opt("--threads", cores > 1 ? `1,${cores}` : "1").split(",").map(Number);
  const notes: string[] = [];
  const models = opt("--models", "vgg16,shapes-resnet").split(",");
  const winograd = opt("--winograd", "off");
  const file = opt("--json", new URL("results.json", HERE).pathname);
  if (Deno.permissions.querySync({ name: "write", path: file }).state !== "granted") {
    console.error(`bench: no write permission for ${file} (add --allow-write=${file})`);
    Deno.exit(2);
  }

  const libDirs: Record<string, string | undefined> = {
    torchray: opt("--torchray", "") || envVar("GRADUAL_TORCHRAY"),
    pgc: opt("--pgc", "") || envVar("GRADUAL_PGC"),
  };
  const tv = flag("--no-torch") ? undefined : await torchVersion();
  if (!tv) {
    const msg = flag("--no-torch")
      ? "PyTorch: skipped (--no-torch)"
      : `PyTorch not available: skipped (${PYTHON} cannot import torch and numpy; ` +
        "apt-get install -y python3-torch)";
    console.log(msg);
    notes.push(msg);
  }

  const rows: Row[] = [];
  const modelInfo: Record<string, unknown> = {};
  for (const model of models) {
    if (model !== "vgg16") {
      const path = new URL(`models/${model}/model.json`, ROOT);
      try {
        Deno.statSync(path);
      } catch {
        const msg = `${model}: models/${model}/model.json not found (not trained yet): skipped`;
        console.log(msg);
        notes.push(msg);
        continue;
      }
    }
    const variants: Variant[] = [];
    const start = async (name: string, w: Worker, torch: boolean, optional = false) => {
      const t0 = performance.now();
      const info = await w.send({ cmd: "init" });
      if (!info.ok && optional) {
        const msg = `${model} ${name}: skipped (init failed: ${info.error})`;
        console.log(msg);
        notes.push(msg);
        await w.close();
        return;
      }
      if (!info.ok) throw new Error(`${name}: init failed: ${info.error}`);
      console.error(
        `[bench] ${model} ${name}: ready in ${fmt((performance.now() - t0) / 1000, 1)} s`,
      );
      if (info.cebNote && info.cebNote !== "registered") {
        notes.push(`${model} ${name}: c-EB ${info.cebNote}`);
      }
      variants.push({
        name,
        worker: w,
        threads: Number(info.threads),
        ops: (info.ops as Op[]) ?? [...OPS],
        info,
        torch,
      });
    };
    for (const t of threadCounts) {
      const args = [
        "run",
        "--allow-read",
        new URL("_worker.ts", HERE).pathname,
        "--model",
        model,
        "--threads",
        String(t),
        "--winograd",
        winograd,
      ];
      await start(`ours-${t}t`, new Worker(`ours-${t}t`, denoCommand(), args), false);
    }
    if (tv && model === "vgg16") {
      for (const t of threadCounts) {
        const args = [new URL("torch_bench.py", HERE).pathname, "--threads", String(t)];
        await start(`torch-${t}t`, new Worker(`torch-${t}t`, PYTHON, args), true);
      }
      // The real libraries, with all cores only (the comparison people make).
      const t = threadCounts[threadCounts.length - 1];
      for (const [impl, dir] of Object.entries(libDirs)) {
        if (!dir) {
          const msg = `${impl}: not timed (give --${impl} DIR or GRADUAL_${impl.toUpperCase()})`;
          console.log(msg);
          notes.push(msg);
          continue;
        }
        const args = [
          new URL("torch_bench.py", HERE).pathname,
          "--threads",
          String(t),
          "--impl",
          impl,
          "--lib",
          dir,
        ];
        await start(`${impl}-${t}t`, new Worker(`${impl}-${t}t`, PYTHON, args), true, true);
      }
    }
    const ours = variants.find((v) => !v.torch)!;
    if (!ours.ops.includes("ceb")) {
      const msg = `${model}: c-EB not available: ${ours.info.cebNote}; c-EB rows skipped`;
      console.log(msg);
      notes.push(msg);
    }
    // Same model on both sides: compare the logits of image 0.
    const logits = (v: Variant) => v.info.logits0 as number[];
    const tref = variants.find((v) => v.torch);
    const maxDiff = tref
      ? Math.max(...logits(ours).map((x, i) => Math.abs(x - logits(tref)[i])))
      : NaN;
    modelInfo[model] = {
      variants: variants.map((v) => ({
        name: v.name,
        threads: v.threads,
        buildMs: v.info.buildMs,
        camLayer: v.info.camLayer,
        cebLayer: v.info.cebLayer,
        argmax0: v.info.argmax0,
        torch: v.info.torch,
      })),
      logitsMaxAbsDiffOursVsTorch: maxDiff,
    };

    for (const batch of batches) {
      const reps = batch === 1 ? reps1 : reps8;
      const slow = (op: Op) => batch > 1 && op.includes("ceb");
      const jobs: [Variant, Op][] = [];
      for (const v of variants) for (const op of v.ops) jobs.push([v, op]);
      const repsOf = (op: Op) => slow(op) ? Math.min(reps, reps8Ceb) : reps;
      const samples = new Map<string, Sample[]>();
      const key = (v: Variant, op: Op) => `${v.name}|${op}`;
      const call = async (v: Variant, op: Op): Promise<Sample> => {
        const waitedMs = await waitIdle(idleWaitMs);
        const b0 = machineBusyMs();
        const r = await v.worker.send({ cmd: "run", op, batch });
        const busy = machineBusyMs() - b0;
        if (!r.ok) throw new Error(`${v.name} ${op} batch ${batch}: ${r.error}`);
        const s = r as unknown as Sample;
        return { ...s, foreignMs: Math.max(0, busy - s.cpuMs), waitedMs };
      };
      console.error(`[bench] ${model} batch ${batch}: warm-up`);
      for (const [v, op] of jobs) if (!slow(op) || v.torch) await call(v, op);
      for (let r = 0; r < reps; r++) {
        console.error(`[bench] ${model} batch ${batch}: round ${r + 1}/${reps}`);
        const todo = jobs.filter(([v, op]) => v.torch || r < repsOf(op));
        for (const [v, op] of shuffle(todo, 1000 * batch + r)) {
          const s = await call(v, op);
          const k = key(v, op);
          samples.set(k, [...(samples.get(k) ?? []), s]);
        }
      }
      for (const [v, op] of jobs) {
        const ss = samples.get(key(v, op)) ?? [];
        const per = ss.map((s) => s.wallMs / batch);
        rows.push({
          model,
          batch,
          op,
          variant: v.name,
          threads: v.threads,
          perImageMs: median(per),
          rangeMs: [Math.min(...per), Math.max(...per)],
          cpuOverWall: median(ss.map((s) => s.cpuMs / s.wallMs)),
          foreignCores: median(ss.map((s) => s.foreignMs / s.wallMs)),
          passes: [ss[0]?.forwards ?? NaN, ss[0]?.backwards ?? NaN],
          n: ss.length,
          samples: ss,
        });
      }
    }
    const profiles: Record<string, unknown> = {};
    if (profile) {
      for (const v of variants.filter((x) => !x.torch)) {
        for (const op of v.ops) {
          const p = await v.worker.send({ cmd: "profile", op, batch: 1 });
          profiles[`${v.name}|${op}`] = p;
        }
      }
    }
    const peaks: Record<string, unknown> = {};
    for (const v of variants) peaks[v.name] = (await v.worker.close())?.peakRssMiB;
    Object.assign(modelInfo[model] as Record<string, unknown>, { profiles, peakRssMiB: peaks });
  }

  printTable(rows, modelInfo, notes, tv);
  const out = {
    date: new Date().toISOString(),
    cores,
    deno: Deno.version.deno,
    torch: tv ?? null,
    settings: { reps1, reps8, batches, idleWaitMs, winograd },
    notes,
    models: modelInfo,
    rows,
  };
  Deno.writeTextFileSync(file, JSON.stringify(out, null, 2) + "\n");
  console.log(`\nwrote ${file}`);
}

function printTable(
  rows: Row[],
  info: Record<string, unknown>,
  notes: string[],
  torch: string | undefined,
): void {
  const find = (m: string, b: number, op: Op, v: string) =>
    rows.find((r) => r.model === m && r.batch === b && r.op === op && r.variant === v);
  const keys = [...new Set(rows.map((r) => `${r.model}|${r.batch}`))];
  for (const k of keys) {
    const [m, bs] = k.split("|");
    const b = Number(bs);
    const here = rows.filter((r) => r.model === m && r.batch === b);
    const vs = [...new Set(here.map((r) => r.variant))];
    const oursV = vs.filter((v) => v.startsWith("ours"));
    console.log(
      `\n### ${m}, batch ${b}: ms per image, median of n calls after warm-up [min-max]\n`,
    );
    const head = [
      "op",
      "variant",
      "passes fwd+bwd",
      "ms/image [min-max]",
      "n",
      "cpu/wall",
      "foreign cores",
      "all-cores speedup",
      "ours/torch",
      "ours/torchray",
      "ours/pgc",
      "gradual/base",
    ];
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const op of OPS) {
      for (const v of vs) {
        const r = find(m, b, op, v);
        if (!r) continue;
        const one = find(m, b, op, v.replace(/-\d+t$/, "-1t"));
        const speed = v.endsWith("-1t") || !one ? "" : `${fmt(one.perImageMs / r.perImageMs, 2)}x`;
        const vs2 = (lib: string): Row | undefined =>
          v.startsWith("ours") ? find(m, b, op, v.replace("ours", lib)) : undefined;
        const tw = vs2("torch");
        const ratio = (other: Row | undefined): string =>
          other ? fmt(r.perImageMs / other.perImageMs, 2) : "";
        const base = op === "gradual-gradcam" ? "gradcam" : op === "gradual-ceb" ? "ceb" : "";
        const br = base ? find(m, b, base as Op, v) : undefined;
        console.log(
          `| ${
            [
              OP_LABEL[op],
              v,
              `${r.passes[0]}+${r.passes[1]}`,
              `${ms(r.perImageMs)} [${ms(r.rangeMs[0])}-${ms(r.rangeMs[1])}]`,
              String(r.n),
              fmt(r.cpuOverWall, 2),
              fmt(r.foreignCores, 2),
              speed,
              ratio(tw),
              ratio(vs2("torchray")),
              ratio(vs2("pgc")),
              br ? fmt(r.perImageMs / br.perImageMs, 3) : "",
            ].join(" | ")
          } |`,
        );
      }
    }
    // Memory of ours at this batch.
    const mem = oursV.map((v) => {
      const rs = rows.filter((r) => r.model === m && r.batch === b && r.variant === v);
      const leak = rs.some((r) => r.samples.some((s) => s.tensorsAfter !== s.tensorsBefore));
      const peak = Math.max(...rs.flatMap((r) => r.samples.map((s) => s.peakRssMiB)));
      const s0 = rs[0]?.samples[0];
      return `${v}: tf.memory numTensors ${s0?.tensorsBefore} -> ${s0?.tensorsAfter} ` +
        `(${leak ? "LEAK" : "flat over every call"}), numBytes ${
          fmt((s0?.bytesAfter ?? NaN) / 1048576)
        } MiB between calls, peak RSS so far ${fmt(peak)} MiB`;
    });
    console.log(`\nmemory: ${mem.join("; ")}`);
  }
  console.log("");
  for (const [m, i] of Object.entries(info)) {
    const x = i as Record<string, unknown>;
    console.log(
      `${m}: peak RSS per worker (MiB): ${JSON.stringify(x.peakRssMiB)}; ` +
        `logits max |ours - torch| on image 0: ${fmt(x.logitsMaxAbsDiffOursVsTorch as number, 7)}`,
    );
  }
  console.log(
    "targets: gradual / base <= 1.03; all-cores speedup >= 1.6 on 2 cores" +
      (torch ? `; PyTorch ${torch}` : ""),
  );
  for (const n of notes) console.log(`note: ${n}`);
}

if (import.meta.main) await main();
