/**
 * The simple manifest: one entry per object, as a JSON array or a CSV file.
 *
 * JSON: `[{"image": "a.jpg", "class": "dog", "box": [x0, y0, x1, y1]},
 * {"image": "b.png", "class": 3, "mask": "b_mask.png"}, ...]`.
 * CSV: a header line naming the columns `image`, `class`, and `mask` and / or `x0`, `y0`,
 * `x1`, `y1` (any order, RFC 4180 quoting), then one object per line; a `class` of digits
 * only is a model class index, anything else a class name.
 *
 * Paths are relative to the manifest's folder. Boxes are in the image's own pixels,
 * continuous coordinates, `x1` / `y1` exclusive (a one-pixel box at 5, 5 is
 * `[5, 5, 6, 6]`). A mask is a PNG (or JPEG) of the image's size whose nonzero pixels
 * (any colour channel above 0 and alpha above 0) are the object. Entries for the same image
 * and class are united; entries for the same image with different classes make a
 * multi-label image.
 *
 * @module
 */
import { joinPath } from "./coco.ts";
import { DatasetError } from "./errors.ts";
import type { FloatBox } from "./raster.ts";
import type { Dataset, DatasetImage, ObjectRegion } from "./types.ts";

/** One manifest entry after validation. */
export interface ManifestEntry {
  /** Image path as written. */
  image: string;
  /** Class name, or model class index. */
  class: string | number;
  /** Mask path as written. */
  mask?: string;
  /** Box in image pixels. */
  box?: FloatBox;
  /** `entry N` (JSON, 1-based) or `line N` (CSV). */
  entry: string;
}

type Fail = (problem: string) => never;

function checkEntry(
  e: { image?: unknown; class?: unknown; mask?: unknown; box?: unknown },
  entry: string,
  fail: Fail,
): ManifestEntry {
  const f = (p: string): never => fail(`${entry}: ${p}`);
  if (typeof e.image !== "string" || e.image.trim() === "") f(`"image" must be a file path`);
  let cls: string | number;
  if (typeof e.class === "number") {
    if (!Number.isInteger(e.class) || e.class < 0) {
      f(`"class" must be a class name or a non-negative integer index, got ${e.class}`);
    }
    cls = e.class;
  } else if (typeof e.class === "string" && e.class.trim() !== "") {
    const t = e.class.trim();
    cls = /^\d+$/.test(t) ? Number(t) : t;
  } else return f(`"class" must be a class name or index`);
  const out: ManifestEntry = { image: (e.image as string).trim(), class: cls, entry };
  if (e.mask !== undefined && e.mask !== null && e.mask !== "") {
    if (typeof e.mask !== "string") f(`"mask" must be a file path`);
    out.mask = (e.mask as string).trim();
  }
  if (e.box !== undefined && e.box !== null) {
    const b = e.box;
    if (
      !Array.isArray(b) || b.length !== 4 ||
      !b.every((v) => typeof v === "number" && Number.isFinite(v))
    ) f(`"box" must be [x0, y0, x1, y1] (4 numbers), got ${JSON.stringify(b)}`);
    const [x0, y0, x1, y1] = b as number[];
    if (!(x1 > x0 && y1 > y0)) {
      f(`"box" needs x0 < x1 and y0 < y1, got [${(b as number[]).join(", ")}]`);
    }
    out.box = [x0, y0, x1, y1];
  }
  if (out.mask === undefined && out.box === undefined) f(`needs a "mask" or a "box"`);
  return out;
}

/**
 * Reads a JSON manifest (an array of entries).
 *
 * @param json the parsed JSON
 * @param file the manifest (for messages)
 * @returns the validated entries
 * @throws {DatasetError} naming the entry and the problem
 */
export function parseManifestJson(json: unknown, file: string): ManifestEntry[] {
  const fail: Fail = (p) => {
    throw new DatasetError(file, p);
  };
  if (!Array.isArray(json)) fail("a JSON manifest must be a list of entries");
  return (json as unknown[]).map((e, i) => {
    if (typeof e !== "object" || e === null || Array.isArray(e)) {
      return fail(`entry ${i + 1}: not an object`);
    }
    return checkEntry(e as Record<string, unknown>, `entry ${i + 1}`, fail);
  });
}

/**
 * Splits CSV text into rows of fields (RFC 4180: quoted fields may hold commas, doubled
 * quotes and line breaks), with the 1-based line each row starts on.
 *
 * @param text the CSV
 * @returns rows (blank lines dropped)
 * @throws {RangeError} for an unterminated quoted field
 */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let cur = "";
  let line = 1, start = 1;
  let i = 0;
  let quotedStart = 0;
  const endRow = (): void => {
    fields.push(cur);
    if (fields.length > 1 || fields[0].trim() !== "") rows.push({ line: start, fields });
    fields = [];
    cur = "";
  };
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"' && cur.trim() === "") {
      cur = "";
      quotedStart = line;
      i++;
      for (;;) {
        if (i >= text.length) {
          throw new RangeError(`line ${quotedStart}: unterminated quoted field`);
        }
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            cur += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (text[i] === "\n") line++;
        cur += text[i++];
      }
      continue;
    }
    if (ch === ",") {
      fields.push(cur);
      cur = "";
    } else if (ch === "\n") {
      endRow();
      line++;
      start = line;
    } else if (ch !== "\r") cur += ch;
    i++;
  }
  if (cur !== "" || fields.length) endRow();
  return rows;
}

/**
 * Reads a CSV manifest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseManifestCsv } from "./manifest.ts";
 * const e = parseManifestCsv("image,class,x0,y0,x1,y1\na.png,dog,0,0,4,4\n", "m.csv");
 * assert.deepEqual(e[0].box, [0, 0, 4, 4]);
 * ```
 *
 * @param text the CSV
 * @param file the manifest (for messages)
 * @returns the validated entries
 * @throws {DatasetError} naming the line and the problem
 */
export function parseManifestCsv(text: string, file: string): ManifestEntry[] {
  const fail: Fail = (p) => {
    throw new DatasetError(file, p);
  };
  let rows;
  try {
    rows = parseCsv(text.replace(/^\uFEFF/, ""));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (rows.length === 0) fail("empty manifest");
  const head = rows[0].fields.map((h) => h.trim().toLowerCase());
  const col = (name: string): number => head.indexOf(name);
  for (const need of ["image", "class"]) {
    if (col(need) < 0) fail(`line ${rows[0].line}: the header has no '${need}' column`);
  }
  const boxCols = ["x0", "y0", "x1", "y1"].map(col);
  const hasBox = boxCols.every((c) => c >= 0);
  if (col("mask") < 0 && !hasBox) {
    fail(`line ${rows[0].line}: the header needs a 'mask' column or x0, y0, x1, y1 columns`);
  }
  return rows.slice(1).map(({ line, fields }) => {
    const get = (c: number): string => (c >= 0 ? (fields[c] ?? "").trim() : "");
    if (fields.length !== head.length) {
      fail(`line ${line}: ${fields.length} fields, the header has ${head.length}`);
    }
    const raw = boxCols.map(get);
    let box: number[] | undefined;
    if (hasBox && raw.some((s) => s !== "")) {
      box = raw.map(Number);
      if (raw.some((s) => s === "") || box.some((v) => !Number.isFinite(v))) {
        fail(`line ${line}: x0, y0, x1, y1 must all be numbers, got '${raw.join("', '")}'`);
      }
    }
    return checkEntry(
      { image: get(col("image")), class: get(col("class")), mask: get(col("mask")), box },
      `line ${line}`,
      fail,
    );
  });
}

/**
 * Groups manifest entries into a dataset: one image per distinct path (first-appearance
 * order), one object per entry.
 *
 * @param entries validated entries
 * @param file the manifest (paths are relative to its folder)
 * @returns the dataset
 */
export function manifestDataset(entries: readonly ManifestEntry[], file: string): Dataset {
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  const images = new Map<string, DatasetImage>();
  const categories: string[] = [];
  for (const e of entries) {
    const path = joinPath(dir, e.image);
    let img = images.get(path);
    if (!img) {
      img = { key: e.image, file: path, objects: [] };
      images.set(path, img);
    }
    const category = String(e.class);
    if (!categories.includes(category)) categories.push(category);
    const region: ObjectRegion = e.mask !== undefined
      ? { kind: "png", file: joinPath(dir, e.mask) }
      : { kind: "box" };
    img.objects.push({
      category,
      classIndex: typeof e.class === "number" ? e.class : undefined,
      box: e.box,
      region,
      difficult: false,
      source: file,
      entry: e.entry,
    });
  }
  return {
    format: "manifest",
    path: file,
    annotationFile: file,
    categories,
    images: [...images.values()],
  };
}
