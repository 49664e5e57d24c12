/**
 * Wasm thread-scaling benchmark: forward pass of a VGG-ish conv stack
 * (224x224x3 input, 6 conv layers, 3 max-pools) at 1 thread vs all threads.
 *
 * Threads are fixed per process, so each thread count runs in its own
 * subprocess. Each child does 1 warm-up then 5 measured forward passes and
 * reports the median wall time and cpu/wall (process.cpuUsage counts all
 * threads). The machine may be shared: a busy core caps the speedup.
 *
 * Usage: `deno run --allow-read --allow-env --allow-run bench/threads_bench.ts`
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { exitProcess, initBackend } from "../backend/mod.ts";

const REPS = 5;

/** One child's measurement. */
interface Result {
  threads: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  cpuOverWall: number;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Builds seeded conv weights: [filters per block], 2 convs per block. */
function makeWeights(): tf.Tensor4D[] {
  const blocks = [32, 64, 128];
  const ws: tf.Tensor4D[] = [];
  let inC = 3;
  let seed = 1;
  for (const c of blocks) {
    for (let i = 0; i < 2; i++) {
      const std = Math.sqrt(2 / (9 * inC));
      ws.push(tf.randomNormal([3, 3, inC, c], 0, std, "float32", seed++) as tf.Tensor4D);
      inC = c;
    }
  }
  return ws;
}

function forward(x: tf.Tensor4D, ws: tf.Tensor4D[]): number {
  return tf.tidy(() => {
    let h = x;
    for (let i = 0; i < ws.length; i++) {
      h = tf.relu(tf.conv2d(h, ws[i], 1, "same"));
      if (i % 2 === 1) h = tf.maxPool(h, 2, 2, "valid");
    }
    return tf.sum(h).dataSync()[0];
  });
}

async function child(threads: number): Promise<void> {
  const info = await initBackend({ backend: "wasm", threads });
  const ws = makeWeights();
  const x = tf.randomNormal([1, 224, 224, 3], 0, 1, "float32", 99) as tf.Tensor4D;
  forward(x, ws); // warm-up: XNNPACK operator creation and weight packing
  const times: number[] = [];
  let cpuMs = 0;
  let wallMs = 0;
  for (let i = 0; i < REPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    forward(x, ws);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    times.push(dt);
    wallMs += dt;
    cpuMs += (c.user + c.system) / 1000;
  }
  const r: Result = {
    threads: info.threads,
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    cpuOverWall: cpuMs / wallMs,
  };
  console.log(JSON.stringify(r));
  tf.dispose([x, ...ws]);
  exitProcess(0);
}

async function runChild(threads: number): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      new URL(import.meta.url).pathname,
      "--child",
      `${threads}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("{"));
  if (!out.success || line == null) {
    throw new Error(`child (${threads} threads) failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(line) as Result;
}

async function main(): Promise<void> {
  const cores = Math.max(1, Math.min(8, navigator.hardwareConcurrency ?? 1));
  const counts = cores > 1 ? [1, cores] : [1];
  const results: Result[] = [];
  for (const n of counts) results.push(await runChild(n));
  const base = results[0].medianMs;
  console.log(`VGG-ish conv stack forward, 1x224x224x3, median of ${REPS} after warm-up`);
  console.log("| threads asked | threads used | median ms | min-max ms | cpu/wall | speedup |");
  console.log("|---|---|---|---|---|---|");
  for (const [i, r] of results.entries()) {
    console.log(
      `| ${counts[i]} | ${r.threads} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)}-${
        r.maxMs.toFixed(1)
      } | ${r.cpuOverWall.toFixed(2)} | ${(base / r.medianMs).toFixed(2)}x |`,
    );
  }
}

if (Deno.args[0] === "--child") await child(Number(Deno.args[1] ?? "1"));
else await main();
