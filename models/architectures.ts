/**
 * Architectures of the built-in "shapes" classifiers, as tf.layers models with seeded
 * initialisers (the same seed always gives the same initial weights).
 *
 * Both models take RGB input in [0, 1] (no mean/std normalisation) and output 10 raw logits
 * (linear activation, no softmax).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** Input side of both built-in models. */
export const INPUT_SIZE = 128;
/** Number of classes of both built-in models. */
export const NUM_CLASSES = 10;

/** Deterministic per-layer seed stream for the initialisers. */
function seedStream(seed: number): () => number {
  let i = 0;
  return (): number => (Math.imul(seed + 1, 7919) + 104729 * ++i) >>> 0;
}

/** Options for {@link buildShapesVgg}. */
export interface VggOptions {
  /** Seed of the weight initialisers. */
  seed?: number;
  /** Output channels of each block (one block per resolution; a 2x2 max pool ends each). */
  widths?: number[];
  /** Convolutions per block. */
  convsPerBlock?: number[];
}

/**
 * VGG-style classifier: blocks of 3x3 'same' convolutions with linear activation, each followed
 * by a separate ReLU `Activation` layer (so pre- and post-ReLU tensors are both addressable),
 * and a 2x2 max pool ending every block; then global average pooling and a linear Dense
 * layer `logits`. Layer names: `block{b}_conv{i}`, `block{b}_relu{i}`, `block{b}_pool`,
 * `gap`, `logits`.
 *
 * @param opts seed, widths and convolutions per block
 * @returns the (uncompiled) sequential model
 */
export function buildShapesVgg(opts: VggOptions = {}): tf.Sequential {
  const next = seedStream(opts.seed ?? 0);
  const widths = opts.widths ?? [16, 24, 32, 64, 96];
  const convs = opts.convsPerBlock ?? widths.map(() => 1);
  const model = tf.sequential({ name: "shapes_vgg" });
  widths.forEach((w, b) => {
    for (let i = 1; i <= convs[b]; i++) {
      model.add(tf.layers.conv2d({
        name: `block${b + 1}_conv${i}`,
        ...(b === 0 && i === 1 ? { inputShape: [INPUT_SIZE, INPUT_SIZE, 3] } : {}),
        filters: w,
        kernelSize: 3,
        padding: "same",
        activation: "linear",
        kernelInitializer: tf.initializers.heNormal({ seed: next() }),
        biasInitializer: "zeros",
      }));
      model.add(tf.layers.activation({ name: `block${b + 1}_relu${i}`, activation: "relu" }));
    }
    model.add(tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }));
  });
  model.add(tf.layers.globalAveragePooling2d({ name: "gap" }));
  model.add(tf.layers.dense({
    name: "logits",
    units: NUM_CLASSES,
    activation: "linear",
    kernelInitializer: tf.initializers.glorotUniform({ seed: next() }),
  }));
  return model;
}

/** Options for {@link buildShapesResnet}. */
export interface ResnetOptions {
  /** Seed of the weight initialisers. */
  seed?: number;
  /** Stem convolution channels. */
  stemWidth?: number;
  /** Channels of each stage; every stage after the first starts with a stride-2 block. */
  widths?: number[];
  /** Basic blocks per stage. */
  blocksPerStage?: number[];
}

/**
 * ResNet-style classifier (functional model): stem 3x3 stride-2 convolution + BatchNorm + ReLU
 * + 2x2 max pool, then stages of basic residual blocks (conv-BN-ReLU-conv-BN, `Add` with the
 * shortcut, ReLU after the add as a separate `Activation` layer). The first block of every
 * stage after the first downsamples with a STRIDED 3x3 convolution and a 1x1 stride-2
 * projection (+ BN) on the shortcut. Ends with global average pooling and a linear Dense
 * layer `logits`. Layer names: `stem_conv`, `stem_bn`, `stem_relu`, `stem_pool`,
 * `stage{s}_block{b}_{conv1,bn1,relu1,conv2,bn2,proj,proj_bn,add,relu2}`, `gap`, `logits`.
 *
 * @param opts seed, widths and blocks per stage
 * @returns the (uncompiled) functional model
 */
export function buildShapesResnet(opts: ResnetOptions = {}): tf.LayersModel {
  const next = seedStream((opts.seed ?? 0) + 1000);
  const widths = opts.widths ?? [24, 48, 96, 128];
  const blocks = opts.blocksPerStage ?? widths.map(() => 1);
  const conv = (name: string, filters: number, kernelSize: number, strides: number) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides,
      padding: "same",
      useBias: false,
      activation: "linear",
      kernelInitializer: tf.initializers.heNormal({ seed: next() }),
    });
  const bn = (name: string) => tf.layers.batchNormalization({ name, momentum: 0.9 });
  const relu = (name: string) => tf.layers.activation({ name, activation: "relu" });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor): tf.SymbolicTensor =>
    layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ name: "input", shape: [INPUT_SIZE, INPUT_SIZE, 3] });
  let x = apply(conv("stem_conv", opts.stemWidth ?? 16, 3, 2), input);
  x = apply(bn("stem_bn"), x);
  x = apply(relu("stem_relu"), x);
  x = apply(tf.layers.maxPooling2d({ name: "stem_pool", poolSize: 2, strides: 2 }), x);
  let channels = opts.stemWidth ?? 16;
  widths.forEach((w, s) => {
    for (let b = 0; b < blocks[s]; b++) {
      const p = `stage${s + 1}_block${b + 1}`;
      const stride = s > 0 && b === 0 ? 2 : 1;
      let y = apply(conv(`${p}_conv1`, w, 3, stride), x);
      y = apply(bn(`${p}_bn1`), y);
      y = apply(relu(`${p}_relu1`), y);
      y = apply(conv(`${p}_conv2`, w, 3, 1), y);
      y = apply(bn(`${p}_bn2`), y);
      let shortcut = x;
      if (stride !== 1 || channels !== w) {
        shortcut = apply(conv(`${p}_proj`, w, 1, stride), x);
        shortcut = apply(bn(`${p}_proj_bn`), shortcut);
      }
      x = tf.layers.add({ name: `${p}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
      x = apply(relu(`${p}_relu2`), x);
      channels = w;
    }
  });
  x = apply(tf.layers.globalAveragePooling2d({ name: "gap" }), x);
  const logits = apply(
    tf.layers.dense({
      name: "logits",
      units: NUM_CLASSES,
      activation: "linear",
      kernelInitializer: tf.initializers.glorotUniform({ seed: next() }),
    }),
    x,
  );
  return tf.model({ name: "shapes_resnet", inputs: input, outputs: logits });
}
