/**
 * Keras layers and activations that tfjs-layers lacks, registered so that converted Keras models
 * using them load: `Normalization` (the stem of Keras' EfficientNet: `(x - mean) /
 * max(sqrt(variance), 1e-7)`, or its inverse with `invert`) and the Keras 3 activation names
 * `silu`, `hard_silu`, `hard_swish`, `leaky_relu`, `log_softmax`, `exponential`. Importing this
 * module registers them.
 *
 * @module
 */
import { type Tensor, tf } from "./tensor.ts";

/** Constructor arguments of {@linkcode KerasNormalization} (Keras' config, camel-cased). */
export interface KerasNormalizationArgs {
  /** Layer name. */
  name?: string;
  /** Normalised axis (only the last axis is supported). */
  axis?: number | number[] | null;
  /** Fixed mean (Keras `mean=`), instead of the adapted weight. */
  mean?: number | number[];
  /** Fixed variance (Keras `variance=`), instead of the adapted weight. */
  variance?: number | number[];
  /** Whether to apply the inverse transform. */
  invert?: boolean;
  /** Input shape (first layer only). */
  inputShape?: number[];
  /** Batch input shape (first layer only). */
  batchInputShape?: (number | null)[];
  /** Data type. */
  dtype?: "float32";
  /** Trainable flag (the statistics are never trained). */
  trainable?: boolean;
}

/** Keras' `backend.epsilon()`, the floor of the standard deviation. */
export const NORMALIZATION_EPSILON = 1e-7;

/**
 * Keras' `Normalization` layer for tfjs-layers: per-channel `(x - mean) / max(sqrt(var), 1e-7)`
 * over the last axis, with the statistics as weights `mean`, `variance`, `count` (as Keras
 * saves an adapted layer) or fixed in the config.
 */
export class KerasNormalization extends tf.layers.Layer {
  /** Keras class name. */
  static className = "Normalization";
  /** Normalised axis as configured. */
  readonly axis: number | number[] | null;
  /** Whether the inverse transform is applied. */
  readonly invert: boolean;
  readonly #fixedMean?: number[];
  readonly #fixedVariance?: number[];
  #mean?: tf.LayerVariable;
  #variance?: tf.LayerVariable;

  /** Builds the layer from Keras' (camel-cased) config. */
  constructor(args: KerasNormalizationArgs = {}) {
    super(args);
    this.axis = args.axis ?? -1;
    this.invert = args.invert === true;
    const list = (v: number | number[] | undefined) =>
      v === undefined || v === null ? undefined : Array.isArray(v) ? v.flat(4) : [v];
    this.#fixedMean = list(args.mean);
    this.#fixedVariance = list(args.variance);
  }

  /** Creates the statistics weights (unless fixed in the config). */
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const c = Number(shape[shape.length - 1]);
    if (this.#fixedMean === undefined) {
      this.#mean = this.addWeight(
        "mean",
        [c],
        "float32",
        tf.initializers.zeros(),
        undefined,
        false,
      );
      this.#variance = this.addWeight(
        "variance",
        [c],
        "float32",
        tf.initializers.ones(),
        undefined,
        false,
      );
      this.addWeight("count", [], "float32", tf.initializers.zeros(), undefined, false);
    }
    this.built = true;
  }

  /** The per-channel mean and variance as 1-D tensors (new tensors). */
  statistics(): [Tensor, Tensor] {
    if (this.#fixedMean !== undefined) {
      return [tf.tensor1d(this.#fixedMean), tf.tensor1d(this.#fixedVariance ?? [1])];
    }
    return [this.#mean!.read().reshape([-1]), this.#variance!.read().reshape([-1])];
  }

  /** Applies the normalisation. */
  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [mean, variance] = this.statistics();
      const std = tf.maximum(tf.sqrt(variance), NORMALIZATION_EPSILON);
      return this.invert ? x.mul(std).add(mean) : x.sub(mean).div(std);
    });
  }

  /** Keras' config. */
  override getConfig(): tf.serialization.ConfigDict {
    const base = super.getConfig();
    const cfg: tf.serialization.ConfigDict = { axis: this.axis, invert: this.invert };
    if (this.#fixedMean !== undefined) {
      cfg.mean = this.#fixedMean;
      cfg.variance = this.#fixedVariance ?? [1];
    }
    return { ...base, ...cfg };
  }
}

tf.serialization.registerClass(KerasNormalization);

/** Keras (3) activation names tfjs-layers does not know, with their formulas. */
export const KERAS_ACTIVATIONS: Readonly<Record<string, (x: Tensor) => Tensor>> = {
  /** `x * sigmoid(x)` (Keras 3's name for swish). */
  silu: (x) => x.mul(tf.sigmoid(x)),
  /** `x * relu6(x + 3) / 6`. */
  hard_silu: (x) => x.mul(tf.relu6(x.add(3))).div(6),
  /** Alias of `hard_silu`. */
  hard_swish: (x) => x.mul(tf.relu6(x.add(3))).div(6),
  /** Keras' `leaky_relu` activation (negative slope 0.2). */
  leaky_relu: (x) => tf.leakyRelu(x, 0.2),
  /** `log(softmax(x))` over the last axis. */
  log_softmax: (x) => tf.logSoftmax(x),
  /** `exp(x)`. */
  exponential: (x) => tf.exp(x),
};

/** snake_case to camelCase, as tfjs-layers rewrites config strings when it loads a model. */
function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

const ALL_NAMES: [string, (x: Tensor) => Tensor][] = [
  ...Object.entries(KERAS_ACTIVATIONS),
  ...Object.entries(KERAS_ACTIVATIONS).map(([n, f]) => [camel(n), f] as [string, typeof f]),
  // tfjs names this one `gelu_new` but rewrites a saved `gelu_new` to `geluNew` on load.
  [
    "geluNew",
    (x) =>
      x.mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1)).mul(0.5),
  ],
];

const known = tf.serialization.SerializationMap.getMap().classNameMap;
for (const [name, fn] of ALL_NAMES) {
  if (name in known) continue; // tfjs's own (e.g. logSoftmax)
  const cls = class extends tf.serialization.Serializable {
    static className = name;
    apply(x: Tensor): Tensor {
      return tf.tidy(() => fn(x));
    }
    getConfig(): tf.serialization.ConfigDict {
      return {};
    }
  };
  tf.serialization.registerClass(cls);
}
