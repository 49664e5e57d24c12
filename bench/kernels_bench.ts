/**
 * Micro-benchmark behind the c-EB findings of `bench/bench.ts` (wasm backend):
 *
 * 1. `tf.conv2dTranspose` (wasm kernel `Conv2DBackpropInput`, a plain loop without XNNPACK)
 *    versus the same result as a `tf.conv2d` with the spatially flipped, in/out-swapped
 *    kernel (exact for stride 1 with `same` padding and odd kernels, as in VGG16).
 *    Both are timed with the kernel transformed on every call (as excitation backprop
 *    computes W+ anew on every backward pass), so XNNPACK packs the weights each time.
 *
 * Usage: `deno run --allow-read bench/kernels_bench.ts [--threads N]`
 *
 * @module
 */
import { exitProcess, initBackend } from "../backend/mod.ts";
import { tf } from "../core/tensor.ts";
import { filled, timeInterleaved } from "./_timing.ts";

/** conv2dTranspose for stride 1, `same`, odd kernel, written as a conv2d. */
export function transposeAsConv(dy: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.conv2d(dy, tf.reverse(w, [0, 1]).transpose([0, 1, 3, 2]), 1, "same"));
}

async function main(): Promise<void> {
  const i = Deno.args.indexOf("--threads");
  const threads = i >= 0 ? Number(Deno.args[i + 1]) : 1;
  const info = await initBackend({ backend: "wasm", threads });
  console.log(`wasm, ${info.threads} thread(s); median of 3 after 1 warm-up, interleaved`);
  console.log("| shape dy / kernel | conv2dTranspose ms | as conv2d ms | speedup | max abs diff |");
  console.log("|---|---|---|---|---|");
  for (const [hw, c] of [[28, 512], [14, 512], [56, 256]]) {
    const dy = filled([1, hw, hw, c], -1, 1, 1) as tf.Tensor4D;
    const w = filled([3, 3, c, c], -0.03, 0.03, 2) as tf.Tensor4D;
    const shape: [number, number, number, number] = [1, hw, hw, c];
    const a = tf.conv2dTranspose(dy, w, shape, 1, "same");
    const b = transposeAsConv(dy, w);
    const diff = tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
    tf.dispose([a, b]);
    const [t1, t2] = timeInterleaved([
      () => tf.tidy(() => tf.conv2dTranspose(dy, w, shape, 1, "same").dataSync()),
      () => tf.tidy(() => transposeAsConv(dy, w).dataSync()),
    ], 3);
    console.log(
      `| [1,${hw},${hw},${c}] / [3,3,${c},${c}] | ${t1.toFixed(0)} | ${t2.toFixed(0)} | ${
        (t1 / t2).toFixed(1)
      }x | ${diff.toExponential(1)} |`,
    );
    tf.dispose([dy, w]);
  }
  exitProcess(0);
}

if (import.meta.main) await main();
