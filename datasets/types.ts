/**
 * The common in-memory form of a labelled dataset, whatever its format: images with their
 * annotated objects. Pixels are not held; images and mask files are read one at a time
 * while evaluating.
 *
 * @module
 */
import type { FloatBox } from "./raster.ts";

/** The dataset formats `gradual eval --dataset` recognises. */
export type DatasetFormat = "coco" | "voc" | "manifest";

/** Where an object's pixels are described (besides its box). */
export type ObjectRegion =
  /** Only the box is known. */
  | { kind: "box" }
  /** COCO polygons, flat `[x, y, ...]` lists in source pixels, united. */
  | { kind: "polygons"; polygons: number[][] }
  /** COCO RLE (counts list or compressed string), `size` = `[height, width]`. */
  | { kind: "rle"; counts: number[] | string; size: [number, number] }
  /**
   * A mask image: with `value`, the pixels whose palette index / gray level equals it
   * (VOC SegmentationObject: the object's 1-based position in the XML); without, every
   * pixel with a nonzero colour and nonzero alpha (manifest masks).
   * `optional`: when the file is missing, fall back to the box (VOC).
   */
  | { kind: "png"; file: string; value?: number; optional?: boolean };

/** One annotated object. */
export interface DatasetObject {
  /** The dataset's category name. */
  category: string;
  /** A model class index given directly by the dataset (manifest `class` as a number). */
  classIndex?: number;
  /**
   * Box in source pixels, `[x0, y0, x1, y1]`, continuous coordinates, x1 / y1 exclusive;
   * absent for manifest masks (computed from the mask when it is read).
   */
  box?: FloatBox;
  /** Pixels of the object. */
  region: ObjectRegion;
  /** Pascal VOC "difficult" flag. */
  difficult: boolean;
  /** The file that describes the object (annotation file, VOC XML, manifest). */
  source: string;
  /** Where in `source`, for messages (e.g. `annotations[12] (id 345)`, `line 4`). */
  entry: string;
}

/** One image and its objects. */
export interface DatasetImage {
  /** Unique key in the dataset (COCO image id, VOC image id, manifest image path). */
  key: string;
  /** Path of the image file. */
  file: string;
  /** Size stated by the annotation (COCO, VOC), checked against the decoded image. */
  width?: number;
  /** Height stated by the annotation. */
  height?: number;
  /** Annotated objects, in file order. */
  objects: DatasetObject[];
}

/** A parsed dataset. */
export interface Dataset {
  /** The format. */
  format: DatasetFormat;
  /** What `--dataset` named (file or folder). */
  path: string;
  /** The file whose entries the images come from (for messages). */
  annotationFile: string;
  /** Category names in the dataset's order (COCO: by id; VOC: the 20 classes, then others). */
  categories: string[];
  /** The images, in the dataset's order. */
  images: DatasetImage[];
  /**
   * Images left out, each with the file concerned and why (a malformed VOC annotation, a
   * path leading outside the dataset's folder); the rest of the dataset is still usable.
   */
  skipped?: { file: string; problem: string }[];
}
