/**
 * Op constructors for the front ends that do not start from a tfjs layer (GraphModel, ONNX).
 * The constructors shared with the LayersModel front end (`convOp(layer, className, attrs)`,
 * `denseOp`, `poolOp`, ...) live in `core/layer_ops.ts` and are re-exported here, so every
 * front end builds the same {@linkcode Op}s and backward rules (excitation backprop, guided
 * backprop, deconvnet, ...) apply unchanged. What only a graph front end needs is defined here:
 * a per-channel affine op (a `Mul` / `Add` / `Sub` / `RealDiv` by a constant) and `Squeeze`.
 *
 * Weights given to a constructor must outlive the op (model weights, or tensors the front
 * end keeps until the session is disposed).
 *
 * @module
 */
import { type Op, type OpKind, unbroadcast } from "../layer_ops.ts";
import { type Tensor, tf } from "../tensor.ts";

export {
  activationOp,
  batchNormOp,
  concatOp,
  type ConvAttrs,
  convOp,
  denseOp,
  depthwiseOp,
  globalPoolOp,
  identityOp,
  mergeOp,
  padCropOp,
  poolOp,
  reshapeOp,
  unbroadcast,
} from "../layer_ops.ts";

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
