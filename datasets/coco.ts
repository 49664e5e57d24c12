/**
 * COCO instances files (`instances_val2014.json` and the like): `images` (id, file_name,
 * width, height), `annotations` (image_id, category_id, bbox `[x, y, width, height]`,
 * segmentation as polygons or RLE, iscrowd) and `categories` (id, name). Every entry is
 * checked; a malformed one is a {@linkcode DatasetError} naming the entry and the problem.
 * Crowd annotations (`iscrowd: 1`) are kept, as pycocotools' `annToMask` (and so TorchRay's
 * COCO pointing game) keeps them.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { DatasetError } from "./errors.ts";
import type { FloatBox } from "./raster.ts";
import type { Dataset, DatasetImage, ObjectRegion } from "./types.ts";

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * Reads a parsed COCO instances file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCoco } from "./coco.ts";
 * const ds = parseCoco({
 *   images: [{ id: 1, file_name: "a.jpg", width: 4, height: 2 }],
 *   annotations: [{ id: 7, image_id: 1, category_id: 3, bbox: [0, 0, 2, 2], segmentation: [] }],
 *   categories: [{ id: 3, name: "cat" }],
 * }, "instances.json", "images");
 * assert.deepEqual(ds.images[0].objects[0].box, [0, 0, 2, 2]); // COCO x, y, w, h -> x0, y0, x1, y1
 * ```
 *
 * @param json the parsed JSON
 * @param file the annotation file (for messages)
 * @param imageDir folder the `file_name`s are relative to
 * @returns the dataset (categories in id order, images in file order)
 * @throws {DatasetError} for a malformed entry
 */
export function parseCoco(json: unknown, file: string, imageDir: string): Dataset {
  const fail = (problem: string): never => {
    throw new DatasetError(file, problem);
  };
  if (!isObj(json)) fail("not a COCO instances file (the top level is not an object)");
  const top = json as Json;
  for (const k of ["images", "annotations", "categories"]) {
    if (!Array.isArray(top[k])) fail(`not a COCO instances file: "${k}" is not a list`);
  }
  const cats = new Map<number, string>();
  (top.categories as unknown[]).forEach((c, i) => {
    const where = `categories[${i}]`;
    if (!isObj(c)) fail(`${where}: not an object`);
    const cc = c as Json;
    if (!Number.isInteger(cc.id)) fail(`${where}: "id" must be an integer, got ${show(cc.id)}`);
    if (typeof cc.name !== "string" || cc.name.trim() === "") {
      fail(`${where} (id ${cc.id}): "name" must be a non-empty string`);
    }
    if (cats.has(cc.id as number)) fail(`${where}: duplicate category id ${cc.id}`);
    cats.set(cc.id as number, (cc.name as string).trim());
  });
  const images: DatasetImage[] = [];
  const byId = new Map<string, DatasetImage>();
  (top.images as unknown[]).forEach((im, i) => {
    const where = `images[${i}]`;
    if (!isObj(im)) fail(`${where}: not an object`);
    const m = im as Json;
    if (!(Number.isInteger(m.id) || (typeof m.id === "string" && m.id !== ""))) {
      fail(`${where}: "id" must be an integer or a string, got ${show(m.id)}`);
    }
    const w = `${where} (id ${m.id})`;
    if (typeof m.file_name !== "string" || m.file_name === "") {
      fail(`${w}: "file_name" must be a non-empty string`);
    }
    if (!isPosInt(m.width) || !isPosInt(m.height)) {
      fail(
        `${w}: "width" and "height" must be positive integers, got ${show(m.width)}, ${
          show(m.height)
        }`,
      );
    }
    const key = String(m.id);
    if (byId.has(key)) fail(`${where}: duplicate image id ${key}`);
    const img: DatasetImage = {
      key,
      file: joinPath(imageDir, m.file_name as string),
      width: m.width as number,
      height: m.height as number,
      objects: [],
    };
    byId.set(key, img);
    images.push(img);
  });
  (top.annotations as unknown[]).forEach((a, i) => {
    if (!isObj(a)) fail(`annotations[${i}]: not an object`);
    const an = a as Json;
    const where = `annotations[${i}]${an.id !== undefined ? ` (id ${show(an.id)})` : ""}`;
    const img = byId.get(String(an.image_id));
    if (an.image_id === undefined || !img) {
      fail(`${where}: image_id ${show(an.image_id)} is not in "images"`);
    }
    const category = cats.get(an.category_id as number);
    if (category === undefined) {
      fail(`${where}: category_id ${show(an.category_id)} is not in "categories"`);
    }
    const bb = an.bbox;
    if (!Array.isArray(bb) || bb.length !== 4 || !bb.every(isNum) || bb[2] < 0 || bb[3] < 0) {
      fail(
        `${where}: "bbox" must be [x, y, width, height] with width, height >= 0, got ${show(bb)}`,
      );
    }
    const [x, y, w, h] = bb as number[];
    const box: FloatBox = [x, y, x + w, y + h];
    const region = cocoRegion(an.segmentation, img as DatasetImage, (p) => fail(`${where}: ${p}`));
    (img as DatasetImage).objects.push({
      category: category as string,
      box,
      region,
      difficult: false,
      source: file,
      entry: where,
    });
  });
  const categories = [...cats.entries()].sort((p, q) => p[0] - q[0]).map((e) => e[1]);
  return { format: "coco", path: file, annotationFile: file, categories, images };
}

function cocoRegion(
  seg: unknown,
  img: DatasetImage,
  fail: (problem: string) => never,
): ObjectRegion {
  if (seg === undefined || seg === null) return { kind: "box" };
  if (Array.isArray(seg)) {
    if (seg.length === 0) return { kind: "box" };
    seg.forEach((p, k) => {
      if (!Array.isArray(p) || p.length < 6 || p.length % 2 !== 0 || !p.every(isNum)) {
        fail(
          `segmentation polygon ${k} must be a list of at least 3 x, y pairs, got ${show(p)}`,
        );
      }
    });
    return { kind: "polygons", polygons: seg as number[][] };
  }
  if (isObj(seg)) {
    const { counts, size } = seg;
    if (
      !Array.isArray(size) || size.length !== 2 || !isPosInt(size[0]) || !isPosInt(size[1])
    ) fail(`segmentation RLE "size" must be [height, width], got ${show(size)}`);
    const [h, w] = size as [number, number];
    if (h !== img.height || w !== img.width) {
      fail(
        `segmentation RLE size ${h}×${w} (height×width) differs from the image's ${img.height}×${img.width}`,
      );
    }
    if (typeof counts === "string") return { kind: "rle", counts, size: [h, w] };
    if (Array.isArray(counts) && counts.every((c) => Number.isInteger(c) && c >= 0)) {
      const total = (counts as number[]).reduce((s, c) => s + c, 0);
      if (total !== h * w) {
        fail(`segmentation RLE counts add up to ${total}, the image has ${h}×${w} = ${h * w}`);
      }
      return { kind: "rle", counts: counts as number[], size: [h, w] };
    }
    fail(`segmentation RLE "counts" must be a list of non-negative integers or a string`);
  }
  return fail(`"segmentation" must be a list of polygons or an RLE object, got ${show(seg)}`);
}

/**
 * Joins a folder and a relative path, normalised (`a/../b` is `b`); absolute paths are
 * kept as they are.
 *
 * @param dir the folder
 * @param rel a path relative to it, or absolute
 * @returns the joined path
 */
export function joinPath(dir: string, rel: string): string {
  return isAbsolute(rel) ? rel : join(dir, rel);
}
