/**
 * How each Keras layer class runs forward and backward in the toolkit's own executor.
 *
 * A layer compiles to one or two {@linkcode Op}s: its linear part (conv, dense, pool, ...)
 * and, when the layer has a built-in activation, an `activation` op. Every op has a
 * `kind` that backward rules (excitation backprop, guided backprop, ...) key on, its
 * parameters, a forward function and a default vector-Jacobian product.
 *
 * The forward functions use plain convolutions / `tf.matMul` rather than the fused ops of
 * `layer.apply`: the fused ops' gradients also compute the weight gradient, which the wasm
 * backend cannot, and which saliency never needs.
 *
 * @module
 */
import {
  conv2d,
  matMulTransposeB,
  maxPoolInputGrad,
  sameConvTranspose,
  type Tensor,
  type Tensor2D,
  type Tensor4D,
  tf,
} from "./tensor.ts";

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
  | "add"
  | "multiply"
  | "average"
  | "concat"
  | "activation"
  | "reshape"
  | "identity"
  | "pad"
  | "crop"
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
  /** Activation function name (tfjs-layers spelling) of an `activation` op. */
  activation?: string;
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
  /** Concatenation axis (negative counts from the end). */
  axis?: number;
  /** Zero padding / cropping amounts [[top, bottom], [left, right]]. */
  pads?: [[number, number], [number, number]];
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

function activationFn(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "linear":
      return (x) => x;
    case "relu":
      return (x) => tf.relu(x);
    case "relu6":
      return (x) => tf.relu6(x);
    case "sigmoid":
      return (x) => tf.sigmoid(x);
    case "tanh":
      return (x) => tf.tanh(x);
    case "softmax":
      return (x) => tf.softmax(x);
    case "elu":
      return (x) => tf.elu(x);
    case "selu":
      return (x) => tf.selu(x);
    case "softplus":
      return (x) => tf.softplus(x);
    case "softsign":
      return (x) => x.div(tf.abs(x).add(1));
    case "swish":
      return (x) => x.mul(tf.sigmoid(x));
    case "hardSigmoid":
    case "hard_sigmoid":
      return (x) => tf.clipByValue(x.mul(0.2).add(0.5), 0, 1);
    default:
      throw new Error(`activation '${name}' is not supported`);
  }
}

/** Builds an `activation` op. */
export function activationOp(layer: string, className: string, name: string): Op {
  const fn = activationFn(name);
  return {
    kind: "activation",
    layer,
    className,
    params: { activation: name },
    forward: ([x]) => fn(x),
    backward: (dy, [x], y) => {
      if (name === "relu") return [tf.tidy(() => dy.mul(tf.step(y, 0)))];
      if (name === "linear") return [dy];
      return vjp(fn, [x], dy);
    },
  };
}

function convOp(l: AnyLayer, className: string): Op {
  const c = l.getConfig();
  const [kernel, bias] = l.getWeights(false) as Tensor[];
  const strides = pair(c.strides, 1);
  const dilations = pair(c.dilationRate ?? c.dilation_rate, 1);
  const padding = c.padding as "same" | "valid";
  const useBias = c.useBias !== false && bias !== undefined;
  if ((c.dataFormat ?? "channelsLast") !== "channelsLast") {
    throw new Error(`layer '${l.name}': only channelsLast convolutions are supported`);
  }
  const forward = ([x]: Tensor[]): Tensor => {
    const y = conv2d(x as Tensor4D, kernel, strides, padding, dilations);
    return useBias ? y.add(bias) : y;
  };
  return {
    kind: "conv2d",
    layer: l.name,
    className,
    params: { kernel, bias: useBias ? bias : undefined, strides, padding, dilations },
    forward,
    backward: (dy, [x]) => {
      if (dilations[0] !== 1 || dilations[1] !== 1) {
        return vjp(
          (xx) =>
            tf.conv2d(
              xx as Tensor4D,
              kernel as Tensor4D,
              strides,
              padding,
              "NHWC",
              dilations,
            ),
          [x],
          dy,
        );
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

/** Block-diagonal HWIO kernel equivalent to a depthwise kernel [kh, kw, C, M]. */
export function depthwiseAsDense(kernel: Tensor): Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ch, m] = kernel.shape;
    const eye = tf.eye(ch).reshape([1, 1, ch, ch, 1]);
    const k = kernel.reshape([kh, kw, ch, 1, m]).mul(eye); // [kh,kw,C,C,M]
    return k.reshape([kh, kw, ch, ch * m]) as Tensor4D;
  });
}

function depthwiseOp(l: AnyLayer, className: string): Op {
  const c = l.getConfig();
  const [kernel, bias] = l.getWeights(false) as Tensor[];
  const strides = pair(c.strides, 1);
  const dilations = pair(c.dilationRate, 1);
  const padding = c.padding as "same" | "valid";
  const useBias = c.useBias !== false && bias !== undefined;
  return {
    kind: "depthwise_conv2d",
    layer: l.name,
    className,
    params: { kernel, bias: useBias ? bias : undefined, strides, padding, dilations },
    forward: ([x]) => {
      const y = tf.depthwiseConv2d(
        x as Tensor4D,
        kernel as Tensor4D,
        strides,
        padding,
        "NHWC",
        dilations,
      );
      return useBias ? y.add(bias) : y;
    },
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const dense = depthwiseAsDense(kernel);
        if (dilations[0] !== 1 || dilations[1] !== 1) {
          return vjp(
            (xx) => tf.conv2d(xx as Tensor4D, dense, strides, padding, "NHWC", dilations),
            [x],
            dy,
          );
        }
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

function denseOp(l: AnyLayer, className: string): Op {
  const c = l.getConfig();
  const [kernel, bias] = l.getWeights(false) as Tensor[];
  const useBias = c.useBias !== false && bias !== undefined;
  const flat = (x: Tensor): Tensor2D => x.reshape([-1, x.shape[x.rank - 1]]) as Tensor2D;
  return {
    kind: "dense",
    layer: l.name,
    className,
    params: { kernel, bias: useBias ? bias : undefined },
    forward: ([x]) =>
      tf.tidy(() => {
        const y = tf.matMul(flat(x), kernel as Tensor2D);
        const yb = useBias ? y.add(bias) : y;
        return yb.reshape([...x.shape.slice(0, -1), kernel.shape[1]] as number[]);
      }),
    backward: (dy, [x]) =>
      tf.tidy(() => [matMulTransposeB(flat(dy), kernel as Tensor2D).reshape(x.shape)]),
  };
}

function poolOp(l: AnyLayer, className: string, kind: "max_pool" | "avg_pool"): Op {
  const c = l.getConfig();
  const pool = pair(c.poolSize, 2);
  const strides = pair(c.strides ?? c.poolSize, 2);
  const padding = c.padding as "same" | "valid";
  const f = (x: Tensor): Tensor =>
    kind === "max_pool"
      ? tf.maxPool(x as Tensor4D, pool, strides, padding)
      : tf.avgPool(x as Tensor4D, pool, strides, padding);
  return {
    kind,
    layer: l.name,
    className,
    params: { pool, strides, padding },
    forward: ([x]) => f(x),
    backward: (dy, [x]) =>
      kind === "max_pool"
        ? [maxPoolInputGrad(x as Tensor4D, dy as Tensor4D, pool, strides, padding)]
        : vjp(f, [x], dy),
  };
}

function batchNormOp(l: AnyLayer, className: string): Op {
  const c = l.getConfig();
  const axis = Array.isArray(c.axis) ? c.axis[0] : c.axis ?? -1;
  if (axis !== -1 && axis !== 3) {
    throw new Error(`layer '${l.name}': batch normalisation over axis ${axis} is not supported`);
  }
  const names: string[] = l.weights.map((w: { originalName: string }) => w.originalName);
  const values = l.getWeights(false) as Tensor[];
  const get = (suffix: string): Tensor | undefined => {
    const i = names.findIndex((n) => n.endsWith(suffix));
    return i >= 0 ? values[i] : undefined;
  };
  const gamma = get("gamma"), beta = get("beta");
  const mean = get("moving_mean")!, variance = get("moving_variance")!;
  const epsilon: number = c.epsilon ?? 1e-3;
  return {
    kind: "batch_norm",
    layer: l.name,
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

function globalPoolOp(
  l: AnyLayer,
  className: string,
  kind: "global_avg_pool" | "global_max_pool",
): Op {
  const keep = l.getConfig().keepDims === true;
  return {
    kind,
    layer: l.name,
    className,
    params: {},
    forward: ([x]) => kind === "global_avg_pool" ? x.mean([1, 2], keep) : x.max([1, 2], keep),
    backward: (dy, [x]) =>
      tf.tidy(() => {
        const [n, h, w, ch] = x.shape;
        const d4 = dy.reshape([n, 1, 1, ch]);
        if (kind === "global_avg_pool") return [tf.broadcastTo(d4.div(h * w), [n, h, w, ch])];
        return [maxPoolInputGrad(x as Tensor4D, d4 as Tensor4D, [h, w], [h, w], "valid")];
      }),
  };
}

function mergeOp(l: AnyLayer, className: string, kind: "add" | "multiply" | "average"): Op {
  return {
    kind,
    layer: l.name,
    className,
    params: {},
    forward: (xs) =>
      tf.tidy(() => {
        if (kind === "multiply") return xs.reduce((a, b) => a.mul(b));
        const s = tf.addN(xs);
        return kind === "average" ? s.div(xs.length) : s;
      }),
    backward: (dy, xs) =>
      xs.map((x, i) =>
        tf.tidy(() => {
          if (kind === "add") return dy.clone();
          if (kind === "average") return dy.div(xs.length);
          const others = xs.filter((_, j) => j !== i);
          return others.reduce((a, b) => a.mul(b), dy);
        }).reshape(x.shape)
      ),
  };
}

function concatOp(l: AnyLayer, className: string): Op {
  const axis: number = l.getConfig().axis ?? -1;
  return {
    kind: "concat",
    layer: l.name,
    className,
    params: { axis },
    forward: (xs) => tf.concat(xs, axis),
    backward: (dy, xs) => {
      const ax = axis < 0 ? dy.rank + axis : axis;
      return tf.split(dy, xs.map((x) => x.shape[ax]), ax);
    },
  };
}

function reshapeOp(l: AnyLayer, className: string): Op {
  return {
    kind: "reshape",
    layer: l.name,
    className,
    params: {},
    forward: ([x]) => {
      if (className === "Flatten") return x.reshape([x.shape[0], -1]);
      const target = l.getConfig().targetShape as number[];
      return x.reshape([x.shape[0], ...target]);
    },
    backward: (dy, [x]) => [dy.reshape(x.shape)],
  };
}

function identityOp(l: AnyLayer, className: string): Op {
  return {
    kind: "identity",
    layer: l.name,
    className,
    params: {},
    forward: ([x]) => x.clone(),
    backward: (dy) => [dy.clone()],
  };
}

function padOp(l: AnyLayer, className: string, crop: boolean): Op {
  const c = l.getConfig();
  const raw = (crop ? c.cropping : c.padding) as unknown;
  const norm = (v: unknown): [number, number] => pair(v, 0);
  const pads: [[number, number], [number, number]] = Array.isArray(raw) && Array.isArray(raw[0])
    ? [norm(raw[0]), norm(raw[1])]
    : (() => {
      const [a, b] = pair(raw, 0);
      return [[a, a], [b, b]] as [[number, number], [number, number]];
    })();
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
    layer: l.name,
    className,
    params: { pads },
    forward: ([x]) => crop ? cropFn(x) : padFn(x),
    backward: (dy) => [crop ? padFn(dy) : cropFn(dy)],
  };
}

function genericOp(l: AnyLayer, className: string): Op {
  const call = (...xs: Tensor[]): Tensor => {
    const out = l.call(xs.length === 1 ? xs[0] : xs, { training: false });
    return Array.isArray(out) ? out[0] : out;
  };
  return {
    kind: "generic",
    layer: l.name,
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

const ACTIVATION_LAYERS: Record<string, (c: Record<string, unknown>) => string> = {
  Activation: (c) => String(c.activation),
  ReLU: (c) => (c.maxValue === 6 ? "relu6" : "relu"),
  Softmax: () => "softmax",
  ELU: () => "elu",
};

/**
 * Compiles a tfjs layer into the ops the executor runs (linear part, then its activation).
 * Layer classes without a dedicated translation run through `layer.call` (`generic` op).
 */
export function compileLayer(layer: AnyLayer): Op[] {
  const className: string = layer.getClassName();
  const name: string = layer.name;
  const cfg = layer.getConfig() as Record<string, unknown>;
  const withActivation = (op: Op): Op[] => {
    const act = typeof cfg.activation === "string" ? cfg.activation : "linear";
    return act === "linear" ? [op] : [op, activationOp(name, className, act)];
  };
  if (className in ACTIVATION_LAYERS) {
    return [activationOp(name, className, ACTIVATION_LAYERS[className](cfg))];
  }
  if (IDENTITY_CLASSES.has(className)) return [identityOp(layer, className)];
  switch (className) {
    case "Conv2D":
      return withActivation(convOp(layer, className));
    case "DepthwiseConv2D":
      return withActivation(depthwiseOp(layer, className));
    case "Dense":
      return withActivation(denseOp(layer, className));
    case "MaxPooling2D":
      return [poolOp(layer, className, "max_pool")];
    case "AveragePooling2D":
      return [poolOp(layer, className, "avg_pool")];
    case "GlobalAveragePooling2D":
      return [globalPoolOp(layer, className, "global_avg_pool")];
    case "GlobalMaxPooling2D":
      return [globalPoolOp(layer, className, "global_max_pool")];
    case "BatchNormalization":
      return [batchNormOp(layer, className)];
    case "Add":
      return [mergeOp(layer, className, "add")];
    case "Multiply":
      return [mergeOp(layer, className, "multiply")];
    case "Average":
      return [mergeOp(layer, className, "average")];
    case "Concatenate":
      return [concatOp(layer, className)];
    case "Flatten":
    case "Reshape":
      return [reshapeOp(layer, className)];
    case "ZeroPadding2D":
      return [padOp(layer, className, false)];
    case "Cropping2D":
      return [padOp(layer, className, true)];
    default:
      return [genericOp(layer, className)];
  }
}
