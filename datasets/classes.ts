/**
 * Class mapping between a dataset's categories and the model's classes.
 *
 * Rules, in order, for a dataset category:
 * 1. a manifest `class` given as an index is that model class (it must be in range);
 * 2. an entry of the mapping file (`--class-map`), if it has one: a JSON object
 *    `{"<dataset category>": <model class>}` where a model class is a label name, an index,
 *    or a list of them (`null` or `[]`: skip the category);
 * 3. otherwise the model labels with the same name, compared case-insensitively and
 *    ignoring everything but letters and digits (`"Dining table"` = `"diningtable"`).
 *
 * A category with several model classes (e.g. VOC `dog` → the ImageNet dog breeds) is
 * explained, per image, as the one of them the model scores highest on that image.
 * Categories with no model class are "unknown": their (image, class) pairs are counted
 * and skipped.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";

/** A mapping file as read: dataset category → model classes (names or indices). */
export type ClassMapFile = Record<string, (string | number)[]>;

/** Model classes for dataset categories. */
export interface ClassMapping {
  /**
   * The model classes a category maps to (never empty), or undefined when the model does
   * not know it.
   */
  candidates(category: string): readonly number[] | undefined;
  /** Number of model classes. */
  readonly numClasses: number;
}

/**
 * The form class names are compared in: lower case, letters and digits only.
 *
 * @param name a class name
 * @returns the comparison key
 */
export function classKey(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}

/**
 * Reads a mapping file's JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseClassMap } from "./classes.ts";
 * const m = parseClassMap({ dog: ["golden retriever", 207], tvmonitor: "television" }, "map.json");
 * assert.deepEqual(m.tvmonitor, ["television"]);
 * ```
 *
 * @param json the parsed JSON
 * @param file the mapping file (for messages)
 * @returns category → model classes
 * @throws {DatasetError} for anything but an object of names, indices or lists of them
 */
export function parseClassMap(json: unknown, file: string): ClassMapFile {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new DatasetError(
      file,
      'a class map must be a JSON object {"dataset class": "model class" or [...]}',
    );
  }
  const out: ClassMapFile = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    const list = v === null ? [] : Array.isArray(v) ? v : [v];
    for (const x of list) {
      const ok = (typeof x === "string" && x.trim() !== "") ||
        (typeof x === "number" && Number.isInteger(x) && x >= 0);
      if (!ok) {
        throw new DatasetError(
          file,
          `"${k}": model classes must be label names or non-negative integer indices, got ${
            JSON.stringify(x)
          }`,
        );
      }
    }
    out[k] = list as (string | number)[];
  }
  return out;
}

/**
 * Builds the mapping for a dataset and a model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildClassMapping } from "./classes.ts";
 * const m = buildClassMapping({ labels: ["cat", "Dining Table"], numClasses: 2 });
 * assert.deepEqual(m.candidates("diningtable"), [1]); // names match loosely
 * assert.equal(m.candidates("dog"), undefined); // not a class of the model
 * ```
 *
 * @param opts the model's labels (if any) and class count, and the mapping file
 * @returns the mapping
 * @throws {DatasetError} naming the mapping file when an entry names no model class
 */
export function buildClassMapping(opts: {
  labels?: readonly string[];
  numClasses: number;
  map?: ClassMapFile;
  mapFile?: string;
}): ClassMapping {
  const { labels, numClasses } = opts;
  const byKey = new Map<string, number[]>();
  labels?.forEach((l, i) => {
    if (i >= numClasses) return;
    const k = classKey(l);
    const list = byKey.get(k);
    if (list) list.push(i);
    else byKey.set(k, [i]);
  });
  const file = opts.mapFile ?? "class map";
  const explicit = new Map<string, number[]>();
  for (const [cat, targets] of Object.entries(opts.map ?? {})) {
    const out: number[] = [];
    for (const t of targets) {
      if (typeof t === "number") {
        if (t >= numClasses) {
          throw new DatasetError(
            file,
            `"${cat}": class index ${t} is out of range (the model has ${numClasses} classes)`,
          );
        }
        out.push(t);
        continue;
      }
      if (!labels) {
        throw new DatasetError(
          file,
          `"${cat}": '${t}' is a class name, but the model has no labels (give --labels)`,
        );
      }
      const found = byKey.get(classKey(t));
      if (!found) throw new DatasetError(file, `"${cat}": the model has no class '${t}'`);
      out.push(...found);
    }
    explicit.set(classKey(cat), [...new Set(out)]);
  }
  return {
    numClasses,
    candidates(category: string): readonly number[] | undefined {
      const k = classKey(category);
      const list = explicit.has(k) ? explicit.get(k) : byKey.get(k);
      return list && list.length ? list : undefined;
    },
  };
}
