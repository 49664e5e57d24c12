/**
 * Subprocess probe for tests/backend_test.ts: starts the wasm backend with
 * the thread count given as the first argument, runs a conv workload and
 * prints JSON `{threads, simd, cpuOverWall, wallMs, digests}` (`digests`: the threaded speed
 * paths' outputs, see `_threaded_paths.ts`). Threads are fixed per process, hence a separate
 * process.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { exitProcess, initBackend } from "../backend/mod.ts";
import { threadedPathDigests } from "./_threaded_paths.ts";

const requested = Number(Deno.args[0] ?? "2");
const info = await initBackend({ backend: "wasm", threads: requested });
const x = tf.randomNormal([1, 56, 56, 64], 0, 1, "float32", 1) as tf.Tensor4D;
const w = tf.randomNormal([3, 3, 64, 64], 0, 0.05, "float32", 2) as tf.Tensor4D;
const work = (): void => tf.tidy(() => void tf.conv2d(x, w, 1, "same").dataSync());
work();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < 10; i++) work();
const wallMs = performance.now() - t0;
const c = process.cpuUsage(c0);
const cpuOverWall = (c.user + c.system) / 1000 / wallMs;
const digests = await threadedPathDigests();
console.log(
  JSON.stringify({ threads: info.threads, simd: info.simd, cpuOverWall, wallMs, digests }),
);
exitProcess(0);
