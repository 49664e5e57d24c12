/**
 * The test zoo (`tests/zoo/models.ts`): reduced-width replicas of VGG19, ResNet50, MobileNet
 * v1 / v2, EfficientNetB0, DenseNet121, InceptionV3, Xception, a model with LeakyReLU / PReLU
 * / ELU / clipped ReLU / UpSampling2D / Cropping2D / gelu / mish, two transfer-learning
 * models and a MobileNet head that ends in softmax then Reshape. On each: the executor's
 * scores equal tfjs's `model.predict`, its input gradient equals `tf.grad` of the model, every
 * method x extrapolator x {default, inner} layer gives a finite, non-constant map, guided
 * backprop differs from the plain gradient on ReLU-family models, the gradual pyramids never
 * use the input (or a padding / rescaling of it) and no tensor leaks. The README
 * compatibility table is printed from the same sweep by `deno task zoo:table`.
 */
import { initBackend } from "../backend/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { ZOO } from "./zoo/models.ts";
import { type ModelReport, sweepModel } from "./zoo/sweep.ts";

await initBackend({ backend: "wasm", threads: 1 });

/** Combinations allowed to refuse, with the message they must give. */
const ALLOWED_REFUSALS: { method: string; layerChoice: string; message: RegExp }[] = [
  {
    method: "integrated-gradients",
    layerChoice: "inner",
    message: /^integrated-gradients works at the model input \('[^']+'\), not '[^']+'$/,
  },
];

/**
 * Default layers by structure: CAM = the last spatial feature map (VGG19: block5_conv4's
 * activation, never the pool; never 1x1; inside the backbone of a transfer model); EB = a
 * block output (a merge or its activation), never an Inception branch or a pre-activation BN.
 */
const DEFAULTS: Record<string, [string, string]> = {
  "VGG19": ["block5_conv4", "block4_conv1"],
  "ResNet50": ["conv5_block2_out", "conv4_block2_out"],
  "MobileNet v1": ["conv_pw_7_relu", "conv_pw_6_relu"],
  "MobileNet v1 (softmax, Reshape)": ["conv_pw_7_relu", "conv_pw_6_relu"],
  "MobileNet v2": ["out_relu", "block_6_expand_relu"],
  "EfficientNetB0": ["top_activation", "block6a_expand_activation"],
  "DenseNet121": ["relu", "conv4_block2_concat"],
  "InceptionV3": ["mixed5", "mixed1"],
  "Xception": ["block14_sepconv1_act", "add_5"],
  "LeakyReLU/PReLU/ELU/UpSampling/Cropping": ["up_nearest", "crop"],
  "Transfer (backbone model as a layer)": ["backbone/block3_conv1", "backbone/block2_add"],
  "Transfer (MobileNetV2 base + GAP + Dense)": [
    "mobilenetv2_1.00_64/out_relu",
    "mobilenetv2_1.00_64/block_6_expand_relu",
  ],
};

for (const entry of ZOO) {
  Deno.test(`zoo: ${entry.name}`, async () => {
    const r: ModelReport = await sweepModel(entry);
    assert(r.scoreRelErr <= 1e-5, `scores differ from model.predict: ${r.scoreRelErr}`);
    assert(r.gradRelErr <= 1e-5, `input gradient differs from tf.grad: ${r.gradRelErr}`);
    if (entry.reluFamily) assert(r.guidedVsPlain > 1e-6, "guided backprop = plain gradient");
    assertEquals(r.inputStages, [], "a gradual stage is the input or a padding / rescaling of it");
    assertEquals(r.tensorGrowth, 0, "tensors leaked during the sweep");
    assertEquals([r.defaults.cam, r.defaults.eb], DEFAULTS[entry.name], "default layers");
    const bad = r.cells.filter((c) =>
      !c.ok &&
      !ALLOWED_REFUSALS.some((a) =>
        a.method === c.method && a.layerChoice === c.layerChoice && a.message.test(c.error ?? "")
      )
    );
    assertEquals(
      bad.map((c) => `${c.method}/${c.extrapolator}/${c.layerChoice}: ${c.error}`),
      [],
    );
  });
}
