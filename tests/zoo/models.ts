/**
 * The test zoo: small, seeded, reduced-width replicas of the architectures people convert
 * with `tensorflowjs_converter` (Keras applications and transfer-learning models), built at
 * test time with tfjs-layers. Layer names and structure follow the Keras applications; the
 * widths and depths are reduced so the whole zoo runs in seconds. Weights come from a seeded
 * generator (He-normal kernels, batch-norm statistics near the identity), so every run sees
 * the same models.
 *
 * @module
 */
import { KerasNormalization } from "../../core/keras_layers.ts";
import { tf } from "../../core/tensor.ts";

type ST = tf.SymbolicTensor;
type Act = Parameters<typeof tf.layers.activation>[0]["activation"];
type Pad = NonNullable<Parameters<typeof tf.layers.zeroPadding2d>[0]>["padding"];
const L = tf.layers;

/** One zoo architecture. */
export interface ZooEntry {
  /** Short name (README table row). */
  readonly name: string;
  /** Builds the model (seeded weights). */
  readonly build: () => tf.LayersModel;
  /** An inner spatial layer to run every method at explicitly. */
  readonly innerLayer: string;
  /** Whether the model has ReLU-family activations (guided backprop must differ). */
  readonly reluFamily: boolean;
  /** Input value scale: 255 for models fed raw pixels (`--preprocess raw`), else 1. */
  readonly inputScale?: number;
}

/** Input size of every zoo model. */
export const ZOO_SIZE = 64;
/** Number of classes of every zoo model. */
export const ZOO_CLASSES = 5;

/** A seeded normal generator (mulberry32 + Box-Muller). */
export function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

/** Sets every weight of `model` from a seeded generator, by weight role. */
export function seedWeights(model: tf.LayersModel, seed = 17): void {
  const next = normals(seed);
  const fill = (n: number, f: () => number): Float32Array => Float32Array.from({ length: n }, f);
  for (const w of model.weights) {
    const shape = w.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const name = w.originalName;
    let data: Float32Array;
    if (name.endsWith("moving_variance")) data = fill(size, () => 1 + 0.2 * Math.abs(next()));
    else if (name.endsWith("moving_mean")) data = fill(size, () => 0.1 * next());
    else if (name.endsWith("gamma")) data = fill(size, () => 1 + 0.1 * next());
    else if (name.endsWith("beta")) data = fill(size, () => 0.05 + 0.1 * next());
    else if (name.endsWith("bias")) data = fill(size, () => 0.02 + 0.05 * next());
    else if (name.endsWith("/mean")) data = fill(size, () => 0.45 + 0.05 * next());
    else if (name.endsWith("/variance")) data = fill(size, () => 0.05 + 0.01 * Math.abs(next()));
    else if (name.endsWith("/count")) data = fill(size, () => 1000);
    else if (name.endsWith("alpha")) data = fill(size, () => 0.2 + 0.05 * next());
    else {
      const depthwise = name.includes("depthwise");
      const fanIn = shape.length === 4
        ? shape[0] * shape[1] * (depthwise ? 1 : shape[2])
        : shape.length === 2
        ? shape[0]
        : 1;
      const std = Math.sqrt(2 / fanIn);
      data = fill(size, () => std * next());
    }
    const t = tf.tensor(data, shape);
    w.write(t);
    t.dispose();
  }
}

/** A seeded input batch `[n, 64, 64, 3]` in [0, 1] with a bright blob per image. */
export function zooInput(n = 1, seed = 5): tf.Tensor4D {
  const next = normals(seed);
  const s = ZOO_SIZE;
  const data = new Float32Array(n * s * s * 3);
  for (let b = 0; b < n; b++) {
    const cy = 16 + 8 * b, cx = 40 - 8 * b;
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const blob = Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 60);
        for (let c = 0; c < 3; c++) {
          const v = 0.3 + 0.6 * blob * (c === b % 3 ? 1 : 0.5) + 0.08 * next();
          data[((b * s + y) * s + x) * 3 + c] = Math.min(1, Math.max(0, v));
        }
      }
    }
  }
  return tf.tensor4d(data, [n, s, s, 3]);
}

const conv = (
  x: ST,
  filters: number,
  k: number,
  name: string,
  o: { strides?: number; padding?: "same" | "valid"; activation?: string; useBias?: boolean } = {},
): ST =>
  L.conv2d({
    filters,
    kernelSize: k,
    strides: o.strides ?? 1,
    padding: o.padding ?? "same",
    activation: (o.activation ?? "linear") as Act,
    useBias: o.useBias ?? true,
    name,
  }).apply(x) as ST;
const bn = (x: ST, name: string): ST => L.batchNormalization({ axis: 3, name }).apply(x) as ST;
const act = (x: ST, a: string, name: string): ST =>
  L.activation({ activation: a as Act, name }).apply(x) as ST;
const relu6 = (x: ST, name: string): ST => L.reLU({ maxValue: 6, name }).apply(x) as ST;
const pad = (x: ST, p: number | [[number, number], [number, number]], name: string): ST =>
  L.zeroPadding2d({ padding: p as Pad, name }).apply(x) as ST;
const gap = (x: ST, name: string): ST => L.globalAveragePooling2d({ name }).apply(x) as ST;
const dense = (x: ST, units: number, name: string, activation = "softmax"): ST =>
  L.dense({ units, activation: activation as Act, name }).apply(x) as ST;
const input = (name = "input_1"): ST => tf.input({ shape: [ZOO_SIZE, ZOO_SIZE, 3], name });

function finish(inputs: ST, outputs: ST, name: string): tf.LayersModel {
  const m = tf.model({ inputs, outputs, name });
  seedWeights(m);
  return m;
}

/** VGG19: 2-2-4-4-4 convolutions with fused ReLU, max pools, flatten, two dense layers. */
function vgg19(): tf.LayersModel {
  const x0 = input();
  let x = x0;
  const widths = [4, 8, 8, 16, 16];
  [2, 2, 4, 4, 4].forEach((n, b) => {
    for (let i = 1; i <= n; i++) {
      x = conv(x, widths[b], 3, `block${b + 1}_conv${i}`, { activation: "relu" });
    }
    x = L.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as ST;
  });
  x = L.flatten({ name: "flatten" }).apply(x) as ST;
  x = dense(x, 16, "fc1", "relu");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "vgg19");
}

/** ResNet50: padded 7x7 stem, bottleneck blocks with projection shortcuts, GAP head. */
function resnet50(): tf.LayersModel {
  const x0 = input();
  let x = pad(x0, 3, "conv1_pad");
  x = conv(x, 8, 7, "conv1_conv", { strides: 2, padding: "valid" });
  x = act(bn(x, "conv1_bn"), "relu", "conv1_relu");
  x = pad(x, 1, "pool1_pad");
  x = L.maxPooling2d({ poolSize: 3, strides: 2, name: "pool1_pool" }).apply(x) as ST;
  const block = (x: ST, f: number, stride: number, shortcut: boolean, name: string): ST => {
    let s = x;
    if (shortcut) s = bn(conv(x, 4 * f, 1, `${name}_0_conv`, { strides: stride }), `${name}_0_bn`);
    let y = conv(x, f, 1, `${name}_1_conv`, { strides: stride });
    y = act(bn(y, `${name}_1_bn`), "relu", `${name}_1_relu`);
    y = conv(y, f, 3, `${name}_2_conv`);
    y = act(bn(y, `${name}_2_bn`), "relu", `${name}_2_relu`);
    y = bn(conv(y, 4 * f, 1, `${name}_3_conv`), `${name}_3_bn`);
    const sum = L.add({ name: `${name}_add` }).apply([s, y]) as ST;
    return act(sum, "relu", `${name}_out`);
  };
  [[2, 2, 1], [3, 2, 2], [4, 4, 2], [5, 4, 2]].forEach(([stage, f, stride]) => {
    x = block(x, f, stride, true, `conv${stage}_block1`);
    x = block(x, f, 1, false, `conv${stage}_block2`);
  });
  x = gap(x, "avg_pool");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "resnet50");
}

/** MobileNet v1 depthwise-separable body (ReLU6); `hosted`: softmax before the reshape. */
function mobilenetV1(hosted: boolean): tf.LayersModel {
  const x0 = input();
  let x = pad(x0, [[0, 1], [0, 1]], "conv1_pad");
  x = conv(x, 8, 3, "conv1", { strides: 2, padding: "valid", useBias: false });
  x = relu6(bn(x, "conv1_bn"), "conv1_relu");
  const blocks: [number, number][] = [[8, 1], [12, 2], [12, 1], [16, 2], [16, 1], [24, 2], [24, 2]];
  blocks.forEach(([f, stride], i) => {
    const id = i + 1;
    let y = x;
    if (stride === 2) y = pad(y, [[0, 1], [0, 1]], `conv_pad_${id}`);
    y = L.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      padding: stride === 2 ? "valid" : "same",
      useBias: false,
      name: `conv_dw_${id}`,
    }).apply(y) as ST;
    y = relu6(bn(y, `conv_dw_${id}_bn`), `conv_dw_${id}_relu`);
    y = conv(y, f, 1, `conv_pw_${id}`, { useBias: false });
    x = relu6(bn(y, `conv_pw_${id}_bn`), `conv_pw_${id}_relu`);
  });
  x = gap(x, "global_average_pooling2d");
  x = L.reshape({ targetShape: [1, 1, 24], name: "reshape_1" }).apply(x) as ST;
  x = L.dropout({ rate: 0.001, name: "dropout" }).apply(x) as ST;
  x = conv(x, ZOO_CLASSES, 1, "conv_preds");
  if (hosted) {
    x = act(x, "softmax", "act_softmax");
    x = L.reshape({ targetShape: [ZOO_CLASSES], name: "reshape_2" }).apply(x) as ST;
  } else {
    x = L.reshape({ targetShape: [ZOO_CLASSES], name: "reshape_2" }).apply(x) as ST;
    x = act(x, "softmax", "act_softmax");
  }
  return finish(x0, x, hosted ? "mobilenet_v1_hosted" : "mobilenet_1.00_64");
}

/** MobileNet v2 inverted residual body (ReLU6, depthwise, linear bottlenecks); no top. */
function mobilenetV2Base(x0: ST): ST {
  let x = conv(x0, 8, 3, "Conv1", { strides: 2, useBias: false });
  x = relu6(bn(x, "bn_Conv1"), "Conv1_relu");
  let inC = 8;
  const spec: [number, number, number][] = [
    [1, 8, 1],
    [3, 8, 2],
    [3, 8, 1],
    [3, 12, 2],
    [
      3,
      12,
      1,
    ],
    [3, 16, 2],
    [3, 16, 2],
  ];
  spec.forEach(([t, c, stride], i) => {
    const p = i === 0 ? "expanded_conv" : `block_${i}`;
    let y = x;
    if (t !== 1) {
      y = conv(y, inC * t, 1, `${p}_expand`, { useBias: false });
      y = relu6(bn(y, `${p}_expand_BN`), `${p}_expand_relu`);
    }
    if (stride === 2) y = pad(y, [[0, 1], [0, 1]], `${p}_pad`);
    y = L.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      padding: stride === 2 ? "valid" : "same",
      useBias: false,
      name: `${p}_depthwise`,
    }).apply(y) as ST;
    y = relu6(bn(y, `${p}_depthwise_BN`), `${p}_depthwise_relu`);
    y = bn(conv(y, c, 1, `${p}_project`, { useBias: false }), `${p}_project_BN`);
    x = stride === 1 && inC === c ? L.add({ name: `${p}_add` }).apply([x, y]) as ST : y;
    inC = c;
  });
  x = conv(x, 32, 1, "Conv_1", { useBias: false });
  return relu6(bn(x, "Conv_1_bn"), "out_relu");
}

function mobilenetV2(): tf.LayersModel {
  const x0 = input();
  const x = gap(mobilenetV2Base(x0), "global_average_pooling2d");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "mobilenetv2_1.00_64");
}

/** EfficientNetB0: Rescaling + Normalization stem (0..255 input), swish, MBConv with squeeze-and-excitation (broadcast Multiply). */
function efficientNetB0(): tf.LayersModel {
  const x0 = input();
  let x = L.rescaling({ scale: 1 / 255, name: "rescaling" }).apply(x0) as ST;
  x = new KerasNormalization({ name: "normalization" }).apply(x) as ST;
  x = pad(x, [[0, 1], [0, 1]], "stem_conv_pad");
  x = conv(x, 8, 3, "stem_conv", { strides: 2, padding: "valid", useBias: false });
  x = act(bn(x, "stem_bn"), "swish", "stem_activation");
  let inC = 8;
  const spec: [number, number, number][] = [[1, 8, 1], [4, 8, 2], [4, 12, 2], [4, 12, 1], [
    4,
    16,
    2,
  ], [4, 16, 2]];
  spec.forEach(([t, c, stride], i) => {
    const p = `block${i + 1}a`;
    let y = x;
    const mid = inC * t;
    if (t !== 1) {
      y = conv(y, mid, 1, `${p}_expand_conv`, { useBias: false });
      y = act(bn(y, `${p}_expand_bn`), "swish", `${p}_expand_activation`);
    }
    if (stride === 2) y = pad(y, [[0, 1], [0, 1]], `${p}_dwconv_pad`);
    y = L.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      padding: stride === 2 ? "valid" : "same",
      useBias: false,
      name: `${p}_dwconv`,
    }).apply(y) as ST;
    y = act(bn(y, `${p}_bn`), "swish", `${p}_activation`);
    let se = gap(y, `${p}_se_squeeze`);
    se = L.reshape({ targetShape: [1, 1, mid], name: `${p}_se_reshape` }).apply(se) as ST;
    se = conv(se, Math.max(2, Math.floor(inC / 4)), 1, `${p}_se_reduce`, { activation: "swish" });
    se = conv(se, mid, 1, `${p}_se_expand`, { activation: "sigmoid" });
    y = L.multiply({ name: `${p}_se_excite` }).apply([y, se]) as ST;
    y = bn(conv(y, c, 1, `${p}_project_conv`, { useBias: false }), `${p}_project_bn`);
    if (stride === 1 && inC === c) {
      y = L.dropout({ rate: 0.001, name: `${p}_drop` }).apply(y) as ST;
      y = L.add({ name: `${p}_add` }).apply([y, x]) as ST;
    }
    x = y;
    inC = c;
  });
  x = conv(x, 32, 1, "top_conv", { useBias: false });
  x = act(bn(x, "top_bn"), "swish", "top_activation");
  x = gap(x, "avg_pool");
  x = L.dropout({ rate: 0.001, name: "top_dropout" }).apply(x) as ST;
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "efficientnetb0");
}

/** DenseNet121: dense blocks (concatenation), transitions with average pooling. */
function denseNet121(): tf.LayersModel {
  const x0 = input();
  let x = pad(x0, 3, "zero_padding2d");
  x = conv(x, 8, 7, "conv1/conv", { strides: 2, padding: "valid", useBias: false });
  x = act(bn(x, "conv1/bn"), "relu", "conv1/relu");
  x = pad(x, 1, "zero_padding2d_1");
  x = L.maxPooling2d({ poolSize: 3, strides: 2, name: "pool1" }).apply(x) as ST;
  let ch = 8;
  const growth = 4;
  [2, 2, 2, 2].forEach((n, b) => {
    for (let i = 1; i <= n; i++) {
      const p = `conv${b + 2}_block${i}`;
      let y = act(bn(x, `${p}_0_bn`), "relu", `${p}_0_relu`);
      y = conv(y, 4 * growth, 1, `${p}_1_conv`, { useBias: false });
      y = act(bn(y, `${p}_1_bn`), "relu", `${p}_1_relu`);
      y = conv(y, growth, 3, `${p}_2_conv`, { useBias: false });
      x = L.concatenate({ axis: 3, name: `${p}_concat` }).apply([x, y]) as ST;
      ch += growth;
    }
    if (b < 3) {
      const p = `pool${b + 2}`;
      let y = act(bn(x, `${p}_bn`), "relu", `${p}_relu`);
      ch = Math.floor(ch / 2);
      y = conv(y, ch, 1, `${p}_conv`, { useBias: false });
      x = L.averagePooling2d({ poolSize: 2, strides: 2, name: `${p}_pool` }).apply(y) as ST;
    }
  });
  x = act(bn(x, "bn"), "relu", "relu");
  x = gap(x, "avg_pool");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "densenet121");
}

/** InceptionV3: conv-bn-relu stem, 4-branch mixed modules, a reduction module, concat. */
function inceptionV3(): tf.LayersModel {
  let k = 0;
  const cbr = (
    x: ST,
    f: number,
    kh: number,
    kw: number,
    o: { strides?: number; padding?: "same" | "valid" } = {},
  ): ST => {
    const id = k++ === 0 ? "" : `_${k - 1}`;
    const y = L.conv2d({
      filters: f,
      kernelSize: [kh, kw],
      strides: o.strides ?? 1,
      padding: o.padding ?? "same",
      useBias: false,
      name: `conv2d${id}`,
    }).apply(x) as ST;
    return act(
      L.batchNormalization({ axis: 3, name: `batch_normalization${id}` }).apply(
        y,
      ) as ST,
      "relu",
      `activation${id}`,
    );
  };
  const x0 = input();
  let x = cbr(x0, 8, 3, 3, { strides: 2, padding: "valid" });
  x = cbr(x, 8, 3, 3);
  x = L.maxPooling2d({ poolSize: 3, strides: 2, name: "max_pooling2d" }).apply(x) as ST;
  const mixed = (x: ST, name: string): ST => {
    const b1 = cbr(x, 4, 1, 1);
    const b5 = cbr(cbr(x, 3, 1, 1), 4, 5, 5);
    const b3 = cbr(cbr(cbr(x, 4, 1, 1), 6, 3, 3), 6, 3, 3);
    let bp = L.averagePooling2d({ poolSize: 3, strides: 1, padding: "same", name: `${name}_ap` })
      .apply(x) as ST;
    bp = cbr(bp, 2, 1, 1);
    return L.concatenate({ axis: 3, name }).apply([b1, b5, b3, bp]) as ST;
  };
  x = mixed(x, "mixed0");
  x = mixed(x, "mixed1");
  // Reduction module (mixed3): strided branches and a max pool, concatenated.
  const r3 = cbr(x, 8, 3, 3, { strides: 2, padding: "valid" });
  const r33 = cbr(cbr(cbr(x, 4, 1, 1), 6, 3, 3), 6, 3, 3, { strides: 2, padding: "valid" });
  const rp = L.maxPooling2d({ poolSize: 3, strides: 2, name: "max_pooling2d_1" }).apply(x) as ST;
  x = L.concatenate({ axis: 3, name: "mixed3" }).apply([r3, r33, rp]) as ST;
  // A factorised 1x7 / 7x1 module (mixed4).
  const a = cbr(x, 6, 1, 1);
  const b = cbr(cbr(cbr(x, 4, 1, 1), 4, 1, 7), 6, 7, 1);
  x = L.concatenate({ axis: 3, name: "mixed4" }).apply([a, b]) as ST;
  x = mixed(x, "mixed5");
  x = gap(x, "avg_pool");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "inception_v3");
}

/** Xception: separable convolutions, strided residual projections, max pools, adds. */
function xception(): tf.LayersModel {
  const sep = (x: ST, f: number, name: string): ST =>
    L.separableConv2d({ filters: f, kernelSize: 3, padding: "same", useBias: false, name })
      .apply(x) as ST;
  const x0 = input();
  let x = conv(x0, 8, 3, "block1_conv1", { strides: 2, padding: "valid", useBias: false });
  x = act(bn(x, "block1_conv1_bn"), "relu", "block1_conv1_act");
  x = conv(x, 8, 3, "block1_conv2", { useBias: false });
  x = act(bn(x, "block1_conv2_bn"), "relu", "block1_conv2_act");
  const down = (x: ST, f: number, b: number, first: boolean): ST => {
    const r = bn(conv(x, f, 1, `conv2d_${b}`, { strides: 2, useBias: false }), `bn_${b}`);
    let y = first ? x : act(x, "relu", `block${b}_sepconv1_act`);
    y = bn(sep(y, f, `block${b}_sepconv1`), `block${b}_sepconv1_bn`);
    y = act(y, "relu", `block${b}_sepconv2_act`);
    y = bn(sep(y, f, `block${b}_sepconv2`), `block${b}_sepconv2_bn`);
    y = L.maxPooling2d({ poolSize: 3, strides: 2, padding: "same", name: `block${b}_pool` })
      .apply(y) as ST;
    return L.add({ name: `add_${b}` }).apply([y, r]) as ST;
  };
  x = down(x, 12, 2, true);
  x = down(x, 16, 3, false);
  // Middle flow block (identity residual).
  let y = x;
  for (let i = 1; i <= 3; i++) {
    y = act(y, "relu", `block5_sepconv${i}_act`);
    y = bn(sep(y, 16, `block5_sepconv${i}`), `block5_sepconv${i}_bn`);
  }
  x = L.add({ name: "add_5" }).apply([y, x]) as ST;
  x = down(x, 24, 13, false);
  x = bn(sep(x, 32, "block14_sepconv1"), "block14_sepconv1_bn");
  x = act(x, "relu", "block14_sepconv1_act");
  x = gap(x, "avg_pool");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "xception");
}

/**
 * LeakyReLU, PReLU, ELU, ReLU(maxValue=1), UpSampling2D, Cropping2D, gelu and mish; a depthwise
 * convolution with depth multiplier 2, a separable convolution with multiplier, bias and ReLU.
 * (Dilated convolutions: `tests/zoo_rules_test.ts`, tfjs has no gradient for them.)
 */
function misc(): tf.LayersModel {
  const x0 = input();
  let x = conv(x0, 6, 3, "conv_a");
  x = L.leakyReLU({ alpha: 0.1, name: "leaky" }).apply(x) as ST;
  x = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: "same", name: "dw_x2" })
    .apply(x) as ST;
  x = L.separableConv2d({
    filters: 6,
    kernelSize: 3,
    depthMultiplier: 2,
    padding: "same",
    activation: "relu",
    name: "sep_bias_relu",
  }).apply(x) as ST;
  x = L.maxPooling2d({ poolSize: 2, name: "pool_a" }).apply(x) as ST;
  x = conv(x, 8, 3, "conv_b");
  x = L.prelu({ sharedAxes: [1, 2], name: "prelu" }).apply(x) as ST;
  x = L.maxPooling2d({ poolSize: 2, name: "pool_b" }).apply(x) as ST;
  x = conv(x, 8, 3, "conv_c");
  x = L.elu({ name: "elu" }).apply(x) as ST;
  x = L.upSampling2d({ size: [2, 2], interpolation: "bilinear", name: "up" }).apply(x) as ST;
  x = L.cropping2D({ cropping: [[1, 1], [1, 1]], name: "crop" }).apply(x) as ST;
  x = conv(x, 8, 3, "conv_d", { strides: 2, activation: "gelu" });
  x = conv(x, 8, 3, "conv_e", { activation: "mish" });
  x = L.reLU({ maxValue: 1, name: "clip1" }).apply(x) as ST;
  x = L.upSampling2d({ size: [2, 2], name: "up_nearest" }).apply(x) as ST;
  x = L.maxPooling2d({ poolSize: 2, name: "pool_c" }).apply(x) as ST;
  x = gap(x, "gap");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "misc_activations");
}

/** A functional backbone model used as one layer, then GAP and a dense head. */
function transferBackbone(): tf.LayersModel {
  const bi = tf.input({ shape: [ZOO_SIZE, ZOO_SIZE, 3], name: "backbone_input" });
  let y = conv(bi, 6, 3, "block1_conv1", { activation: "relu" });
  y = L.maxPooling2d({ poolSize: 2, name: "block1_pool" }).apply(y) as ST;
  y = conv(y, 8, 3, "block2_conv1", { activation: "relu" });
  const r = conv(y, 8, 3, "block2_conv2", { activation: "relu" });
  y = L.add({ name: "block2_add" }).apply([y, r]) as ST;
  y = L.maxPooling2d({ poolSize: 2, name: "block2_pool" }).apply(y) as ST;
  y = conv(y, 12, 3, "block3_conv1", { activation: "relu" });
  const backbone = tf.model({ inputs: bi, outputs: y, name: "backbone" });
  const x0 = input();
  let x = backbone.apply(x0) as ST;
  x = gap(x, "gap");
  return finish(x0, dense(x, ZOO_CLASSES, "predictions"), "transfer_backbone");
}

/** `base = MobileNetV2(include_top=False)`; GAP, dropout and a dense softmax head on top. */
function transferMobileNetV2(): tf.LayersModel {
  const bi = tf.input({ shape: [ZOO_SIZE, ZOO_SIZE, 3], name: "input_1" });
  const base = tf.model({ inputs: bi, outputs: mobilenetV2Base(bi), name: "mobilenetv2_1.00_64" });
  const x0 = input("input_2");
  let x = base.apply(x0) as ST;
  x = gap(x, "global_average_pooling2d");
  x = L.dropout({ rate: 0.2, name: "dropout" }).apply(x) as ST;
  return finish(x0, dense(x, ZOO_CLASSES, "dense"), "transfer_mobilenetv2");
}

/** The zoo, in README table order. */
export const ZOO: readonly ZooEntry[] = [
  { name: "VGG19", build: vgg19, innerLayer: "block4_conv2", reluFamily: true },
  { name: "ResNet50", build: resnet50, innerLayer: "conv3_block1_out", reluFamily: true },
  {
    name: "MobileNet v1",
    build: () => mobilenetV1(false),
    innerLayer: "conv_pw_5_relu",
    reluFamily: true,
  },
  {
    name: "MobileNet v1 (softmax, Reshape)",
    build: () => mobilenetV1(true),
    innerLayer: "conv_pw_5_relu",
    reluFamily: true,
  },
  { name: "MobileNet v2", build: mobilenetV2, innerLayer: "block_4_add", reluFamily: true },
  {
    name: "EfficientNetB0",
    build: efficientNetB0,
    innerLayer: "block3a_expand_activation",
    reluFamily: false,
    inputScale: 255,
  },
  { name: "DenseNet121", build: denseNet121, innerLayer: "conv3_block2_1_relu", reluFamily: true },
  { name: "InceptionV3", build: inceptionV3, innerLayer: "mixed1", reluFamily: true },
  { name: "Xception", build: xception, innerLayer: "add_3", reluFamily: true },
  {
    name: "LeakyReLU/PReLU/ELU/UpSampling/Cropping",
    build: misc,
    innerLayer: "prelu",
    reluFamily: true,
  },
  {
    name: "Transfer (backbone model as a layer)",
    build: transferBackbone,
    innerLayer: "backbone/block2_conv1",
    reluFamily: true,
  },
  {
    name: "Transfer (MobileNetV2 base + GAP + Dense)",
    build: transferMobileNetV2,
    innerLayer: "mobilenetv2_1.00_64/block_4_add",
    reluFamily: true,
  },
];
