/**
 * `loadDataset(path)`: detects the format and reads the annotations.
 *
 * - a folder with `Annotations/` is Pascal VOC;
 * - a `.csv` file is a manifest;
 * - a `.json` file holding a list is a manifest, one holding an object with `images`,
 *   `annotations` and `categories` is a COCO instances file.
 *
 * COCO images are looked up in `imageDir` when given, else in the first existing folder of:
 * `<json folder>/../<name>` and `<json folder>/<name>` (where `<name>` is the file's name
 * without `.json` and without an `instances_` prefix, e.g. `val2014`), `<json folder>/images`,
 * and the JSON's own folder.
 *
 * @module
 */
import { relative, resolve } from "node:path";
import { joinPath, parseCoco } from "./coco.ts";
import { DatasetError } from "./errors.ts";
import { manifestDataset, parseManifestCsv, parseManifestJson } from "./manifest.ts";
import type { Dataset, DatasetFormat } from "./types.ts";
import { loadVoc } from "./voc.ts";

/** Options of {@linkcode loadDataset}. */
export interface LoadDatasetOptions {
  /** COCO: the image folder (default: see the module documentation). */
  imageDir?: string;
  /** VOC: the image set, e.g. `test` (default `test` when listed, else all annotations). */
  split?: string;
  /**
   * Allow image and mask paths outside the dataset's folder (absolute paths, `../`). By
   * default such an image is left out (listed in `skipped`), so an annotation file cannot
   * make the evaluation read arbitrary files.
   */
  allowOutside?: boolean;
}

/** Whether `path` lies inside folder `dir` (lexically, after resolving both). */
export function isInsideFolder(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel !== "" && rel !== ".." && !rel.startsWith("../") && !rel.startsWith("/");
}

/** Leaves out (into `skipped`) the images whose image or mask file lies outside `root`. */
function keepInside(ds: Dataset, root: string, allow: boolean | undefined): Dataset {
  if (allow) return ds;
  const skipped = [...(ds.skipped ?? [])];
  const images = ds.images.filter((img) => {
    const files = [img.file];
    for (const o of img.objects) if (o.region.kind === "png") files.push(o.region.file);
    const out = files.find((f) => !isInsideFolder(f, root));
    if (out === undefined) return true;
    const source = img.objects[0]?.source ?? ds.annotationFile;
    skipped.push({
      file: source,
      problem: `image '${img.key}': the path ${out} leads outside the dataset folder ${root} ` +
        `(absolute paths and ../ are refused unless allowed); image skipped`,
    });
    return false;
  });
  return { ...ds, images, skipped };
}

function statOf(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new DatasetError(
      path,
      e instanceof Deno.errors.NotFound ? "no such file" : `cannot read (${(e as Error).name})`,
    );
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DatasetError(file, `invalid JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

const dirOf = (
  p: string,
): string => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) || "/" : ".");

/**
 * The COCO image folder for an annotation file (see the module documentation).
 *
 * @param jsonFile the instances file
 * @returns the folder
 */
export function cocoImageDir(jsonFile: string): string {
  const dir = dirOf(jsonFile);
  const base = jsonFile.slice(jsonFile.lastIndexOf("/") + 1).replace(/\.json$/i, "");
  const name = base.replace(/^instances_/, "");
  const candidates = [joinPath(dir, `../${name}`), joinPath(dir, name), joinPath(dir, "images")];
  return candidates.find((c) => statOf(c)?.isDirectory) ?? dir;
}

/**
 * Detects the format of a dataset path without reading it all (JSON files are parsed).
 *
 * @param path file or folder
 * @returns the format
 * @throws {DatasetError} when the path is missing or not a recognised dataset
 */
export function detectDatasetFormat(path: string): DatasetFormat {
  return detect(path).format;
}

function detect(path: string): { format: DatasetFormat; json?: unknown } {
  const st = statOf(path);
  if (!st) throw new DatasetError(path, "no such file or folder");
  if (st.isDirectory) {
    if (statOf(joinPath(path, "Annotations"))?.isDirectory) return { format: "voc" };
    throw new DatasetError(
      path,
      "not a dataset: a folder must be Pascal VOC with Annotations/ (e.g. VOCdevkit/VOC2007); COCO and manifests are files",
    );
  }
  if (/\.csv$/i.test(path)) return { format: "manifest" };
  if (/\.json$/i.test(path)) {
    const json = parseJson(readText(path), path);
    if (Array.isArray(json)) return { format: "manifest", json };
    if (json && typeof json === "object" && ("images" in json || "annotations" in json)) {
      return { format: "coco", json };
    }
    throw new DatasetError(
      path,
      "not a dataset: a JSON file must be a COCO instances file (images, annotations, categories) or a manifest list",
    );
  }
  throw new DatasetError(
    path,
    "not a dataset: expected a COCO .json, a manifest .json / .csv, or a Pascal VOC folder",
  );
}

/**
 * Reads a dataset of any supported format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadDataset } from "./load.ts";
 * // The format comes from the path: a COCO instances .json, a manifest .json / .csv, or a
 * // Pascal VOC folder (loadDataset("VOCdevkit/VOC2007", { split: "test" })).
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/labels.csv`, "image,class,x0,y0,x1,y1\na.png,dog,0,0,4,4\n");
 * const mine = loadDataset(`${dir}/labels.csv`);
 * assert.equal(mine.format, "manifest");
 * assert.deepEqual(mine.images.map((i) => i.objects[0].category), ["dog"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path COCO instances JSON, manifest (.json list / .csv) or VOC folder
 * @param opts image folder (COCO), image set (VOC), whether paths may leave the folder
 * @returns the dataset (images left out, with why, in `skipped`)
 * @throws {DatasetError} for missing or malformed annotation files
 */
export function loadDataset(path: string, opts: LoadDatasetOptions = {}): Dataset {
  const { format, json } = detect(path);
  const allow = opts.allowOutside;
  if (format === "voc") return keepInside(loadVoc(path, opts.split), path, allow);
  const here = joinPath(path, "..");
  if (json === undefined) {
    return keepInside(manifestDataset(parseManifestCsv(readText(path), path), path), here, allow);
  }
  if (format === "manifest") {
    return keepInside(manifestDataset(parseManifestJson(json, path), path), here, allow);
  }
  if (opts.imageDir !== undefined && !statOf(opts.imageDir)?.isDirectory) {
    throw new DatasetError(opts.imageDir, "no such image folder");
  }
  const imageDir = opts.imageDir ?? cocoImageDir(path);
  return keepInside(parseCoco(json, path, imageDir), imageDir, allow);
}
