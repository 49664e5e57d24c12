/**
 * Op constructors from plain parameters, for the front ends that do not start from a tfjs
 * layer (GraphModel, ONNX). Every constructor returns an {@linkcode Op} of the same kind,
 * with the same parameter fields, as the LayersModel front end (`core/layer_ops.ts`) builds
 * for the equivalent Keras layer, so that backward rules (excitation backprop, guided
 * backprop, deconvnet, ...) apply unchanged. Names and signatures follow the parameter-based
 * constructors of `core/layer_ops.ts` (`convOp(layer, className, attrs)`, ...), so that one
 * set can serve every front end.
 *
 * Weights given to a constructor must outlive the op (model weights, or tensors the front
 * end keeps until the session is disposed).
 *
 * @module
 */
import {
  activationOp,
  depthwiseAsDense,
  dilatedKernel,
  type Op,
  type OpKind,
} from "../layer_ops.ts";
import {
  conv2d,
  matMulTransposeB,
  maxPoolInputGrad,
  sameConvTranspose,
  type Tensor,
  type Tensor2D,
  type Tensor4D,
  tf,
} from "../tensor.ts";

export { activationOp };

/** Attributes of a 2-D convolution (plain: HWIO kernel; depthwise: HWCM kernel). */
export interface ConvAttrs {
  /** Kernel: HWIO for a convolution, HWCM (channel multiplier M) for a depthwise one. */
  kernel: Tensor;
  /** Bias `[out]`, if any. */
  bias?: Tensor;
  /** Strides `[sh, sw]` (default `[1, 1]`). */
  strides?: [number, number];
  /** TF padding mode (default `valid`). */
  padding?: "same" | "valid";
  /** Dilations `[dh, dw]` (default `[1, 1]`). */
  dilations?: [number, number];
}

/** Gradient of `f` at `inputs` contracted with `dy`, recomputing only this op. */
function vjp(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], dy: Tensor): Tensor[] {
  return tf.grads((...xs: Tensor[]) => f(...xs))(inputs, dy);
}

const dilated = (d: [number, number]): boolean => d[0] !== 1 || d[1] !== 1;

/**
 * Sums a gradient over the axes along which `shape` was broadcast to `g.shape`, so that
 * the result has `shape` (numpy broadcasting: leading axes added, size-1 axes stretched).
 */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  return tf.tidy(() => {
    const lead = g.rank - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.rank; i++) {
      if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    }
    const s = axes.length ? g.sum(axes, true) : g;
    return s.reshape(shape as number[]);
  });
}

/** A `conv2d` op (NHWC, HWIO kernel), bias included. */
export function convOp(layer: string, className: string, a: ConvAttrs): Op {
  const { kernel, bias } = a;
  const strides = a.strides ?? [1, 1];
  const padding = a.padding ?? "valid";
  const dilations = a.dilations ?? [1, 1];
  return {
    kind: "conv2d",
    layer,
    className,
    params: { kernel, bias, strides, padding, dilations },
    forward: ([x]) =>
      tf.tidy(() => {
        const y = conv2d(x as Tensor4D, kernel, strides, padding, dilations);
        return bias ? y.add(bias) : y;
      }),
    backward: (dy, [x]) => {
      if (dilated(dilations)) {
        const shape = x.shape as [number, number, number, number];
        return [tf.tidy(() => {
          const k = dilatedKernel(kernel, dilations);
          return tf.conv2dTranspose(dy as Tensor4D, k, shape, strides, padding);
        })];
      }
      const fast = sameConvTranspose(dy as Tensor4D, kernel, strides, padding);
      if (fast) return [fast];
      const shape = x.shape as [number, number, number, number];
      return [tf.conv2dTranspose(dy as Tensor4D, kernel as Tensor4D, shape, strides, padding)];
    },
  };
}

/** A depthwise convolution op (kind `depthwise_conv2d`, HWCM kernel), bias included. */
export function depthwiseOp(layer: string, className: string, a: ConvAttrs): Op {
  const { kernel, bias } = a;
  const strides = a.strides ?? [1, 1];
  const padding = a.padding ?? "valid";
  const dilations = a.dilations ?? [1, 1];
  return {
    kind: "depthwise_conv2d",
    layer,
    className,
    params: { kernel, bias, strides, padding, dilations },
    forward: ([x]) =>
      tf.tidy(() => {
        const k = kernel as Tensor4D;
        const y = tf.depthwiseConv2d(x as Tensor4D, k, strides, padding, "NHWC", dilations);
        return bias ? y.add(bias) : y;
      }),
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const dense = depthwiseAsDense(kernel);
        const shape = x.shape as [number, number, number, number];
        const k = dilated(dilations) ? dilatedKernel(dense, dilations) : dense;
        return [tf.conv2dTranspose(dy as Tensor4D, k, shape, strides, padding)];
      }),
  };
}

/** A fully connected op (kind `dense`): `x · kernel + bias` over the last axis. */
export function denseOp(layer: string, className: string, kernel: Tensor, bias?: Tensor): Op {
  const flat = (x: Tensor): Tensor2D => x.reshape([-1, x.shape[x.rank - 1]]) as Tensor2D;
  return {
    kind: "dense",
    layer,
    className,
    params: { kernel, bias },
    forward: ([x]) =>
      tf.tidy(() => {
        const y = tf.matMul(flat(x), kernel as Tensor2D);
        const yb = bias ? y.add(bias) : y;
        return yb.reshape([...x.shape.slice(0, -1), kernel.shape[1]] as number[]);
      }),
    backward: (dy, [x]) =>
      tf.tidy(() => [matMulTransposeB(flat(dy), kernel as Tensor2D).reshape(x.shape)]),
  };
}

/** A max or average pool op (TF padding semantics). */
export function poolOp(
  layer: string,
  className: string,
  kind: "max_pool" | "avg_pool",
  pool: [number, number],
  strides: [number, number],
  padding: "same" | "valid",
): Op {
  const f = (x: Tensor): Tensor =>
    kind === "max_pool"
      ? tf.maxPool(x as Tensor4D, pool, strides, padding)
      : tf.avgPool(x as Tensor4D, pool, strides, padding);
  return {
    kind,
    layer,
    className,
    params: { pool, strides, padding },
    forward: ([x]) => f(x),
    backward: (dy, [x]) =>
      kind === "max_pool"
        ? [maxPoolInputGrad(x as Tensor4D, dy as Tensor4D, pool, strides, padding)]
        : vjp(f, [x], dy),
  };
}

/** A global average / max pool over height and width (`keepDims` keeps `[N, 1, 1, C]`). */
export function globalPoolOp(
  layer: string,
  className: string,
  kind: "global_avg_pool" | "global_max_pool",
  keepDims = false,
): Op {
  return {
    kind,
    layer,
    className,
    params: {},
    forward: ([x]) =>
      kind === "global_avg_pool" ? x.mean([1, 2], keepDims) : x.max([1, 2], keepDims),
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const [n, h, w, ch] = x.shape;
        const d4 = dy.reshape([n, 1, 1, ch]);
        if (kind === "global_avg_pool") return [tf.broadcastTo(d4.div(h * w), [n, h, w, ch])];
        return [maxPoolInputGrad(x as Tensor4D, d4 as Tensor4D, [h, w], [h, w], "valid")];
      }),
  };
}

/** Inference-mode batch normalisation over the last axis (kind `batch_norm`). */
export function batchNormOp(
  layer: string,
  className: string,
  p: { mean: Tensor; variance: Tensor; gamma?: Tensor; beta?: Tensor; epsilon: number },
): Op {
  const { mean, variance, gamma, beta, epsilon } = p;
  return {
    kind: "batch_norm",
    layer,
    className,
    params: { gamma, beta, mean, variance, epsilon },
    forward: ([x]) => tf.batchNorm(x, mean, variance, beta, gamma, epsilon),
    backward: (dy) =>
      tf.tidy(() => {
        const scale = tf.rsqrt(variance.add(epsilon));
        return [dy.mul(gamma ? scale.mul(gamma) : scale)];
      }),
  };
}

/**
 * `x * gamma + beta` by constant tensors (either may be absent), broadcast over `x`: a
 * multiplication or addition by a constant in a converted graph, which is the form a folded
 * batch normalisation or an input rescaling takes. Of kind `batch_norm` (without `mean` and
 * `variance`), so that rules treat it as batch normalisation (excitation backprop passes the
 * signal through unchanged).
 */
export function affineOp(
  layer: string,
  className: string,
  p: { gamma?: Tensor; beta?: Tensor },
): Op {
  const { gamma, beta } = p;
  return {
    kind: "batch_norm",
    layer,
    className,
    params: { gamma, beta, epsilon: 0 },
    forward: ([x]) =>
      tf.tidy(() => {
        const y = gamma ? x.mul(gamma) : x.clone();
        return beta ? y.add(beta) : y;
      }),
    backward: (dy, [x]) => [tf.tidy(() => unbroadcast(gamma ? dy.mul(gamma) : dy, x.shape))],
  };
}

/** An element-wise `add` or `multiply` of two or more inputs, with numpy broadcasting. */
export function mergeOp(layer: string, className: string, kind: "add" | "multiply"): Op {
  return {
    kind,
    layer,
    className,
    params: {},
    forward: (xs) =>
      tf.tidy(() => xs.slice(1).reduce((a, b) => kind === "add" ? a.add(b) : a.mul(b), xs[0])),
    backward: (dy, xs) =>
      xs.map((x, i) =>
        tf.tidy(() => {
          const g = kind === "add"
            ? dy
            : xs.reduce((a, b, j) => (j === i ? a : a.mul(b)), dy as Tensor);
          return unbroadcast(g, x.shape);
        })
      ),
  };
}

/** A concatenation op along `axis` (negative counts from the end). */
export function concatOp(layer: string, className: string, axis: number): Op {
  return {
    kind: "concat",
    layer,
    className,
    params: { axis },
    forward: (xs) => tf.concat(xs, axis),
    backward: (dy, xs) => {
      const ax = axis < 0 ? dy.rank + axis : axis;
      return tf.split(dy, xs.map((x) => x.shape[ax]), ax);
    },
  };
}

/** Reshape to `[N, ...targetShape]`, or flatten to `[N, -1]` when `targetShape` is absent. */
export function reshapeOp(layer: string, className: string, targetShape?: number[]): Op {
  return {
    kind: "reshape",
    layer,
    className,
    params: {},
    forward: ([x]) => x.reshape([x.shape[0], ...(targetShape ?? [-1])]),
    backward: (dy, [x]) => [dy.reshape(x.shape)],
  };
}

/**
 * Removes size-1 axes (kind `reshape`): `axes` of the full tensor (never the batch axis),
 * or every size-1 axis but the batch axis when empty.
 */
export function squeezeOp(layer: string, className: string, axes: readonly number[]): Op {
  const target = (shape: readonly number[]): number[] => {
    const drop = axes.length
      ? axes.map((a) => (a < 0 ? a + shape.length : a))
      : shape.map((d, i) => (i > 0 && d === 1 ? i : -1));
    return shape.filter((_, i) => !drop.includes(i));
  };
  return {
    kind: "reshape",
    layer,
    className,
    params: {},
    forward: ([x]) => x.reshape(target(x.shape)),
    backward: (dy, [x]) => [dy.reshape(x.shape)],
  };
}

/** An identity op. */
export function identityOp(layer: string, className: string): Op {
  return {
    kind: "identity",
    layer,
    className,
    params: {},
    forward: ([x]) => x.clone(),
    backward: (dy) => [dy.clone()],
  };
}

/** Zero padding (`crop` false) or cropping (`crop` true) of H and W. */
export function padCropOp(
  layer: string,
  className: string,
  pads: [[number, number], [number, number]],
  crop: boolean,
): Op {
  const padFn = (x: Tensor): Tensor => tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]]);
  const cropFn = (x: Tensor): Tensor => {
    const [n, h, w, ch] = x.shape;
    const size = [n, h - pads[0][0] - pads[0][1], w - pads[1][0] - pads[1][1], ch];
    return x.slice([0, pads[0][0], pads[1][0], 0], size);
  };
  return {
    kind: crop ? "crop" : "pad",
    layer,
    className,
    params: { pads },
    forward: ([x]) => crop ? cropFn(x) : padFn(x),
    backward: (dy) => [crop ? padFn(dy) : cropFn(dy)],
  };
}

/** Kinds whose ops lower the resolution when strided. */
export const WINDOW_KINDS: ReadonlySet<OpKind> = new Set<OpKind>([
  "conv2d",
  "depthwise_conv2d",
  "max_pool",
  "avg_pool",
]);

/** Kinds that carry a kernel (TorchRay's classifier choice is the last of them). */
export const KERNEL_KINDS: ReadonlySet<OpKind> = new Set<OpKind>([
  "conv2d",
  "depthwise_conv2d",
  "dense",
]);

/** Whether an op is a window op with a stride above 1. */
export function isStrided(op: Op): boolean {
  const s = op.params.strides;
  return WINDOW_KINDS.has(op.kind) && s !== undefined && (s[0] > 1 || s[1] > 1);
}
