/**
 * Per-layer micro-benchmark behind the Winograd F(4x4, 3x3) path (wasm backend): every 3x3
 * convolution shape of VGG16 at 224x224, direct `tf.conv2d` (XNNPACK) against the toolkit's
 * `conv2d` with `setWinograd("all")` (layers the path skips, too thin to gain, are timed once),
 * median of 5 calls after one warm-up (which also caches the transformed kernel), interleaved,
 * with the largest difference relative to the output's largest magnitude.
 *
 * Usage: `deno run --allow-read --allow-env --allow-sys=cpus bench/winograd_bench.ts
 * [--threads N]`
 *
 * @module
 */
import { exitProcess, initBackend, setWinograd } from "../backend/mod.ts";
import { conv2d } from "../backend/ops.ts";
import { tf } from "../core/tensor.ts";
import { winogradApplies } from "../backend/_winograd.ts";
import { filled, timeInterleaved } from "./_timing.ts";

/** VGG16's 3x3 convolutions: [height = width, Cin, Cout, how many in the network]. */
const SHAPES: [number, number, number, number][] = [
  [224, 64, 64, 1],
  [112, 64, 128, 1],
  [112, 128, 128, 1],
  [56, 128, 256, 1],
  [56, 256, 256, 2],
  [28, 256, 512, 1],
  [28, 512, 512, 2],
  [14, 512, 512, 3],
];

/** Median ms of each function (which returns a fresh tensor), interleaved, after a warm-up. */
function timeBoth(fns: (() => tf.Tensor)[], reps: number): number[] {
  return timeInterleaved(
    fns.map((f) => () => {
      const y = f();
      y.dataSync();
      y.dispose();
    }),
    reps,
  );
}

async function main(): Promise<void> {
  const i = Deno.args.indexOf("--threads");
  const info = await initBackend({
    backend: "wasm",
    threads: i >= 0 ? Number(Deno.args[i + 1]) : 1,
  });
  setWinograd("all");
  console.log(`wasm, ${info.threads} thread(s); median of 5 after 1 warm-up, interleaved`);
  console.log(
    "| layer (HxW, Cin->Cout) x count | direct ms | Winograd ms | speedup | rel. error |",
  );
  console.log("| --- | --- | --- | --- | --- |");
  let direct = 0, fast = 0;
  for (const [hw, ci, co, count] of SHAPES) {
    const x = filled([1, hw, hw, ci], 0, 1, 1) as tf.Tensor4D;
    const k = tf.tidy(() => filled([3, 3, ci, co], -1, 1, 2).mul(Math.sqrt(3 / (9 * ci))));
    if (!winogradApplies(x, k, [1, 1], "same", [1, 1], "all")) {
      const [d] = timeBoth([() => tf.conv2d(x, k as tf.Tensor4D, 1, "same")], 5);
      direct += d * count;
      fast += d * count;
      console.log(`| ${hw}x${hw}, ${ci}->${co} x${count} | ${d.toFixed(1)} | (direct) | | |`);
      tf.dispose([x, k]);
      continue;
    }
    const [d, w] = timeBoth(
      [() => tf.conv2d(x, k as tf.Tensor4D, 1, "same"), () => conv2d(x, k)],
      5,
    );
    const err = tf.tidy(() => {
      const a = tf.conv2d(x, k as tf.Tensor4D, 1, "same");
      return a.sub(conv2d(x, k)).abs().max().dataSync()[0] / a.abs().max().dataSync()[0];
    });
    direct += d * count;
    fast += w * count;
    console.log(
      `| ${hw}x${hw}, ${ci}->${co} x${count} | ${d.toFixed(1)} | ${w.toFixed(1)} | ` +
        `${(d / w).toFixed(2)}x | ${err.toExponential(1)} |`,
    );
    tf.dispose([x, k]);
  }
  console.log(
    `| these 12 layers | ${direct.toFixed(0)} | ${fast.toFixed(0)} | ${
      (direct / fast).toFixed(2)
    }x | |`,
  );
  exitProcess(0);
}

if (import.meta.main) await main();
