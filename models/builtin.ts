/**
 * Registry of the classifiers this project trains itself (`models/train.ts`) on the
 * procedural scenes of `models/scenes.ts`, where every target's exact location is known.
 *
 * URLs are relative to this module, so they resolve to `file:` URLs in Deno and to http(s)
 * URLs when the package is served to a browser.
 *
 * @module
 */

/** How a built-in model expects its input to be scaled. */
export type BuiltinPreprocess = "imagenet" | "unit";

/** Description of one built-in model. */
export interface BuiltinModel {
  /** Registry name, e.g. `"shapes-vgg"`. */
  name: string;
  /** URL of the tfjs LayersModel `model.json` (its weight shard lies beside it). */
  modelUrl: URL;
  /** URL of `labels.json`: the class names, in logit order. */
  labelsUrl: URL;
  /** URL of the model card (data, architecture, training, accuracy). */
  cardUrl: URL;
  /** Input size `[height, width]` (RGB, NHWC). */
  inputSize: [number, number];
  /**
   * Input scaling: `"unit"` = RGB / 255 in [0, 1]; `"imagenet"` = then minus the ImageNet
   * mean and divided by its std per channel.
   */
  preprocess: BuiltinPreprocess;
  /** Number of output logits (no softmax in the model). */
  numClasses: number;
  /** One-line description. */
  description: string;
}

function entry(
  name: string,
  description: string,
): BuiltinModel {
  return {
    name,
    modelUrl: new URL(`./${name}/model.json`, import.meta.url),
    labelsUrl: new URL(`./${name}/labels.json`, import.meta.url),
    cardUrl: new URL(`./${name}/MODEL_CARD.md`, import.meta.url),
    inputSize: [128, 128],
    preprocess: "unit",
    numClasses: 10,
    description,
  };
}

/** The built-in models by name. */
export const BUILTIN_MODELS: Readonly<Record<string, BuiltinModel>> = Object.freeze({
  "shapes-vgg": entry(
    "shapes-vgg",
    "VGG-style CNN (5 conv blocks with separate ReLU layers and 2x2 max pools, GAP, linear " +
      "logits) for the 10 procedural shape classes; 128x128 RGB in [0, 1].",
  ),
  "shapes-resnet": entry(
    "shapes-resnet",
    "ResNet-style CNN (BN, strided downsampling with 1x1 projection shortcuts, Add + ReLU, " +
      "GAP, linear logits) for the 10 procedural shape classes; 128x128 RGB in [0, 1].",
  ),
});

/** Names of the built-in models. */
export const BUILTIN_MODEL_NAMES: readonly string[] = Object.freeze(Object.keys(BUILTIN_MODELS));

/**
 * Look up a built-in model by name.
 *
 * @param name registry name, e.g. `"shapes-vgg"`
 * @returns its description (URLs, input size, preprocessing)
 * @throws Error listing the known names when `name` is not one of them
 */
export function builtinModel(name: string): BuiltinModel {
  const m = Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, name)
    ? BUILTIN_MODELS[name]
    : undefined;
  if (m === undefined) {
    throw new Error(
      `unknown built-in model "${name}"; known models: ${BUILTIN_MODEL_NAMES.join(", ")}`,
    );
  }
  return m;
}
