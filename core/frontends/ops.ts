/**
 * Op constructors from plain parameters, for the front ends that do not start from a tfjs
 * layer (GraphModel, and the ONNX front end to come). Every constructor returns an
 * {@linkcode Op} of the same kind, with the same parameter fields, as the LayersModel front
 * end (`core/layer_ops.ts`) builds for the equivalent Keras layer, so that backward rules
 * (excitation backprop, guided backprop, deconvnet, ...) apply unchanged.
 *
 * Weights given to a constructor must outlive the op (model weights, or tensors the front
 * end keeps until the model is disposed).
 *
 * @module
 */
import { activationOp, depthwiseAsDense, type Op, type OpKind } from "../layer_ops.ts";
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

/** Where an op comes from: its node name and the source framework's op type. */
export interface OpOrigin {
  /** Node (layer) name the op belongs to. */
  readonly layer: string;
  /** Source op type, e.g. `_FusedConv2D` or `Conv` (shown in error messages). */
  readonly className: string;
}

/** Parameters of a 2-D convolution (NHWC input, HWIO kernel, or HWCM for depthwise). */
export interface ConvSpec {
  /** Kernel: HWIO for a convolution, HWCM (channel multiplier M) for a depthwise one. */
  readonly kernel: Tensor;
  /** Bias `[out]`, if any. */
  readonly bias?: Tensor;
  /** Strides `[sh, sw]`. */
  readonly strides: [number, number];
  /** TF padding mode. */
  readonly padding: "same" | "valid";
  /** Dilations `[dh, dw]`. */
  readonly dilations: [number, number];
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

/** A `conv2d` op (kind `conv2d`), bias included. */
export function convolutionOp(origin: OpOrigin, spec: ConvSpec): Op {
  const { kernel, bias, strides, padding, dilations } = spec;
  return {
    kind: "conv2d",
    ...origin,
    params: { kernel, bias, strides, padding, dilations },
    forward: ([x]) =>
      tf.tidy(() => {
        const y = conv2d(x as Tensor4D, kernel, strides, padding, dilations);
        return bias ? y.add(bias) : y;
      }),
    backward: (dy, [x]) => {
      if (dilated(dilations)) {
        const f = (xx: Tensor): Tensor =>
          tf.conv2d(xx as Tensor4D, kernel as Tensor4D, strides, padding, "NHWC", dilations);
        return vjp(f, [x], dy);
      }
      const fast = sameConvTranspose(dy as Tensor4D, kernel, strides, padding);
      if (fast) return [fast];
      const shape = x.shape as [number, number, number, number];
      return [tf.conv2dTranspose(dy as Tensor4D, kernel as Tensor4D, shape, strides, padding)];
    },
  };
}

/** A depthwise convolution op (kind `depthwise_conv2d`, HWCM kernel), bias included. */
export function depthwiseOp(origin: OpOrigin, spec: ConvSpec): Op {
  const { kernel, bias, strides, padding, dilations } = spec;
  return {
    kind: "depthwise_conv2d",
    ...origin,
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
        if (dilated(dilations)) {
          const f = (xx: Tensor): Tensor =>
            tf.conv2d(xx as Tensor4D, dense, strides, padding, "NHWC", dilations);
          return vjp(f, [x], dy);
        }
        const shape = x.shape as [number, number, number, number];
        return [tf.conv2dTranspose(dy as Tensor4D, dense, shape, strides, padding)];
      }),
  };
}

/** A fully connected op (kind `dense`): `x · kernel + bias` over the last axis. */
export function denseOp(origin: OpOrigin, kernel: Tensor, bias?: Tensor): Op {
  const flat = (x: Tensor): Tensor2D => x.reshape([-1, x.shape[x.rank - 1]]) as Tensor2D;
  return {
    kind: "dense",
    ...origin,
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

/** A max or average pool op (kind `max_pool` / `avg_pool`, TF padding semantics). */
export function poolOp(
  origin: OpOrigin,
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
    ...origin,
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
  origin: OpOrigin,
  kind: "global_avg_pool" | "global_max_pool",
  keepDims: boolean,
): Op {
  return {
    kind,
    ...origin,
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

/** Per-channel affine parameters of a `batch_norm` op. */
export interface AffineSpec {
  /** Scale (gamma), if any. */
  readonly gamma?: Tensor;
  /** Offset (beta), if any. */
  readonly beta?: Tensor;
  /** Moving mean (with `variance`: inference-mode batch normalisation). */
  readonly mean?: Tensor;
  /** Moving variance. */
  readonly variance?: Tensor;
  /** Epsilon added to the variance. */
  readonly epsilon?: number;
}

/**
 * A per-channel (or scalar) affine op of kind `batch_norm`: inference batch normalisation
 * `(x - mean) / sqrt(variance + epsilon) * gamma + beta` when `mean` and `variance` are
 * given, else `x * gamma + beta` (a multiplication or addition by a constant, which is the
 * form a folded batch normalisation takes in converted graphs). Rules treat it as batch
 * normalisation (excitation backprop passes the signal through unchanged).
 */
export function affineOp(origin: OpOrigin, spec: AffineSpec): Op {
  const { gamma, beta, mean, variance } = spec;
  const epsilon = spec.epsilon ?? 0;
  const normalise = mean !== undefined && variance !== undefined;
  const scale = (): Tensor | undefined => {
    if (!normalise) return gamma;
    const s = tf.rsqrt(variance.add(epsilon));
    return gamma ? s.mul(gamma) : s;
  };
  return {
    kind: "batch_norm",
    ...origin,
    params: { gamma, beta, mean, variance, epsilon },
    forward: ([x]) =>
      tf.tidy(() => {
        if (normalise) return tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
        const y = gamma ? x.mul(gamma) : x.clone();
        return beta ? y.add(beta) : y;
      }),
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const s = scale();
        return [unbroadcast(s ? dy.mul(s) : dy, x.shape)];
      }),
  };
}

/** An element-wise `add` or `multiply` of two or more inputs, with numpy broadcasting. */
export function mergeOp(origin: OpOrigin, kind: "add" | "multiply"): Op {
  return {
    kind,
    ...origin,
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
export function concatOp(origin: OpOrigin, axis: number): Op {
  return {
    kind: "concat",
    ...origin,
    params: { axis },
    forward: (xs) => tf.concat(xs, axis),
    backward: (dy, xs) => {
      const ax = axis < 0 ? dy.rank + axis : axis;
      return tf.split(dy, xs.map((x) => x.shape[ax]), ax);
    },
  };
}

/**
 * A reshape op (kind `reshape`) that keeps the batch axis: `target` is the per-example
 * target shape (one entry may be -1), or a function of the per-example input shape
 * (a squeeze, a flatten).
 */
export function reshapeOp(
  origin: OpOrigin,
  target: readonly number[] | ((shape: number[]) => number[]),
): Op {
  const shapeOf = (x: Tensor): number[] =>
    typeof target === "function" ? target(x.shape.slice(1)) : [...target];
  return {
    kind: "reshape",
    ...origin,
    params: {},
    forward: ([x]) => x.reshape([x.shape[0], ...shapeOf(x)]),
    backward: (dy, [x]) => [dy.reshape(x.shape)],
  };
}

/** An identity op. */
export function identityOp(origin: OpOrigin): Op {
  return {
    kind: "identity",
    ...origin,
    params: {},
    forward: ([x]) => x.clone(),
    backward: (dy) => [dy.clone()],
  };
}

/** Zero padding of height and width: `pads` = `[[top, bottom], [left, right]]`. */
export function padOp(origin: OpOrigin, pads: [[number, number], [number, number]]): Op {
  return {
    kind: "pad",
    ...origin,
    params: { pads },
    forward: ([x]) => tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]]),
    backward: (dy) => {
      const [n, h, w, ch] = dy.shape;
      const size = [n, h - pads[0][0] - pads[0][1], w - pads[1][0] - pads[1][1], ch];
      return [dy.slice([0, pads[0][0], pads[1][0], 0], size)];
    },
  };
}

/**
 * An `activation` op named in the tfjs-layers spelling (`relu`, `relu6`, `sigmoid`, `tanh`,
 * `softmax`, `elu`, `selu`, ...), as the LayersModel front end builds it.
 */
export function activation(origin: OpOrigin, name: string): Op {
  return activationOp(origin.layer, origin.className, name);
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
