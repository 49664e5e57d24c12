/**
 * Private: faster replacements of two wasm kernels, used only while training the built-in
 * models (`models/train.ts`). tfjs-backend-wasm 4.22 implements `Conv2DBackpropInput` and
 * `Tile` as plain scalar loops, which made them the bulk of a training step; here they are
 * composed from kernels that the wasm backend runs fast (XNNPACK `Conv2D`, broadcasting `Add`).
 * Composing tf ops inside a kernelFunc is safe: the engine records nothing on the gradient
 * tape while a kernel runs, and intermediates are freed by `tf.tidy`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;

function asTensor<R extends tf.Rank>(info: tf.TensorInfo | undefined): tf.Tensor<R> {
  if (info === undefined) throw new Error("missing kernel input");
  if (info instanceof tf.Tensor) return info as tf.Tensor<R>;
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
}

/** Pad (positive) or crop (negative) the two spatial axes of an NHWC tensor. */
function padOrCropHW(x: tf.Tensor4D, t: number, b: number, l: number, r: number): tf.Tensor4D {
  let y = x;
  if (t > 0 || b > 0 || l > 0 || r > 0) {
    y = tf.pad(y, [[0, 0], [Math.max(0, t), Math.max(0, b)], [Math.max(0, l), Math.max(0, r)], [
      0,
      0,
    ]]);
  }
  if (t < 0 || b < 0 || l < 0 || r < 0) {
    const [, h, w] = y.shape;
    const ct = Math.max(0, -t), cl = Math.max(0, -l);
    y = tf.slice(y, [0, ct, cl, 0], [-1, h - ct - Math.max(0, -b), w - cl - Math.max(0, -r), -1]);
  }
  return y;
}

/**
 * dx of a conv2d (NHWC, dilation 1): zero-stuff dy by the stride, pad by `k - 1 - pad`, and
 * correlate with the spatially flipped filter whose in/out channels are swapped.
 */
function conv2DBackpropInput(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.Tensor {
  const attrs = (args.attrs ?? {}) as unknown as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: "NHWC" | "NCHW";
    dimRoundingMode?: "floor" | "round" | "ceil";
    inputShape: [number, number, number, number];
  };
  return tf.tidy(() => {
    let dy = asTensor<tf.Rank.R4>(args.inputs.dy);
    const filter = asTensor<tf.Rank.R4>(args.inputs.filter);
    const nchw = attrs.dataFormat === "NCHW";
    const inShape: [number, number, number, number] = nchw
      ? [attrs.inputShape[0], attrs.inputShape[2], attrs.inputShape[3], attrs.inputShape[1]]
      : attrs.inputShape;
    if (nchw) dy = tf.transpose(dy, [0, 2, 3, 1]);
    const info = tf.backend_util.computeConv2DInfo(
      inShape,
      filter.shape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      "channelsLast",
    );
    const [b, inH, inW] = inShape;
    const { outHeight: oH, outWidth: oW, strideHeight: sH, strideWidth: sW } = info;
    const kH = info.filterHeight, kW = info.filterWidth;
    const ch = filter.shape[3];
    let g: tf.Tensor4D = dy;
    if (sH > 1 || sW > 1) {
      const stuffed = tf.pad(tf.reshape(dy, [b, oH, 1, oW, 1, ch]), [
        [0, 0],
        [0, 0],
        [0, sH - 1],
        [0, 0],
        [0, sW - 1],
        [0, 0],
      ]);
      g = tf.slice(tf.reshape(stuffed, [b, oH * sH, oW * sW, ch]) as tf.Tensor4D, [0, 0, 0, 0], [
        -1,
        (oH - 1) * sH + 1,
        (oW - 1) * sW + 1,
        -1,
      ]);
    }
    const gh = g.shape[1], gw = g.shape[2];
    const top = kH - 1 - info.padInfo.top, left = kW - 1 - info.padInfo.left;
    g = padOrCropHW(g, top, inH + kH - 1 - gh - top, left, inW + kW - 1 - gw - left);
    const wf = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    const dx = tf.conv2d(g, wf as tf.Tensor4D, 1, "valid");
    return nchw ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
  });
}

/**
 * Tile as a broadcast: reshape x to [1, d0, 1, d1, ...], add it to zeros [r0, d0, r1, d1, ...]
 * (the extra axis only where both the size and the repeat exceed 1), reshape to the result.
 */
function tile(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap }): tf.Tensor {
  const reps = (args.attrs as unknown as { reps: number[] }).reps;
  return tf.tidy(() => {
    const x = asTensor(args.inputs.x);
    if (
      x.rank + x.shape.filter((d, i) => d > 1 && reps[i] > 1).length > 6 || x.dtype !== "float32"
    ) {
      // Fall back to the stock (slow but general) path via a concat of copies.
      let y: tf.Tensor = x;
      reps.forEach((r, axis) => {
        if (r > 1) y = tf.concat(Array.from({ length: r }, () => y), axis);
      });
      return y === x ? tf.clone(x) : y;
    }
    const inter: number[] = [];
    const big: number[] = [];
    x.shape.forEach((d, i) => {
      if (d > 1 && reps[i] > 1) {
        inter.push(1, d);
        big.push(reps[i], d);
      } else {
        inter.push(d);
        big.push(d * reps[i]);
      }
    });
    const out = tf.add(tf.zeros(big), tf.reshape(x, inter));
    return tf.reshape(out, x.shape.map((d, i) => d * reps[i]));
  });
}

let registered = false;

/**
 * Replace the wasm `Conv2DBackpropInput` and `Tile` kernels with the faster compositions above.
 * Idempotent. Call before training on the wasm backend.
 */
export function registerTrainKernels(): void {
  if (registered) return;
  const kernels: Array<[string, tf.KernelFunc]> = [
    ["Conv2DBackpropInput", conv2DBackpropInput as unknown as tf.KernelFunc],
    ["Tile", tile as unknown as tf.KernelFunc],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, "wasm") != null) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  }
  registered = true;
}
