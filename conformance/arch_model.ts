/**
 * Builds a tfjs LayersModel from a fixture set's neutral `arch.json`, with the exact float32
 * weights of the portable counter-based generator described in the fixtures README (so the
 * paper's VGG16 needs no 528 MiB weights file).
 *
 * @module
 */
import { type LayersModel, tf } from "../core/tensor.ts";

/** One weight tensor entry of `arch.json`. */
export interface ArchWeight {
  /** tfjs weight name, e.g. `features_0/kernel`. */
  name: string;
  /** Shape in TF layout. */
  shape: number[];
  /** Generator parameters. */
  init: { tensor_index: number; amp: number; offset?: number };
}

/** One layer / graph node of `arch.json`. */
export interface ArchLayer {
  /** PyTorch module name (may be null). */
  name: string | null;
  /** tfjs layer name. */
  tf_name: string;
  /** Layer type (conv2d, relu, maxpool2d, dense, ...). */
  type: string;
  /** Input node names (graph topology only). */
  inputs?: string[];
  /** Kernel / window size. */
  kernel?: number[];
  /** Strides. */
  stride?: number[];
  /** Dilation. */
  dilation?: number[];
  /** TF padding. */
  tf_padding?: "same" | "valid";
  /** Explicit padding of a zeropad2d node, or PyTorch padding elsewhere. */
  padding?: number[] | number[][];
  /** Output channels of a conv. */
  out_channels?: number;
  /** Output features of a dense layer. */
  out_features?: number;
  /** Whether a conv / dense layer has a bias. */
  use_bias?: boolean;
  /** Batch-norm epsilon. */
  eps?: number;
  /** Weight tensors. */
  weights?: ArchWeight[];
}

/** The parts of `arch.json` the builder reads. */
export interface Arch {
  /** Model name. */
  model: string;
  /** `graph` for functional models; absent for sequential stacks. */
  topology?: string;
  /** Input description (`shape` is `[null, H, W, C]`). */
  input: { shape: (number | null)[] };
  /** Generator seed. */
  portable_init: { model_seed: number };
  /** Layers / nodes in execution order. */
  layers: ArchLayer[];
}

/** The fixtures' portable 32-bit hash `lowbias32`. */
export function lowbias32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Generates one tensor's values with the portable generator (bit-exact float32). */
export function portableTensor(modelSeed: number, w: ArchWeight): Float32Array {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const key = lowbias32((modelSeed + 0x9E3779B9 * (w.init.tensor_index + 1)) % 4294967296);
  const amp = w.init.amp;
  const offset = w.init.offset ?? 0;
  for (let i = 0; i < n; i++) {
    const u = lowbias32(lowbias32(i) ^ key);
    const v = ((u >>> 8) + 0.5) / 8388608 - 1;
    out[i] = v * amp + offset;
  }
  return out;
}

/** A tfjs-layers initializer (the type `tf.initializers.zeros()` and friends return). */
export type LayerInitializer = ReturnType<typeof tf.initializers.zeros>;

/**
 * An initializer whose `apply` returns the portable values of `w` (generated only when the
 * layer is built, so at most one weight's JS array is alive at a time). A layer built with it
 * holds exactly these float32 values without ever allocating default initial weights, and
 * needs no `setWeights` copy. It is a `Zeros` instance (tfjs-layers accepts only instances of
 * its own `Initializer` class) with `apply` replaced; `onApply` runs after each call.
 */
export function portableInitializer(
  modelSeed: number,
  w: ArchWeight,
  onApply?: () => void,
): LayerInitializer {
  const init = tf.initializers.zeros();
  init.apply = (shape: tf.Shape, dtype?: tf.DataType): tf.Tensor => {
    const same = shape.length === w.shape.length && shape.every((d, i) => d === w.shape[i]);
    if (!same) {
      throw new Error(`arch: ${w.name} has shape [${w.shape}], the layer wants [${shape}]`);
    }
    if (dtype !== undefined && dtype !== "float32") {
      throw new Error(`arch: ${w.name} is float32, the layer wants ${dtype}`);
    }
    const t = tf.tensor(portableTensor(modelSeed, w), w.shape, "float32");
    onApply?.();
    return t;
  };
  return init;
}

/**
 * Builds the model of an `arch.json` with its portable weights.
 *
 * Every weight is created directly with its portable values by a {@link portableInitializer}
 * while its layer is built, so the process never holds tfjs's default initial weights next to
 * the real ones (VGG16: 528 MiB less at the peak) and only one weight's generated JS array at
 * a time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../mod.ts";
 * import { type Arch, buildArchModel } from "./arch_model.ts";
 *
 * await initBackend({ backend: "wasm", threads: 1 });
 * const file = "tests/fixtures/models/vgg_tiny/arch.json"; // tests/fixtures/models/vgg16 too
 * const arch = JSON.parse(await Deno.readTextFile(file)) as Arch;
 * const model = buildArchModel(arch);
 * assert.deepEqual(model.inputs[0].shape, arch.input.shape);
 * model.dispose();
 * ```
 */
export function buildArchModel(arch: Arch): LayersModel {
  const seed = arch.portable_init.model_seed;
  const shape = arch.input.shape.slice(1) as number[];
  const sym = new Map<string, tf.SymbolicTensor>();
  const graph = arch.topology === "graph";
  let input: tf.SymbolicTensor | undefined;
  let prev: tf.SymbolicTensor | undefined;
  for (const l of arch.layers) {
    if (l.type === "input") {
      input = tf.input({ shape, name: l.tf_name });
      sym.set(l.tf_name, input);
      prev = input;
      continue;
    }
    if (!input) {
      input = tf.input({ shape, name: `${l.tf_name}_input` });
      prev = input;
    }
    const ins = graph ? (l.inputs ?? []).map((n) => sym.get(n)!) : [prev!];
    const byRole = new Map((l.weights ?? []).map((w) => [w.name.split("/").pop()!, w]));
    const applied = new Set<string>();
    const init = (role: string): LayerInitializer | undefined => {
      const w = byRole.get(role);
      return w && portableInitializer(seed, w, () => applied.add(role));
    };
    const layer = makeLayer(l, init);
    if (!layer) continue; // identity at this input size (adaptive pool)
    const out = layer.apply(ins.length === 1 ? ins[0] : ins) as tf.SymbolicTensor;
    sym.set(l.tf_name, out);
    prev = out;
    for (const v of layer.weights) {
      const role = v.originalName.split("/").pop()!;
      if (!applied.has(role)) throw new Error(`arch: no weights for ${v.originalName}`);
    }
    if (applied.size !== byRole.size) {
      const unused = [...byRole.keys()].filter((r) => !applied.has(r));
      throw new Error(`arch: ${l.tf_name} does not use its weights ${unused.join(", ")}`);
    }
  }
  return tf.model({ inputs: input!, outputs: prev!, name: arch.model });
}

function makeLayer(
  l: ArchLayer,
  init: (role: string) => LayerInitializer | undefined,
): tf.layers.Layer | undefined {
  const name = l.tf_name;
  switch (l.type) {
    case "conv2d":
      return tf.layers.conv2d({
        name,
        filters: l.out_channels!,
        kernelSize: l.kernel as [number, number],
        strides: l.stride as [number, number],
        dilationRate: (l.dilation ?? [1, 1]) as [number, number],
        padding: l.tf_padding ?? "same",
        useBias: l.use_bias !== false,
        kernelInitializer: init("kernel"),
        biasInitializer: init("bias"),
      });
    case "relu":
      return tf.layers.activation({ name, activation: "relu" });
    case "maxpool2d":
      return tf.layers.maxPooling2d({
        name,
        poolSize: l.kernel as [number, number],
        strides: l.stride as [number, number],
        padding: l.tf_padding ?? "valid",
      });
    case "zeropad2d":
      return tf.layers.zeroPadding2d({
        name,
        padding: l.padding as [[number, number], [number, number]],
      });
    case "batchnorm":
      return tf.layers.batchNormalization({
        name,
        epsilon: l.eps ?? 1e-5,
        axis: -1,
        gammaInitializer: init("gamma"),
        betaInitializer: init("beta"),
        movingMeanInitializer: init("moving_mean"),
        movingVarianceInitializer: init("moving_variance"),
      });
    case "add":
      return tf.layers.add({ name });
    case "global_avgpool2d":
      return tf.layers.globalAveragePooling2d({ name });
    case "flatten":
      return tf.layers.flatten({ name });
    case "dropout":
      return tf.layers.dropout({ name, rate: 0.5 });
    case "dense":
      return tf.layers.dense({
        name,
        units: l.out_features!,
        useBias: l.use_bias !== false,
        kernelInitializer: init("kernel"),
        biasInitializer: init("bias"),
      });
    case "adaptive_avgpool2d":
      return undefined;
    default:
      throw new Error(`arch: layer type '${l.type}' (${name}) is not supported`);
  }
}
