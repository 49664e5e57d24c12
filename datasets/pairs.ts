/**
 * (image, class) pairs, as in TorchRay's benchmark: a multi-label image is evaluated once
 * per class it contains, explaining that class, against the union of that class's objects.
 *
 * Pascal VOC rule (TorchRay): a pair whose objects are all marked `difficult` is skipped;
 * otherwise difficult objects count like the others.
 *
 * The "difficult" subset (`subset: "difficult"`) keeps a pair (image, c) only when
 * 1. the image also contains objects of at least one other dataset class (whether the model
 *    knows it or not), **and**
 * 2. the union of class c's boxes covers less than 1/4 of the image's area (strictly),
 *    measured in the original image's pixels.
 *
 * This is the rule of the Excitation Backprop paper (Zhang et al., 2016), whose per-pair
 * flags TorchRay ships precomputed (`pointing_game_ebp_voc07_difficult.txt` /
 * `..._coco_difficult.txt`); for exact agreement with those lists, pass the list itself
 * ({@linkcode parseDifficultFlags}) and it is used instead of the rule. Condition 2 needs
 * the image size and, for manifest masks without a box, the mask: it is checked when the
 * image is read.
 *
 * @module
 */
import type { ClassMapping } from "./classes.ts";
import { DatasetError } from "./errors.ts";
import { type FloatBox, unionArea } from "./raster.ts";
import type { Dataset, DatasetImage, DatasetObject } from "./types.ts";

/** Which pairs to evaluate. */
export type Subset = "all" | "difficult";

/** One (image, class) pair to evaluate. */
export interface EvalPair {
  /** The image. */
  image: DatasetImage;
  /** The dataset category. */
  category: string;
  /** Model classes for it (the explained one is chosen per image when several). */
  candidates: readonly number[];
  /** The category's objects in the image. */
  objects: DatasetObject[];
  /** Number of other dataset categories in the image. */
  otherClasses: number;
  /** Resume key: image key and category. */
  key: string;
}

/** The pairs of a dataset and what was left out. */
export interface PairList {
  /** Pairs to evaluate, in dataset order (images in order, classes by first object). */
  pairs: EvalPair[];
  /** Images in the dataset. */
  images: number;
  /** Images without any object. */
  imagesWithoutObjects: number;
  /** Skipped pairs whose class the model does not know, per dataset category. */
  unknown: Record<string, number>;
  /** VOC pairs skipped because all their objects are `difficult`. */
  allDifficult: number;
  /** Pairs left out of the difficult subset before reading images (single-class images or the flags list). */
  notDifficult: number;
}

/**
 * The resume key of a pair.
 *
 * @param imageKey the image's key
 * @param category the dataset category
 * @returns `imageKey` and `category` joined by a tab
 */
export function pairKey(imageKey: string, category: string): string {
  return `${imageKey}\t${category}`;
}

/**
 * TorchRay's precomputed difficult-subset flags: lines of an image name (file name
 * without extension) then one 0 / 1 per dataset category, tab- or space-separated.
 *
 * @param text the file
 * @param file its path (for messages)
 * @returns image name → flags
 * @throws {DatasetError} for a line that is not a name followed by 0 / 1 values
 */
export function parseDifficultFlags(text: string, file: string): Map<string, boolean[]> {
  const out = new Map<string, boolean[]>();
  text.split(/\r?\n/).forEach((l, i) => {
    const parts = l.trim().split(/\s+/);
    if (parts.length === 1 && parts[0] === "") return;
    const flags = parts.slice(1);
    if (flags.length === 0 || flags.some((f) => f !== "0" && f !== "1")) {
      throw new DatasetError(file, `line ${i + 1}: expected an image name then 0/1 flags`);
    }
    out.set(parts[0], flags.map((f) => f === "1"));
  });
  return out;
}

/**
 * Whether a pair is in the difficult subset by the rule above.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDifficultPair } from "./pairs.ts";
 * assert.equal(isDifficultPair([[0, 0, 10, 10]], 1, 100, 100), true); // 1 % of the image
 * assert.equal(isDifficultPair([[0, 0, 10, 10]], 0, 100, 100), false); // no other class
 * ```
 *
 * @param boxes the class's boxes in image pixels
 * @param otherClasses number of other dataset classes in the image
 * @param width image width
 * @param height image height
 * @returns true for a difficult pair
 */
export function isDifficultPair(
  boxes: readonly FloatBox[],
  otherClasses: number,
  width: number,
  height: number,
): boolean {
  const clip = boxes.map((b): FloatBox => [
    Math.max(0, b[0]),
    Math.max(0, b[1]),
    Math.min(width, b[2]),
    Math.min(height, b[3]),
  ]).filter((b) => b[2] > b[0] && b[3] > b[1]);
  return otherClasses >= 1 && unionArea(clip) < (width * height) / 4;
}

const stem = (file: string): string => {
  const base = file.slice(file.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
};

/**
 * Lists the (image, class) pairs of a dataset for a model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildClassMapping } from "./classes.ts";
 * import { datasetPairs } from "./pairs.ts";
 * import { manifestDataset, parseManifestCsv } from "./manifest.ts";
 * const ds = manifestDataset(parseManifestCsv(
 *   "image,class,x0,y0,x1,y1\na.png,cat,0,0,2,2\na.png,zebra,2,2,4,4\n", "m.csv"), "m.csv");
 * const p = datasetPairs(ds, buildClassMapping({ labels: ["cat"], numClasses: 1 }));
 * assert.equal(p.pairs.length, 1); // (a.png, cat)
 * assert.deepEqual(p.unknown, { zebra: 1 }); // not a class of the model, counted
 * ```
 *
 * @param ds the dataset
 * @param mapping the class mapping
 * @param opts subset and TorchRay's difficult flags (indexed like `ds.categories`)
 * @returns the pairs and the counts of what was skipped
 * @throws {DatasetError} for a manifest class index the model does not have
 */
export function datasetPairs(
  ds: Dataset,
  mapping: ClassMapping,
  opts: { subset?: Subset; difficultFlags?: Map<string, boolean[]> } = {},
): PairList {
  const out: PairList = {
    pairs: [],
    images: ds.images.length,
    imagesWithoutObjects: 0,
    unknown: {},
    allDifficult: 0,
    notDifficult: 0,
  };
  const difficult = opts.subset === "difficult";
  for (const image of ds.images) {
    if (image.objects.length === 0) {
      out.imagesWithoutObjects++;
      continue;
    }
    const byCat = new Map<string, DatasetObject[]>();
    for (const o of image.objects) {
      const list = byCat.get(o.category);
      if (list) list.push(o);
      else byCat.set(o.category, [o]);
    }
    for (const [category, objects] of byCat) {
      const o0 = objects[0];
      let candidates: readonly number[] | undefined;
      if (o0.classIndex !== undefined) {
        if (o0.classIndex >= mapping.numClasses) {
          throw new DatasetError(
            o0.source,
            `${o0.entry}: class index ${o0.classIndex} is out of range (the model has ${mapping.numClasses} classes)`,
          );
        }
        candidates = [o0.classIndex];
      } else candidates = mapping.candidates(category);
      if (!candidates) {
        out.unknown[category] = (out.unknown[category] ?? 0) + 1;
        continue;
      }
      if (objects.every((o) => o.difficult)) {
        out.allDifficult++;
        continue;
      }
      const otherClasses = byCat.size - 1;
      if (difficult) {
        const flags = opts.difficultFlags?.get(stem(image.file));
        if (
          (opts.difficultFlags && flags && !flags[ds.categories.indexOf(category)]) ||
          (!opts.difficultFlags && otherClasses === 0)
        ) {
          out.notDifficult++;
          continue;
        }
      }
      out.pairs.push({
        image,
        category,
        candidates,
        objects,
        otherClasses,
        key: pairKey(image.key, category),
      });
    }
  }
  return out;
}
