/**
 * Pascal VOC folders: `Annotations/<id>.xml` (objects with `name`, `bndbox`, `difficult`,
 * `truncated`), `JPEGImages/`, optional `SegmentationObject/<id>.png` instance masks, and
 * image-set lists `ImageSets/Main/<split>.txt`.
 *
 * Boxes: VOC's `xmin..xmax` are 1-based inclusive pixel indices, so the continuous box is
 * `[xmin - 1, ymin - 1, xmax, ymax]`: exactly the pixels TorchRay's `voc_as_mask` fills.
 * SegmentationObject PNGs hold, per pixel, the 1-based position of the object in the XML
 * (0 background, 255 the "void" outline, which belongs to no object).
 *
 * @module
 */
import { joinPath } from "./coco.ts";
import { DatasetError } from "./errors.ts";
import { childText, parseXml, XmlError } from "./xml.ts";
import type { Dataset, DatasetImage, DatasetObject } from "./types.ts";

/** The 20 Pascal VOC classes in their standard order (TorchRay's class indices). */
export const VOC_CLASSES: readonly string[] = Object.freeze([
  "aeroplane",
  "bicycle",
  "bird",
  "boat",
  "bottle",
  "bus",
  "car",
  "cat",
  "chair",
  "cow",
  "diningtable",
  "dog",
  "horse",
  "motorbike",
  "person",
  "pottedplant",
  "sheep",
  "sofa",
  "train",
  "tvmonitor",
]);

/** One parsed VOC annotation file. */
export interface VocAnnotation {
  /** `<filename>`, if present. */
  filename?: string;
  /** `<size><width>`, if present. */
  width?: number;
  /** `<size><height>`, if present. */
  height?: number;
  /** The objects, in file order. */
  objects: {
    name: string;
    /** Continuous box `[xmin - 1, ymin - 1, xmax, ymax]`. */
    box: [number, number, number, number];
    difficult: boolean;
    truncated: boolean;
  }[];
}

/**
 * Parses one VOC annotation XML.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseVocXml } from "./voc.ts";
 * const a = parseVocXml(`<annotation><object><name>dog</name><difficult>1</difficult>
 *   <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>
 *   </object></annotation>`, "000001.xml");
 * assert.deepEqual(a.objects[0], {
 *   name: "dog",
 *   box: [0, 1, 10, 20], // 1-based inclusive -> [x0, y0, x1, y1)
 *   difficult: true,
 *   truncated: false,
 * });
 * ```
 *
 * @param text the XML
 * @param file its path (for messages)
 * @returns the annotation
 * @throws {DatasetError} naming the file, the object and what is wrong
 */
export function parseVocXml(text: string, file: string): VocAnnotation {
  const fail = (problem: string): never => {
    throw new DatasetError(file, problem);
  };
  let root;
  try {
    root = parseXml(text);
  } catch (e) {
    if (e instanceof XmlError) fail(`malformed XML: ${e.message}`);
    throw e;
  }
  if (root.name !== "annotation") fail(`the root element is <${root.name}>, not <annotation>`);
  const out: VocAnnotation = { objects: [] };
  const fn = childText(root, "filename");
  if (fn) out.filename = fn;
  const size = root.children.find((c) => c.name === "size");
  if (size) {
    const w = Number(childText(size, "width")), h = Number(childText(size, "height"));
    if (!(Number.isInteger(w) && w > 0 && Number.isInteger(h) && h > 0)) {
      fail(`<size> (line ${size.line}) needs positive integer <width> and <height>`);
    }
    out.width = w;
    out.height = h;
  }
  let k = 0;
  for (const obj of root.children) {
    if (obj.name !== "object") continue;
    k++;
    const name = childText(obj, "name");
    const where = `object ${k} (line ${obj.line})`;
    if (!name) fail(`${where}: no <name>`);
    const flag = (tag: string): boolean => {
      const v = childText(obj, tag);
      if (v === undefined || v === "") return false;
      if (v !== "0" && v !== "1") fail(`${where} '${name}': <${tag}> must be 0 or 1, got '${v}'`);
      return v === "1";
    };
    const bb = obj.children.find((c) => c.name === "bndbox");
    if (!bb) fail(`${where} '${name}': no <bndbox>`);
    const v: number[] = [];
    for (const t of ["xmin", "ymin", "xmax", "ymax"]) {
      const s = childText(bb!, t);
      const n = Number(s);
      if (s === undefined || s === "" || !Number.isFinite(n)) {
        fail(
          `${where} '${name}': <bndbox> needs a number in <${t}>, got ${
            s === undefined ? "none" : `'${s}'`
          }`,
        );
      }
      v.push(n);
    }
    const [xmin, ymin, xmax, ymax] = v;
    if (xmax < xmin || ymax < ymin) {
      fail(`${where} '${name}': <bndbox> has xmax < xmin or ymax < ymin (${v.join(", ")})`);
    }
    out.objects.push({
      name: name!,
      box: [xmin - 1, ymin - 1, xmax, ymax],
      difficult: flag("difficult"),
      truncated: flag("truncated"),
    });
  }
  return out;
}

/**
 * The image ids of a VOC folder: the lines of `ImageSets/<split>.txt` (a split without a
 * `/` means `ImageSets/Main/<split>.txt`; the first word of each line), or, without a
 * split, `ImageSets/Main/test.txt` when it exists, else every `Annotations/*.xml` sorted.
 *
 * @param root the VOC folder (holding `Annotations/`)
 * @param split image-set name, e.g. `test`, `trainval`, `Segmentation/val`
 * @returns the ids and the list file used (if any)
 * @throws {DatasetError} for a missing list
 */
export function vocImageIds(root: string, split?: string): { ids: string[]; list?: string } {
  const listOf = (s: string): string =>
    joinPath(root, `ImageSets/${s.includes("/") ? s : `Main/${s}`}.txt`);
  let list = split === undefined ? listOf("test") : listOf(split);
  let text: string | undefined;
  try {
    text = Deno.readTextFileSync(list);
  } catch (e) {
    if (split !== undefined) {
      throw new DatasetError(
        list,
        e instanceof Deno.errors.NotFound ? "no such image-set list" : (e as Error).message,
      );
    }
  }
  if (text !== undefined) {
    const ids = text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]).filter((s) => s);
    return { ids, list };
  }
  list = joinPath(root, "Annotations");
  const ids: string[] = [];
  for (const e of Deno.readDirSync(list)) {
    if (e.isFile && e.name.toLowerCase().endsWith(".xml")) ids.push(e.name.slice(0, -4));
  }
  ids.sort();
  return { ids };
}

/**
 * Reads a Pascal VOC folder: every listed image's annotation XML (all up front: they are
 * small), objects with their boxes and difficult flags, and the SegmentationObject PNG as
 * an optional instance mask.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadVoc } from "./voc.ts";
 * // A VOC folder with one annotated image in the "test" image set.
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/Annotations`);
 * await Deno.mkdir(`${root}/ImageSets/Main`, { recursive: true });
 * await Deno.writeTextFile(`${root}/ImageSets/Main/test.txt`, "000001\n");
 * await Deno.writeTextFile(
 *   `${root}/Annotations/000001.xml`,
 *   `<annotation><filename>000001.jpg</filename><size><width>20</width><height>30</height>
 *   </size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax>
 *   <ymax>20</ymax></bndbox></object></annotation>`,
 * );
 * const ds = loadVoc(root, "test");
 * assert.equal(ds.images.length, 1); // VOC2007's test set: 4952
 * assert.deepEqual(ds.images[0].objects[0].box, [0, 1, 10, 20]);
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @param root the VOC folder (holding `Annotations/` and `JPEGImages/`)
 * @param split image-set name (see {@linkcode vocImageIds})
 * @returns the dataset; categories: the 20 VOC classes, then any others by first appearance;
 *   images whose annotation is malformed are left out and listed in `skipped`
 * @throws {DatasetError} for a missing annotation file
 */
export function loadVoc(root: string, split?: string): Dataset {
  const { ids } = vocImageIds(root, split);
  const categories = [...VOC_CLASSES];
  const images: DatasetImage[] = [];
  const skipped: { file: string; problem: string }[] = [];
  for (const id of ids) {
    const xml = joinPath(root, `Annotations/${id}.xml`);
    let text: string;
    try {
      text = Deno.readTextFileSync(xml);
    } catch (e) {
      throw new DatasetError(
        xml,
        e instanceof Deno.errors.NotFound
          ? "no such annotation file (listed in the image set)"
          : (e as Error).message,
      );
    }
    let a: ReturnType<typeof parseVocXml>;
    try {
      a = parseVocXml(text, xml);
    } catch (e) {
      // one malformed annotation leaves out its image, not the whole dataset
      if (!(e instanceof DatasetError)) throw e;
      skipped.push({ file: e.file, problem: `${e.problem}; image skipped` });
      continue;
    }
    const seg = joinPath(root, `SegmentationObject/${id}.png`);
    const objects: DatasetObject[] = a.objects.map((o, i) => {
      if (!categories.includes(o.name)) categories.push(o.name);
      return {
        category: o.name,
        box: o.box,
        region: { kind: "png", file: seg, value: i + 1, optional: true },
        difficult: o.difficult,
        source: xml,
        entry: `object ${i + 1}`,
      };
    });
    images.push({
      key: id,
      file: joinPath(root, `JPEGImages/${a.filename ?? `${id}.jpg`}`),
      width: a.width,
      height: a.height,
      objects,
    });
  }
  return { format: "voc", path: root, annotationFile: root, categories, images, skipped };
}
