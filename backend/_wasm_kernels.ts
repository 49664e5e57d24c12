/**
 * Private: kernels that `@tensorflow/tfjs-backend-wasm` 4.22 lacks or gets
 * wrong, registered for the `"wasm"` backend by {@link registerWasmKernels}.
 *
 * - `Conv2DBackpropFilter` (missing; needed to train Conv2D layers),
 * - `DepthwiseConv2dNativeBackpropFilter` / `DepthwiseConv2dNativeBackpropInput`
 *   (missing; needed to train DepthwiseConv2D / SeparableConv2D layers),
 * - `MaxPoolGrad` (present but wrong on ties, all-negative windows and
 *   all-zero multi-channel windows; replaced by one that matches tfjs-cpu
 *   bit for bit; also registered as `GradualMaxPoolGradFirstMax`, the kernel that
 *   `maxPoolInputGrad` in `core/tensor.ts` runs where a backend has it),
 * - the Winograd data-movement kernels of `_winograd.ts`,
 * - `Conv2DBackpropInput` and `Tile` (present but plain scalar loops, 10x slower than the
 *   XNNPACK convolution and broadcasting add they are rebuilt from here; they dominated
 *   training steps and every transposed convolution of a backward pass).
 *
 * The gradient-of-convolution kernels are composed from tf ops. That is safe
 * inside a kernelFunc: the engine does not record ops on the gradient tape
 * while a kernel runs (`kernelDepth > 0`), intermediates are freed by
 * `tf.tidy`, and a kernel may return a `Tensor` (it is used as the output
 * as is). `MaxPoolGrad` is a plain JS loop over the wasm heap.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isHeapBackend } from "./_heap.ts";
import { WINOGRAD_KERNELS } from "./_winograd.ts";

type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;
type Rounding = "floor" | "round" | "ceil" | undefined;

type Tensor4D = tf.Tensor4D;

/** A kernel input by name; throws if absent. */
function need(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const info = inputs[name];
  if (info == null) throw new Error(`kernel input '${name}' missing`);
  return info;
}

/** A 4-D Tensor for a kernel input; wraps a bare TensorInfo (call inside a tidy). */
function asTensor(inputs: tf.NamedTensorInfoMap, name: string): Tensor4D {
  const info = need(inputs, name);
  if (info instanceof tf.Tensor) return info as Tensor4D;
  return tf.engine().makeTensorFromTensorInfo(info) as Tensor4D;
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : v;
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes
 * of an NHWC tensor.
 */
function padOrCrop(
  x: Tensor4D,
  top: number,
  bottom: number,
  left: number,
  right: number,
): Tensor4D {
  let y = x;
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    y = tf.pad(y, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [
      Math.max(0, left),
      Math.max(0, right),
    ], [0, 0]]);
  }
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [, h, w] = y.shape;
    const t = Math.max(0, -top), l = Math.max(0, -left);
    y = tf.slice(y, [0, t, l, 0], [
      -1,
      h - t - Math.max(0, -bottom),
      w - l - Math.max(0, -right),
      -1,
    ]);
  }
  return y;
}

/**
 * Input padded/cropped so that exactly the rows/columns that the forward
 * convolution touched remain: height `(outH - 1) * strideH + effH`.
 */
function touchedInput(
  x: Tensor4D,
  info: tf.backend_util.Conv2DInfo,
): Tensor4D {
  const needH = (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight;
  const needW = (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth;
  const top = info.padInfo.top, left = info.padInfo.left;
  return padOrCrop(x, top, needH - top - info.inHeight, left, needW - left - info.inWidth);
}

/** Attributes the convolution backprop kernels share (tfjs's names). */
interface ConvAttrs {
  strides: number | [number, number];
  /** Absent for the Conv2D backprops (no dilation). */
  dilations?: number | [number, number];
  pad: Pad;
  dimRoundingMode?: Rounding;
}

/** NHWC geometry of a (depthwise) convolution of `inShape` by `filterShape` under `attrs`. */
function convInfo(
  inShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: ConvAttrs,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    "channelsLast",
  );
}

/**
 * dW[i,j,c,o] = sum_{b,y,x} xpad[b, y*sH + i, x*sW + j, c] * dy[b,y,x,o]:
 * a stride-1 convolution of x (channels as batch, batch as channels) with
 * dy as the filter, dilated by the forward stride.
 */
function conv2DBackpropFilter(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.Tensor {
  const { inputs } = args;
  const attrs = (args.attrs ?? {}) as unknown as ConvAttrs & {
    dataFormat?: "NHWC" | "NCHW";
    filterShape: [number, number, number, number];
  };
  return tf.tidy(() => {
    let x = asTensor(inputs, "x");
    let dy = asTensor(inputs, "dy");
    if (attrs.dataFormat === "NCHW") {
      x = tf.transpose(x, [0, 2, 3, 1]);
      dy = tf.transpose(dy, [0, 2, 3, 1]);
    }
    const info = convInfo(x.shape, attrs.filterShape, attrs, false);
    const xp = touchedInput(x, info);
    const xT = tf.transpose(xp, [3, 1, 2, 0]); // [inC, needH, needW, batch]
    const f = tf.transpose(dy, [1, 2, 0, 3]); // [outH, outW, batch, outC]
    const r = tf.conv2d(xT, f, 1, "valid", "NHWC", [info.strideHeight, info.strideWidth]);
    return tf.transpose(r, [1, 2, 0, 3]); // [fH, fW, inC, outC]
  });
}

/**
 * Depthwise dW[i,j,c,m] = sum_{b,y,x} xpad[b, y*sH + i*dH, x*sW + j*dW, c] *
 * dy[b,y,x,c*M+m]: one depthwise convolution over batch*inC channels with dy
 * as the filter, then a sum over the batch.
 */
function depthwiseBackpropFilter(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.Tensor {
  const { inputs } = args;
  const attrs = (args.attrs ?? {}) as unknown as ConvAttrs & {
    filterShape: [number, number, number, number];
  };
  return tf.tidy(() => {
    const x = asTensor(inputs, "x");
    const dy = asTensor(inputs, "dy");
    const [fH, fW, inC, mult] = attrs.filterShape;
    const info = convInfo(x.shape, attrs.filterShape, attrs, true);
    const [b] = x.shape;
    const { outHeight: oH, outWidth: oW, strideHeight: sH, strideWidth: sW } = info;
    const [dH, dW] = [info.dilationHeight, info.dilationWidth];
    const xp = touchedInput(x, info);
    const [, hp, wp] = xp.shape;
    // [1, hp, wp, b*inC]
    const xr = tf.reshape<tf.Rank.R4>(tf.transpose(xp, [1, 2, 0, 3]), [1, hp, wp, b * inC]);
    // filter [oH, oW, b*inC, mult]
    const f = tf.reshape<tf.Rank.R4>(
      tf.transpose(tf.reshape(dy, [b, oH, oW, inC * mult]), [1, 2, 0, 3]),
      [
        oH,
        oW,
        b * inC,
        mult,
      ],
    );
    // Output rows 0..effH-1; filter tap i sits at row i*dH.
    let r = tf.depthwiseConv2d(xr, f, 1, "valid", "NHWC", [sH, sW]);
    if (dH > 1 || dW > 1) {
      r = tf.stridedSlice(r, [0, 0, 0, 0], [1, r.shape[1], r.shape[2], b * inC * mult], [
        1,
        dH,
        dW,
        1,
      ]) as Tensor4D;
    }
    return tf.sum(tf.reshape(r, [fH, fW, b, inC, mult]), 2);
  });
}

/**
 * The signal a transposed convolution correlates with the flipped filter: dy zero-stuffed by
 * the forward stride, then padded (or cropped) by `effK - 1 - pad` so that a stride-1 `valid`
 * correlation gives the input's height and width.
 */
function stuffAndPad(
  dy: Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  inH: number,
  inW: number,
): Tensor4D {
  const [b, oH, oW, ch] = dy.shape;
  const { strideHeight: sH, strideWidth: sW } = info;
  const effH = info.effectiveFilterHeight, effW = info.effectiveFilterWidth;
  let g: Tensor4D = dy;
  if (sH > 1 || sW > 1) {
    const stuffed = tf.pad(tf.reshape(dy, [b, oH, 1, oW, 1, ch]), [
      [0, 0],
      [0, 0],
      [0, sH - 1],
      [0, 0],
      [0, sW - 1],
      [0, 0],
    ]);
    g = tf.slice(tf.reshape<tf.Rank.R4>(stuffed, [b, oH * sH, oW * sW, ch]), [0, 0, 0, 0], [
      -1,
      (oH - 1) * sH + 1,
      (oW - 1) * sW + 1,
      -1,
    ]);
  }
  const gh = g.shape[1], gw = g.shape[2];
  const top = effH - 1 - info.padInfo.top, left = effW - 1 - info.padInfo.left;
  return padOrCrop(g, top, inH + effH - 1 - gh - top, left, inW + effW - 1 - gw - left);
}

/**
 * Depthwise dx: zero-stuff dy by the stride, pad by `effK - 1 - pad`,
 * correlate with the spatially flipped filter (one channel per input
 * channel and multiplier), then sum over the multiplier.
 */
function depthwiseBackpropInput(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.Tensor {
  const { inputs } = args;
  const attrs = (args.attrs ?? {}) as unknown as ConvAttrs & {
    inputShape: [number, number, number, number];
  };
  return tf.tidy(() => {
    const dy = asTensor(inputs, "dy");
    const filter = asTensor(inputs, "filter");
    const [fH, fW, inC, mult] = filter.shape;
    const info = convInfo(attrs.inputShape, filter.shape, attrs, true);
    const [b, inH, inW] = attrs.inputShape;
    const ch = inC * mult;
    const g = stuffAndPad(dy, info, inH, inW);
    const flipped = tf.reshape<tf.Rank.R4>(tf.reverse(filter, [0, 1]), [fH, fW, ch, 1]);
    const r = tf.depthwiseConv2d(g, flipped, 1, "valid", "NHWC", [
      info.dilationHeight,
      info.dilationWidth,
    ]);
    return tf.sum(tf.reshape(r, [b, inH, inW, inC, mult]), 4);
  });
}

/**
 * MaxPoolGrad with tfjs-cpu semantics: the gradient of each window goes to
 * its first strict maximum in row-major scan order (padding is never
 * selected; a window of only NaN / -Infinity gets none). Accumulates in
 * float64 in the same order as tfjs-cpu, so results are bit-identical.
 */
function maxPoolGrad(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown },
): tf.TensorInfo {
  const { inputs, backend } = args;
  const attrs = (args.attrs ?? {}) as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: Pad;
    dimRoundingMode?: Rounding;
  };
  if (!isHeapBackend(backend)) throw new Error("MaxPoolGrad: not a wasm backend");
  const x = need(inputs, "input"), dy = need(inputs, "dy");
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  // Inputs living on another backend move here on first touch (which may grow the heap).
  backend.typedArrayFromHeap(x);
  backend.typedArrayFromHeap(dy);
  const dx = backend.makeOutput(x.shape.slice(), "float32");
  // Views only after the allocation above (a heap grow detaches old views).
  const xv = backend.typedArrayFromHeap(x);
  const dyv = backend.typedArrayFromHeap(dy);
  const dxv = backend.typedArrayFromHeap(dx);
  const { batchSize: nB, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: oH, outWidth: oW, strideHeight: sH, strideWidth: sW } = info;
  const [kH, kW] = pair(attrs.filterSize);
  const top = info.padInfo.top, left = info.padInfo.left;
  const acc = new Float64Array(H * W * C);
  for (let b = 0; b < nB; b++) {
    const xBase = b * H * W * C;
    const dyBase = b * oH * oW * C;
    acc.fill(0);
    for (let yR = 0; yR < oH; yR++) {
      const r0 = yR * sH - top;
      const rMin = Math.max(0, r0), rMax = Math.min(H, r0 + kH);
      for (let yC = 0; yC < oW; yC++) {
        const c0 = yC * sW - left;
        const cMin = Math.max(0, c0), cMax = Math.min(W, c0 + kW);
        const dyOff = dyBase + (yR * oW + yC) * C;
        for (let d = 0; d < C; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let r = rMin; r < rMax; r++) {
            for (let c = cMin; c < cMax; c++) {
              const i = (r * W + c) * C + d;
              const v = xv[xBase + i];
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          if (at >= 0) acc[at] += dyv[dyOff + d];
        }
      }
    }
    dxv.set(acc, xBase);
  }
  return dx;
}

/**
 * dx of a conv2d (NHWC, dilation 1): zero-stuff dy by the stride, pad by `k - 1 - pad`, and
 * correlate with the spatially flipped filter whose in/out channels are swapped.
 */
function conv2DBackpropInput(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.Tensor {
  const attrs = (args.attrs ?? {}) as unknown as ConvAttrs & {
    dataFormat?: "NHWC" | "NCHW";
    inputShape: [number, number, number, number];
  };
  return tf.tidy(() => {
    let dy: Tensor4D = asTensor(args.inputs, "dy");
    const filter = asTensor(args.inputs, "filter");
    const nchw = attrs.dataFormat === "NCHW";
    const inShape: [number, number, number, number] = nchw
      ? [attrs.inputShape[0], attrs.inputShape[2], attrs.inputShape[3], attrs.inputShape[1]]
      : attrs.inputShape;
    if (nchw) dy = tf.transpose(dy, [0, 2, 3, 1]) as Tensor4D;
    const info = convInfo(inShape, filter.shape, attrs, false);
    const [, inH, inW] = inShape;
    const g = stuffAndPad(dy, info, inH, inW);
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
    const info = need(args.inputs, "x");
    const x: tf.Tensor = info instanceof tf.Tensor
      ? info
      : tf.engine().makeTensorFromTensorInfo(info);
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

const KERNELS: Array<[string, tf.KernelFunc]> = [
  ["Conv2DBackpropFilter", conv2DBackpropFilter as unknown as tf.KernelFunc],
  ["DepthwiseConv2dNativeBackpropFilter", depthwiseBackpropFilter as unknown as tf.KernelFunc],
  ["DepthwiseConv2dNativeBackpropInput", depthwiseBackpropInput as unknown as tf.KernelFunc],
  ["MaxPoolGrad", maxPoolGrad as unknown as tf.KernelFunc],
  // The same kernel under the name `maxPoolInputGrad` (core/tensor.ts, FIRST_MAX_POOL_GRAD)
  // looks for: where it is registered, the core runs it instead of its portable path.
  ["GradualMaxPoolGradFirstMax", maxPoolGrad as unknown as tf.KernelFunc],
  ["Conv2DBackpropInput", conv2DBackpropInput as unknown as tf.KernelFunc],
  ["Tile", tile as unknown as tf.KernelFunc],
  ...WINOGRAD_KERNELS,
];

let registered = false;

/**
 * Registers (or replaces) the extra kernels for the `"wasm"` backend.
 * Idempotent; safe to call before or after the wasm backend is initialised.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (tf.getKernel(kernelName, "wasm") != null) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  }
  registered = true;
}
