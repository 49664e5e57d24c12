/**
 * The speed paths that run on wasm threads, on tensors of VGG16's sizes, reduced to SHA-256
 * digests of their output bytes: `tests/_threads_probe.ts` computes them with 2 threads in a
 * subprocess and `tests/backend_test.ts` compares them with its own 1-thread results.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setWinograd } from "../backend/mod.ts";
import { conv2d, matMulTransposeB, sameConvTranspose } from "../backend/ops.ts";
import { maxPoolInputGrad } from "../core/tensor.ts";

async function digest(t: tf.Tensor): Promise<string> {
  const v = (await t.data()) as Float32Array;
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Digests of: the direct conv 28x28 512->512, the Winograd conv 56x56 256->256, the flipped
 * kernel input gradient, the dense input gradient `(W · dyᵀ)ᵀ` [2, 4096] x [8192, 4096]ᵀ, and
 * the MaxPoolGrad kernel on [2, 112, 112, 64] (ReLU ties).
 */
export async function threadedPathDigests(): Promise<Record<string, string>> {
  const r = (shape: number[], seed: number, s = 1): tf.Tensor =>
    tf.tidy(() => tf.randomNormal(shape, 0, s, "float32", seed));
  const out: Record<string, string> = {};
  const run = async (name: string, f: () => tf.Tensor): Promise<void> => {
    const t = f();
    out[name] = await digest(t);
    t.dispose();
  };
  const x28 = r([1, 28, 28, 512], 1) as tf.Tensor4D;
  const w512 = r([3, 3, 512, 512], 2, 0.02);
  const x56 = tf.tidy(() => tf.relu(r([2, 56, 56, 256], 3))) as tf.Tensor4D;
  const w256 = r([3, 3, 256, 256], 4, 0.03);
  const dy = r([2, 8192], 5) as tf.Tensor2D;
  const wd = r([4096, 8192], 6, 0.01) as tf.Tensor2D;
  const a = tf.tidy(() => tf.relu(r([2, 112, 112, 64], 7))) as tf.Tensor4D;
  const g = r([2, 56, 56, 64], 8) as tf.Tensor4D;
  try {
    setWinograd("off");
    await run("direct conv 28x28 512->512", () => conv2d(x28, w512));
    setWinograd("all");
    await run("winograd conv 56x56 256->256", () => conv2d(x56, w256));
    setWinograd("off");
    await run("flipped-kernel input gradient", () => sameConvTranspose(x28, w512, [1, 1], "same")!);
    await run("dense input gradient", () => matMulTransposeB(dy, wd));
    await run("MaxPoolGrad", () => maxPoolInputGrad(a, g, [2, 2], [2, 2], "valid"));
  } finally {
    setWinograd("auto");
    tf.dispose([x28, w512, x56, w256, dy, wd, a, g]);
  }
  return out;
}
