/**
 * How each Keras layer class runs forward and backward in the toolkit's own executor.
 *
 * A layer compiles to one or more {@linkcode Op}s: its linear part (conv, dense, pool, ...)
 * and, when the layer has a built-in activation, an `activation` op (a `SeparableConv2D`
 * compiles to its depthwise and pointwise convolutions, then its activation). Every op has a
 * `kind` that backward rules (excitation backprop, guided backprop, ...) key on, its
 * parameters, a forward function and a default vector-Jacobian product.
 *
 * The op constructors (`convOp`, `denseOp`, `activationOp`, ...) take plain tensors and
 * attributes, so any front end (tfjs LayersModels here, GraphModel nodes elsewhere) builds
 * the same ops; {@linkcode compileLayer} is the LayersModel front end. A layer parameter the
 * executor does not implement is an error naming the layer and the parameter, never ignored.
 *
 * The forward functions use plain convolutions / `tf.matMul` rather than the fused ops of
 * `layer.apply`: the fused ops' gradients also compute the weight gradient, which the wasm
 * backend cannot, and which saliency never needs.
 *
 * @module
 */
import { conv2d, matMulTransposeB, sameConvTranspose } from "../backend/ops.ts";
import { maxPoolInputGrad, type Tensor, type Tensor2D, type Tensor4D, tf } from "./tensor.ts";
import { NORMALIZATION_EPSILON } from "./keras_layers.ts";

/** What an op does, for backward rules to key on. */
export type OpKind =
  | "conv2d"
  | "depthwise_conv2d"
  | "dense"
  | "max_pool"
  | "avg_pool"
  | "global_avg_pool"
  | "global_max_pool"
  | "batch_norm"
  | "scale"
  | "add"
  | "multiply"
  | "average"
  | "concat"
  | "activation"
  | "reshape"
  | "identity"
  | "pad"
  | "crop"
  | "upsample"
  | "generic";

/** Parameters of an op; which fields are set depends on {@linkcode OpKind}. */
export interface OpParams {
  /** Conv / dense kernel (HWIO for conv, [in, out] for dense, HWCM for depthwise). */
  kernel?: Tensor;
  /** Bias, if the layer has one. */
  bias?: Tensor;
  /** Window strides [sh, sw]. */
  strides?: [number, number];
  /** Window size [kh, kw] of a pool. */
  pool?: [number, number];
  /** TF padding mode. */
  padding?: "same" | "valid";
  /** Conv dilation [dh, dw]. */
  dilations?: [number, number];
  /**
   * Activation function name of an `activation` op (tfjs-layers spelling: `relu`, `relu6`,
   * `swish`, `gelu`, ..., plus `leaky_relu`, `prelu` and `thresholded_relu` for the
   * advanced-activation layers).
   */
  activation?: string;
  /** Clipped ReLU: upper bound of a `relu` (tfjs `ReLU(maxValue)`), if any. */
  maxValue?: number;
  /** `leaky_relu` / `elu` slope or scale; `thresholded_relu` theta. */
  alpha?: number;
  /** `prelu`'s learned slopes (broadcast against the input). */
  slope?: Tensor;
  /** Batch norm: gamma / beta / moving mean / moving variance and epsilon. */
  gamma?: Tensor;
  /** Batch norm offset. */
  beta?: Tensor;
  /** Batch norm moving mean. */
  mean?: Tensor;
  /** Batch norm moving variance. */
  variance?: Tensor;
  /** Batch norm epsilon. */
  epsilon?: number;
  /** `scale` op (`Rescaling`): multiplier. */
  scale?: number;
  /** `scale` op (`Rescaling`): offset added after the multiplier. */
  offset?: number;
  /** Concatenation / softmax axis (negative counts from the end). */
  axis?: number;
  /** Zero padding / cropping amounts [[top, bottom], [left, right]]. */
  pads?: [[number, number], [number, number]];
  /** Upsampling factors [sh, sw]. */
  size?: [number, number];
  /** Upsampling interpolation. */
  interpolation?: "nearest" | "bilinear";
  /** Target shape of a `reshape` without the batch dimension (absent: flatten). */
  targetShape?: number[];
}

/** One executable step of a layer. */
export interface Op {
  /** The op's kind (what rules key on). */
  readonly kind: OpKind;
  /** Name of the layer it belongs to. */
  readonly layer: string;
  /** Keras class name of that layer. */
  readonly className: string;
  /** Parameters (weights are owned by the model, never dispose them). */
  readonly params: OpParams;
  /** Forward computation. */
  forward(inputs: Tensor[]): Tensor;
  /** Default vector-Jacobian product: gradients w.r.t. each input given `dy`. */
  backward(dy: Tensor, inputs: Tensor[], output: Tensor): Tensor[];
}

// deno-lint-ignore no-explicit-any
type AnyLayer = any;

const pair = (v: unknown, d: number): [number, number] => {
  if (Array.isArray(v)) return [Number(v[0] ?? d), Number(v[1] ?? v[0] ?? d)];
  if (typeof v === "number") return [v, v];
  return [d, d];
};

/** Gradient of `f` at `inputs` contracted with `dy`, recomputing only this op. */
function vjp(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], dy: Tensor): Tensor[] {
  return tf.grads((...xs: Tensor[]) => f(...xs))(inputs, dy);
}

/**
 * Sums `t` over the axes along which a tensor of `shape` was broadcast to `t`'s shape, and
 * gives it that shape: the gradient reaching a broadcast input (squeeze-and-excitation gates).
 */
export function unbroadcast(t: Tensor, shape: readonly number[]): Tensor {
  return tf.tidy(() => {
    if (t.shape.join() === shape.join()) return t.clone();
    const lead = t.rank - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < t.rank; i++) {
      if (i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1)) axes.push(i);
    }
    return (axes.length ? t.sum(axes, true) : t).reshape([...shape]);
  });
}

/** An error naming the layer, for an unsupported parameter or value. */
function unsupported(layer: string, className: string, what: string): Error {
  return new Error(`layer '${layer}' (${className}): ${what} is not supported`);
}

/** Extra parameters of an activation op (see {@linkcode OpParams}). */
export interface ActivationParams {
  /** Upper clip of a `relu`. */
  maxValue?: number;
  /** Slope (`leaky_relu`), scale (`elu`) or theta (`thresholded_relu`). */
  alpha?: number;
  /** `prelu` slopes. */
  slope?: Tensor;
  /** Softmax axis (default -1). */
  axis?: number;
}

/** The activation names {@linkcode activationOp} implements. */
export const ACTIVATIONS: readonly string[] = Object.freeze([
  "linear",
  "relu",
  "relu6",
  "leaky_relu",
  "prelu",
  "thresholded_relu",
  "elu",
  "selu",
  "sigmoid",
  "hardSigmoid",
  "tanh",
  "softplus",
  "softsign",
  "swish",
  "gelu",
  "gelu_new",
  "mish",
  "softmax",
  "logSoftmax",
  "hard_silu",
  "exponential",
]);

const ALIASES: Record<string, string> = {
  hard_sigmoid: "hardSigmoid",
  log_softmax: "logSoftmax",
  silu: "swish",
  hard_swish: "hard_silu",
  hardSilu: "hard_silu",
  hardSwish: "hard_silu",
  leakyRelu: "leaky_relu",
  geluNew: "gelu_new",
  leakyrelu: "leaky_relu",
};

/** Canonical tfjs-layers spelling of an activation name. */
export function canonicalActivation(name: string): string {
  return ALIASES[name] ?? ALIASES[name.toLowerCase()] ?? name;
}

function activationFn(name: string, p: ActivationParams): (x: Tensor) => Tensor {
  const alpha = p.alpha;
  switch (name) {
    case "linear":
      return (x) => x;
    case "relu":
      return p.maxValue === undefined
        ? (x) => tf.relu(x)
        : (x) => tf.clipByValue(tf.relu(x), 0, p.maxValue!);
    case "relu6":
      return (x) => tf.minimum(6, tf.relu(x));
    case "leaky_relu": // Keras' `leaky_relu` activation string has slope 0.2
      return (x) => tf.leakyRelu(x, alpha ?? 0.2);
    case "prelu":
      return (x) => tf.prelu(x, p.slope!);
    case "thresholded_relu":
      return (x) => x.mul(tf.greater(x, alpha ?? 1).cast("float32"));
    case "elu":
      return alpha === undefined || alpha === 1
        ? (x) => tf.elu(x)
        : (x) => tf.where(tf.greater(x, 0), x, tf.exp(x).sub(1).mul(alpha));
    case "selu":
      return (x) => tf.selu(x);
    case "sigmoid":
      return (x) => tf.sigmoid(x);
    case "hardSigmoid":
      return (x) => tf.clipByValue(x.mul(0.2).add(0.5), 0, 1);
    case "tanh":
      return (x) => tf.tanh(x);
    case "softplus":
      return (x) => tf.softplus(x);
    case "softsign":
      return (x) => x.div(tf.abs(x).add(1));
    case "swish":
      return (x) => x.mul(tf.sigmoid(x));
    case "gelu":
      return (x) => x.mul(tf.erf(x.div(Math.SQRT2)).add(1).mul(0.5));
    case "gelu_new":
      return (x) =>
        x.mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1)).mul(
          0.5,
        );
    case "hard_silu":
      return (x) => x.mul(tf.relu6(x.add(3))).div(6);
    case "exponential":
      return (x) => tf.exp(x);
    case "mish":
      return (x) => x.mul(tf.tanh(tf.softplus(x)));
    case "softmax":
      return (x) => tf.softmax(x, p.axis ?? -1);
    case "logSoftmax":
      return (x) => tf.logSoftmax(x, p.axis ?? -1);
    default:
      throw new Error(`activation '${name}' is not supported`);
  }
}

/**
 * Builds an `activation` op for `name` (tfjs-layers spelling, see {@linkcode ACTIVATIONS}).
 * Throws, naming the layer, for an activation the executor does not implement.
 */
export function activationOp(
  layer: string,
  className: string,
  name: string,
  extra: ActivationParams = {},
): Op {
  const act = canonicalActivation(name);
  if (!ACTIVATIONS.includes(act)) {
    throw unsupported(layer, className, `activation '${name}'`);
  }
  if ((act === "softmax" || act === "logSoftmax") && extra.axis !== undefined) {
    if (extra.axis !== -1 && extra.axis < 1) {
      throw unsupported(layer, className, `softmax over axis ${extra.axis}`);
    }
  }
  if (act === "prelu" && !extra.slope) {
    throw new Error(`layer '${layer}' (${className}): prelu needs its slope weights`);
  }
  const fn = activationFn(act, extra);
  return {
    kind: "activation",
    layer,
    className,
    params: { activation: act, ...extra },
    forward: ([x]) => fn(x),
    backward: (dy, [x], y) => {
      if (act === "relu" && extra.maxValue === undefined) {
        return [tf.tidy(() => dy.mul(tf.step(y, 0)))];
      }
      if (act === "linear") return [dy];
      return vjp(fn, [x], dy);
    },
  };
}

/** Whether an activation op is in the ReLU family (piecewise linear with a zero/ slope gate). */
export function isReluFamily(op: Op): boolean {
  if (op.kind !== "activation") return false;
  const a = op.params.activation;
  return a === "relu" || a === "relu6" || a === "leaky_relu" || a === "prelu" ||
    a === "thresholded_relu" || a === "elu";
}

/** Attributes of a 2-D convolution (plain or depthwise). */
export interface ConvAttrs {
  /** Kernel: HWIO (conv) or HWCM (depthwise). */
  kernel: Tensor;
  /** Optional bias. */
  bias?: Tensor;
  /** Strides (default [1, 1]). */
  strides?: [number, number];
  /** Padding mode (default `valid`). */
  padding?: "same" | "valid";
  /** Dilations (default [1, 1]). */
  dilations?: [number, number];
}

function checkPadding(layer: string, className: string, p: unknown): "same" | "valid" {
  if (p === "same" || p === "valid") return p;
  throw unsupported(layer, className, `padding '${String(p)}'`);
}

/** A 2-D convolution op (NHWC, HWIO kernel). */
export function convOp(layer: string, className: string, a: ConvAttrs): Op {
  const { kernel, bias } = a;
  const strides = a.strides ?? [1, 1];
  const dilations = a.dilations ?? [1, 1];
  const padding = a.padding ?? "valid";
  const forward = ([x]: Tensor[]): Tensor => {
    const y = conv2d(x as Tensor4D, kernel, strides, padding, dilations);
    return bias ? y.add(bias) : y;
  };
  return {
    kind: "conv2d",
    layer,
    className,
    params: { kernel, bias, strides, padding, dilations },
    forward,
    backward: (dy, [x]) => {
      if (dilations[0] !== 1 || dilations[1] !== 1) {
        // tfjs has no gradient for dilated convolutions: the kernel with its zeros written out.
        return [
          tf.tidy(() =>
            tf.conv2dTranspose(
              dy as Tensor4D,
              dilatedKernel(kernel, dilations),
              x.shape as [number, number, number, number],
              strides,
              padding,
            )
          ),
        ];
      }
      const fast = sameConvTranspose(dy as Tensor4D, kernel, strides, padding);
      if (fast) return [fast];
      return [
        tf.conv2dTranspose(
          dy as Tensor4D,
          kernel as Tensor4D,
          x.shape as [number, number, number, number],
          strides,
          padding,
        ),
      ];
    },
  };
}

/**
 * The HWIO kernel of a dilated convolution with the zeros written out: a convolution with it
 * and dilation 1 equals the dilated one (tfjs has no gradient for dilated convolutions).
 */
export function dilatedKernel(kernel: Tensor, dilations: readonly [number, number]): Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, i, o] = kernel.shape;
    const [dh, dw] = dilations;
    if (dh === 1 && dw === 1) return kernel.clone() as Tensor4D;
    const spread = tf.pad(kernel.reshape([kh, 1, kw, 1, i, o]), [
      [0, 0],
      [0, dh - 1],
      [0, 0],
      [0, dw - 1],
      [0, 0],
      [0, 0],
    ]).reshape([kh * dh, kw * dw, i, o]);
    return spread.slice([0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, i, o]) as Tensor4D;
  });
}

/** Block-diagonal HWIO kernel equivalent to a depthwise kernel [kh, kw, C, M]. */
export function depthwiseAsDense(kernel: Tensor): Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ch, m] = kernel.shape;
    const eye = tf.eye(ch).reshape([1, 1, ch, ch, 1]);
    const k = kernel.reshape([kh, kw, ch, 1, m]).mul(eye); // [kh,kw,C,C,M]
    return k.reshape([kh, kw, ch, ch * m]) as Tensor4D;
  });
}

/** A depthwise 2-D convolution op (NHWC, HWCM kernel). */
export function depthwiseOp(layer: string, className: string, a: ConvAttrs): Op {
  const { kernel, bias } = a;
  const strides = a.strides ?? [1, 1];
  const dilations = a.dilations ?? [1, 1];
  const padding = a.padding ?? "valid";
  const f = (x: Tensor): Tensor =>
    tf.depthwiseConv2d(x as Tensor4D, kernel as Tensor4D, strides, padding, "NHWC", dilations);
  return {
    kind: "depthwise_conv2d",
    layer,
    className,
    params: { kernel, bias, strides, padding, dilations },
    forward: ([x]) => {
      const y = f(x);
      return bias ? y.add(bias) : y;
    },
    // The input gradient as a transposed convolution with the block-diagonal dense kernel
    // (wasm has no depthwise backprop kernel; tfjs none for dilations, written out here).
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const dense = dilatedKernel(depthwiseAsDense(kernel), dilations);
        return [
          tf.conv2dTranspose(
            dy as Tensor4D,
            dense,
            x.shape as [number, number, number, number],
            strides,
            padding,
          ),
        ];
      }),
  };
}

/** A dense (matmul + bias) op over the last axis. */
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

/** A max or average pool op. */
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

/** Inference-mode batch normalisation over the last axis. */
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

/** `x * scale + offset` (tfjs `Rescaling`). */
export function scaleOp(layer: string, className: string, scale: number, offset: number): Op {
  return {
    kind: "scale",
    layer,
    className,
    params: { scale, offset },
    forward: ([x]) => tf.tidy(() => x.mul(scale).add(offset)),
    backward: (dy) => [dy.mul(scale)],
  };
}

/**
 * Keras `Normalization` (see `keras_layers.ts`): `(x - mean) / max(sqrt(variance), 1e-7)`
 * per channel, or its inverse; `stats` returns new per-channel mean and variance tensors.
 */
export function normalizationOp(
  layer: string,
  className: string,
  stats: () => [Tensor, Tensor],
  invert: boolean,
): Op {
  const std = (variance: Tensor): Tensor => tf.maximum(tf.sqrt(variance), NORMALIZATION_EPSILON);
  return {
    kind: "scale",
    layer,
    className,
    params: { epsilon: NORMALIZATION_EPSILON },
    forward: ([x]) =>
      tf.tidy(() => {
        const [mean, variance] = stats();
        return invert ? x.mul(std(variance)).add(mean) : x.sub(mean).div(std(variance));
      }),
    backward: (dy) =>
      tf.tidy(() => {
        const [, variance] = stats();
        return [invert ? dy.mul(std(variance)) : dy.div(std(variance))];
      }),
  };
}

/** Global average or max pooling over H and W. */
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

/**
 * An element-wise merge of several inputs (`Add`, `Multiply`, `Average`) with NumPy
 * broadcasting; the gradient reaching a broadcast input is summed over the broadcast axes.
 */
export function mergeOp(
  layer: string,
  className: string,
  kind: "add" | "multiply" | "average",
): Op {
  return {
    kind,
    layer,
    className,
    params: {},
    forward: (xs) =>
      tf.tidy(() => {
        if (kind === "multiply") return xs.reduce((a, b) => a.mul(b));
        const s = xs.reduce((a, b) => a.add(b));
        return kind === "average" ? s.div(xs.length) : s;
      }),
    backward: (dy, xs) =>
      xs.map((x, i) =>
        tf.tidy(() => {
          let g: Tensor = dy;
          if (kind === "average") g = dy.div(xs.length);
          if (kind === "multiply") {
            g = xs.filter((_, j) => j !== i).reduce((a, b) => a.mul(b), dy);
          }
          return unbroadcast(g, x.shape);
        })
      ),
  };
}

/** Concatenation along `axis`. */
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
    params: { targetShape },
    forward: ([x]) => x.reshape([x.shape[0], ...(targetShape ?? [-1])]),
    backward: (dy, [x]) => [dy.reshape(x.shape)],
  };
}

/** The identity (dropout and noise layers at inference, aliases of nested models). */
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
    return x.slice(
      [0, pads[0][0], pads[1][0], 0],
      [n, h - pads[0][0] - pads[0][1], w - pads[1][0] - pads[1][1], ch],
    );
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

/** Upsampling of H and W by integer factors (tfjs `UpSampling2D`: resize, no align corners). */
export function upsampleOp(
  layer: string,
  className: string,
  size: [number, number],
  interpolation: "nearest" | "bilinear",
): Op {
  const f = (x: Tensor): Tensor => {
    const [, h, w] = x.shape;
    const to: [number, number] = [h * size[0], w * size[1]];
    return interpolation === "nearest"
      ? tf.image.resizeNearestNeighbor(x as Tensor4D, to)
      : tf.image.resizeBilinear(x as Tensor4D, to);
  };
  return {
    kind: "upsample",
    layer,
    className,
    params: { size, interpolation },
    forward: ([x]) => f(x),
    backward: (dy, [x]) => vjp(f, [x], dy),
  };
}

/** A layer run through tfjs's own `layer.call` (forward) and `tf.grads` (backward). */
function genericOp(l: AnyLayer, layer: string, className: string): Op {
  const call = (...xs: Tensor[]): Tensor => {
    const out = l.call(xs.length === 1 ? xs[0] : xs, { training: false });
    return Array.isArray(out) ? out[0] : out;
  };
  return {
    kind: "generic",
    layer,
    className,
    params: {},
    forward: (xs) => call(...xs),
    backward: (dy, xs) => vjp(call, xs, dy),
  };
}

const IDENTITY_CLASSES = new Set([
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "ActivityRegularization",
]);

/** Throws unless the layer's data format is channels-last. */
function channelsLast(name: string, className: string, c: Record<string, unknown>): void {
  const f = c.dataFormat ?? "channelsLast";
  if (f !== "channelsLast") throw unsupported(name, className, `dataFormat '${String(f)}'`);
}

/** The weight of `layer` whose name ends with `suffix` (tfjs `originalName`). */
function weightNamed(l: AnyLayer, suffix: string): Tensor | undefined {
  const names: string[] = l.weights.map((w: { originalName: string }) => w.originalName);
  const values = l.getWeights(false) as Tensor[];
  const i = names.findIndex((n) => n.endsWith(suffix));
  return i >= 0 ? values[i] : undefined;
}

function convAttrs(
  l: AnyLayer,
  name: string,
  className: string,
  c: Record<string, unknown>,
): ConvAttrs {
  channelsLast(name, className, c);
  const [kernel, bias] = l.getWeights(false) as Tensor[];
  return {
    kernel,
    bias: c.useBias !== false ? bias : undefined,
    strides: pair(c.strides, 1),
    padding: checkPadding(name, className, c.padding),
    dilations: pair(c.dilationRate, 1),
  };
}

function padAmounts(raw: unknown): [[number, number], [number, number]] {
  if (Array.isArray(raw) && Array.isArray(raw[0])) {
    return [pair(raw[0], 0), pair(raw[1], 0)];
  }
  const [a, b] = pair(raw, 0);
  return [[a, a], [b, b]];
}

/** Compiles the layer's own activation (`activation` config field) after `op`. */
function withActivation(
  className: string,
  c: Record<string, unknown>,
  ops: Op[],
): Op[] {
  const act = typeof c.activation === "string" ? c.activation : "linear";
  return act === "linear" ? ops : [...ops, activationOp(ops[0].layer, className, act)];
}

/**
 * Compiles a tfjs layer into the ops the executor runs (linear part, then its activation).
 * Layer classes without a dedicated translation run through `layer.call` (`generic` op:
 * forward and gradient are tfjs's own; rule-based methods refuse them by name). A
 * parameter a dedicated translation does not implement throws, naming layer and parameter.
 * `name` is the node name the ops carry (default: the layer's name).
 */
export function compileLayer(layer: AnyLayer, name: string = layer.name): Op[] {
  const className: string = layer.getClassName();
  const c = layer.getConfig() as Record<string, unknown>;
  if (IDENTITY_CLASSES.has(className)) return [identityOp(name, className)];
  switch (className) {
    case "Activation":
      return [activationOp(name, className, String(c.activation))];
    case "ReLU": {
      const max = c.maxValue;
      if (max === undefined || max === null) return [activationOp(name, className, "relu")];
      if (typeof max !== "number" || !(max > 0)) {
        throw unsupported(name, className, `maxValue ${String(max)}`);
      }
      return [
        max === 6
          ? activationOp(name, className, "relu6")
          : activationOp(name, className, "relu", { maxValue: max }),
      ];
    }
    case "LeakyReLU":
      return [activationOp(name, className, "leaky_relu", { alpha: Number(c.alpha ?? 0.3) })];
    case "ELU":
      return [activationOp(name, className, "elu", { alpha: Number(c.alpha ?? 1) })];
    case "ThresholdedReLU":
      return [
        activationOp(name, className, "thresholded_relu", { alpha: Number(c.theta ?? 1) }),
      ];
    case "PReLU": {
      const slope = weightNamed(layer, "alpha") ?? (layer.getWeights(false) as Tensor[])[0];
      return [activationOp(name, className, "prelu", { slope })];
    }
    case "Softmax": {
      const axis = c.axis ?? 1;
      if (typeof axis !== "number") throw unsupported(name, className, `axis [${axis}]`);
      return [activationOp(name, className, "softmax", { axis })];
    }
    case "Conv2D":
      return withActivation(className, c, [
        convOp(name, className, convAttrs(layer, name, className, c)),
      ]);
    case "DepthwiseConv2D":
      return withActivation(className, c, [
        depthwiseOp(name, className, convAttrs(layer, name, className, c)),
      ]);
    case "SeparableConv2D": {
      channelsLast(name, className, c);
      const depthwise = weightNamed(layer, "depthwise_kernel");
      const pointwise = weightNamed(layer, "pointwise_kernel");
      if (!depthwise || !pointwise) {
        throw new Error(`layer '${name}' (${className}): depthwise / pointwise kernels not found`);
      }
      const bias = c.useBias !== false ? weightNamed(layer, "bias") : undefined;
      const padding = checkPadding(name, className, c.padding);
      return withActivation(className, c, [
        depthwiseOp(name, className, {
          kernel: depthwise,
          strides: pair(c.strides, 1),
          padding,
          dilations: pair(c.dilationRate, 1),
        }),
        convOp(name, className, { kernel: pointwise, bias, padding: "valid" }),
      ]);
    }
    case "Dense": {
      const [kernel, bias] = layer.getWeights(false) as Tensor[];
      return withActivation(className, c, [
        denseOp(name, className, kernel, c.useBias !== false ? bias : undefined),
      ]);
    }
    case "MaxPooling2D":
    case "AveragePooling2D": {
      channelsLast(name, className, c);
      const pool = pair(c.poolSize, 2);
      return [
        poolOp(
          name,
          className,
          className === "MaxPooling2D" ? "max_pool" : "avg_pool",
          pool,
          pair(c.strides ?? c.poolSize, 2),
          checkPadding(name, className, c.padding),
        ),
      ];
    }
    case "GlobalAveragePooling2D":
    case "GlobalMaxPooling2D":
      channelsLast(name, className, c);
      return [
        globalPoolOp(
          name,
          className,
          className === "GlobalAveragePooling2D" ? "global_avg_pool" : "global_max_pool",
          c.keepDims === true,
        ),
      ];
    case "BatchNormalization": {
      const axis = Array.isArray(c.axis) ? c.axis[0] : c.axis ?? -1;
      if (axis !== -1 && axis !== 3) {
        throw unsupported(name, className, `batch normalisation over axis ${axis}`);
      }
      return [
        batchNormOp(name, className, {
          gamma: weightNamed(layer, "gamma"),
          beta: weightNamed(layer, "beta"),
          mean: weightNamed(layer, "moving_mean")!,
          variance: weightNamed(layer, "moving_variance")!,
          epsilon: Number(c.epsilon ?? 1e-3),
        }),
      ];
    }
    case "Normalization": {
      const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : c.axis ?? -1;
      if (axis !== -1 && axis !== 3) throw unsupported(name, className, `axis ${String(c.axis)}`);
      return [
        normalizationOp(name, className, () => layer.statistics(), c.invert === true),
      ];
    }
    case "Rescaling":
      return [scaleOp(name, className, Number(c.scale), Number(c.offset ?? 0))];
    case "Add":
      return [mergeOp(name, className, "add")];
    case "Multiply":
      return [mergeOp(name, className, "multiply")];
    case "Average":
      return [mergeOp(name, className, "average")];
    case "Concatenate":
      return [concatOp(name, className, Number(c.axis ?? -1))];
    case "Flatten":
      channelsLast(name, className, c);
      return [reshapeOp(name, className)];
    case "Reshape":
      return [reshapeOp(name, className, [...(c.targetShape as number[])])];
    case "ZeroPadding2D":
      channelsLast(name, className, c);
      return [padCropOp(name, className, padAmounts(c.padding), false)];
    case "Cropping2D":
      channelsLast(name, className, c);
      return [padCropOp(name, className, padAmounts(c.cropping), true)];
    case "UpSampling2D": {
      channelsLast(name, className, c);
      const interp = c.interpolation ?? "nearest";
      if (interp !== "nearest" && interp !== "bilinear") {
        throw unsupported(name, className, `interpolation '${String(interp)}'`);
      }
      return [upsampleOp(name, className, pair(c.size, 2), interp)];
    }
    default:
      return [genericOp(layer, name, className)];
  }
}

/**
 * Keras layer parameters that tfjs-layers accepts but silently ignores when it loads a
 * model.json: a model using them would run differently in tfjs than in Keras. Returns one
 * message per offending layer (`layer 'x' (ReLU): negative_slope 0.1 is not supported`).
 */
export function ignoredKerasParameters(modelTopology: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
      return;
    }
    if (!v || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    const cfg = o.config as Record<string, unknown> | undefined;
    if (o.class_name === "ReLU" && cfg) {
      const name = String(cfg.name ?? "?");
      for (const key of ["negative_slope", "threshold"]) {
        const val = cfg[key];
        if (val !== undefined && val !== null && Number(val) !== 0) {
          out.push(`layer '${name}' (ReLU): ${key} ${val} is not supported`);
        }
      }
    }
    for (const x of Object.values(o)) visit(x);
  };
  visit(modelTopology);
  return out;
}
