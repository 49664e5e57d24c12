/**
 * Tests of `datasets/` and `gradual eval --dataset`: tiny COCO, Pascal VOC and manifest
 * datasets built on the fly (malformed ones too), with masks, boxes, pairs and skip counts
 * checked against hand-computed values, and the aggregate numbers checked against
 * `evaluate()` run directly on the same samples.
 */
import * as tf from "@tensorflow/tfjs";
import "../plugins/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { decodeImageRgba8, encodePng, toModelInput } from "../io/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { formatError } from "../cli/_errors.ts";
import { evalCommand } from "../cli/eval.ts";
import { type EvalResult, type EvalSample, evaluate } from "../metrics/mod.ts";
import { CLASS_NAMES, generateScene } from "../models/scenes.ts";
import {
  buildClassMapping,
  type Dataset,
  DatasetError,
  datasetPairs,
  decodeRle,
  encodeRleString,
  evaluateDataset,
  fillPolygons,
  isDifficultPair,
  loadDataset,
  loadPairSamples,
  type PairSample,
  parseClassMap,
  parseManifestCsv,
  parseRleString,
  parseVocXml,
  parseXml,
  scaleOf,
  unionArea,
} from "../datasets/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { rawPng } from "./_png.ts";

await initBackend({ backend: "wasm", threads: 1 });
tf.enableProdMode();

const MODEL_PATH = "tests/fixtures/models/vgg_tiny/tfjs/model.json";
const model = await loadLayersModel(MODEL_PATH);
const SIZE = 64; // vgg_tiny input
const MAPPING = buildClassMapping({ labels: CLASS_NAMES, numClasses: 10 });
const INPUT = [SIZE, SIZE, 3] as const;

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

const count = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) s++;
  return s;
};

/** The mask of the pixels x in [x0, x1), y in [y0, y1) of a w × h grid. */
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
  return m;
}

function union(...ms: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(ms[0].length);
  for (const m of ms) m.forEach((v, i) => (out[i] |= v));
  return out;
}

/** Column-major COCO RLE counts of a row-major bitmap (independent of datasets/rle.ts). */
function toRle(bits: Uint8Array, w: number, h: number): number[] {
  const counts: number[] = [];
  let cur = 0, run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = bits[y * w + x] ? 1 : 0;
      if (v !== cur) {
        counts.push(run);
        run = 0;
        cur = v;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

/** A noisy RGB PNG of w × h. */
async function noisePng(w: number, h: number, seed = 1): Promise<Uint8Array> {
  const d = new Uint8Array(w * h * 4);
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    d[i] = i % 4 === 3 ? 255 : s >>> 24;
  }
  return await encodePng(w, h, d);
}

/** A gray mask PNG (255 = object). */
async function maskPng(bits: Uint8Array, w: number, h: number): Promise<Uint8Array> {
  const d = new Uint8Array(w * h * 4);
  bits.forEach((v, i) => d.set([v ? 255 : 0, v ? 255 : 0, v ? 255 : 0, 255], 4 * i));
  return await encodePng(w, h, d);
}

/** An 8-bit palette PNG (VOC SegmentationObject style) with the VOC colour map. */
function palettePng(index: Uint8Array, w: number, h: number): Promise<Uint8Array> {
  const plte = new Uint8Array(768);
  for (let i = 0; i < 256; i++) {
    let r = 0, g = 0, b = 0, c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    plte.set([r, g, b], 3 * i);
  }
  return rawPng(w, h, 3, 8, (x, y) => index[y * w + x], { plte });
}

async function samplesOf(ds: Dataset, opts: { regions?: "auto" | "masks" | "boxes" } = {}): Promise<
  PairSample[]
> {
  const { pairs } = datasetPairs(ds, MAPPING);
  const out: PairSample[] = [];
  for (const image of new Set(pairs.map((p) => p.image))) {
    try {
      const got = await loadPairSamples(image, pairs.filter((p) => p.image === image), {
        inputSize: INPUT,
        preprocess: "imagenet",
        format: ds.format,
        regions: opts.regions,
      });
      out.push(...got.samples);
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
    }
  }
  return out;
}

function throwsDataset(fn: () => unknown, ...parts: string[]): string {
  try {
    fn();
  } catch (e) {
    assert(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    const line = formatError(e);
    assert(!line.includes("\n"), "one line");
    for (const p of parts) assert(e.message.includes(p), `'${e.message}' should contain '${p}'`);
    return e.message;
  }
  throw new Error(`expected an error containing ${parts.join(", ")}`);
}

const strip = (r: EvalResult): unknown => r.rows.map((row) => ({ ...row, msPerImage: 0 }));

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await evalCommand([...args, "--threads", "1"]);
    return { code, out: out.join("\n"), err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const tmp = await Deno.makeTempDir({ prefix: "gradual_datasets_" });
const METHODS = { methods: ["grad-cam"], extrapolators: ["none"], steps: 8, sampleBatch: 3 };

// ---------------------------------------------------------------------------------------
// pure parts
// ---------------------------------------------------------------------------------------

Deno.test("rle: column-major counts, compressed strings, errors", () => {
  // 2 × 3 (h × w): column-major pixels (0,0) (0,1) | (1,0) (1,1) | (2,0) (2,1) as (x, y)
  assertEquals([...decodeRle([1, 2, 3], 2, 3)], [0, 1, 0, 1, 0, 0]);
  assertEquals(encodeRleString([1, 2, 3]), "123");
  assertEquals(encodeRleString([16]), "`0"); // 16 needs a second 5-bit group
  assertEquals(parseRleString("`0"), [16]);
  const counts = [5, 40, 3, 1, 700, 2, 0, 33];
  assertEquals(parseRleString(encodeRleString(counts)), counts); // negative differences too
  const bits = rect(37, 23, 4, 2, 30, 20);
  assertEquals(decodeRle(encodeRleString(toRle(bits, 37, 23)), 23, 37), bits);
  let msg = "";
  try {
    decodeRle([1, 2], 2, 3);
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, "RLE counts cover 3 pixels, the mask has 2×3 = 6");
});

Deno.test("raster: polygons (even-odd), boxes and bitmaps scaled like the image", () => {
  // A ring as COCO draws it: outer square 0..8, inner square 2..6, joined by a cut.
  const s = scaleOf(8, 8, 8, 8);
  const m = new Uint8Array(64);
  fillPolygons(m, [[0, 0, 8, 0, 8, 8, 0, 8, 0, 2, 2, 2, 2, 6, 6, 6, 6, 2, 0, 2]], s);
  assertEquals(count(m), 64 - 16); // the hole is empty under the even-odd rule
  // Non-uniform scale 200 × 100 -> 64 × 64: box [50, 25, 150, 75] -> pixels 16..47 both ways.
  const s2 = scaleOf(200, 100, 64, 64);
  const m2 = new Uint8Array(64 * 64);
  fillPolygons(m2, [[50, 25, 150, 25, 150, 75, 50, 75]], s2);
  assertEquals(m2, rect(64, 64, 16, 16, 48, 48));
  assertEquals(unionArea([[0, 0, 2, 2], [1, 1, 3, 3]]), 7);
  assertEquals(unionArea([[0, 0, 10, 10], [2, 2, 4, 4], [20, 0, 21, 1]]), 101);
  // Difficult rule: another class AND the class's boxes cover < 1/4 of the image.
  assert(isDifficultPair([[0, 0, 10, 10]], 1, 100, 100));
  assert(!isDifficultPair([[0, 0, 10, 10]], 0, 100, 100));
  assert(!isDifficultPair([[0, 0, 50, 50]], 2, 100, 100)); // exactly 1/4 is not < 1/4
  assert(isDifficultPair([[0, 0, 50, 49]], 2, 100, 100));
});

Deno.test("xml / voc: tiny reader and one-line errors naming the object", () => {
  const root = parseXml(
    `<?xml version="1.0"?><!-- c --><a x="1"><b>T &amp; <![CDATA[<x>]]></b><c/></a>`,
  );
  assertEquals(root.children.map((c) => c.name), ["b", "c"]);
  assertEquals(root.children[0].text, "T & <x>");
  throwsDataset(
    () => parseVocXml("<annotation>\n<object><name>dog</name></objet></annotation>", "a.xml"),
    "a.xml: malformed XML: line 2: expected </object>",
  );
  throwsDataset(
    () =>
      parseVocXml(
        "<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin>" +
          "<xmax>x</xmax><ymax>4</ymax></bndbox></object></annotation>",
        "b.xml",
      ),
    "b.xml: object 1 (line 1) 'dog': <bndbox> needs a number in <xmax>, got 'x'",
  );
  throwsDataset(
    () => parseVocXml("<annotation><object><name>dog</name></object></annotation>", "c.xml"),
    "object 1 (line 1) 'dog': no <bndbox>",
  );
  throwsDataset(
    () =>
      parseVocXml(
        "<annotation><object><name>cat</name><difficult>2</difficult><bndbox><xmin>1</xmin>" +
          "<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
        "d.xml",
      ),
    "<difficult> must be 0 or 1, got '2'",
  );
});

Deno.test("class mapping: by name, mapping file (many-to-one), unknown, errors", () => {
  const labels = ["Golden retriever", "tabby cat", "dining_table", "beagle"];
  const map = parseClassMap({ dog: ["golden retriever", 3], cat: "Tabby Cat", car: null }, "m");
  const m = buildClassMapping({ labels, numClasses: 4, map, mapFile: "m.json" });
  assertEquals(m.candidates("dog"), [0, 3]);
  assertEquals(m.candidates("cat"), [1]);
  assertEquals(m.candidates("DiningTable"), [2]); // by name: case, _ and spaces ignored
  assertEquals(m.candidates("car"), undefined); // mapped to nothing: skipped
  assertEquals(m.candidates("zebra"), undefined);
  throwsDataset(
    () => buildClassMapping({ labels, numClasses: 4, map: { dog: ["wolf"] }, mapFile: "m.json" }),
    `m.json: "dog": the model has no class 'wolf'`,
  );
  throwsDataset(
    () => buildClassMapping({ numClasses: 4, map: { dog: [7] }, mapFile: "m.json" }),
    "class index 7 is out of range (the model has 4 classes)",
  );
  throwsDataset(() => parseClassMap([1], "m.json"), "m.json: a class map must be a JSON object");
});

// ---------------------------------------------------------------------------------------
// COCO
// ---------------------------------------------------------------------------------------

const cocoDir = `${tmp}/coco`;
await Deno.mkdir(`${cocoDir}/annotations`, { recursive: true });
await Deno.mkdir(`${cocoDir}/val`, { recursive: true });
await Deno.writeFile(`${cocoDir}/val/a.png`, await noisePng(128, 64, 1));
await Deno.writeFile(`${cocoDir}/val/b.png`, await noisePng(64, 64, 2));
await Deno.writeFile(`${cocoDir}/val/c.png`, await noisePng(64, 64, 3));
const DISK_A = rect(128, 64, 64, 32, 72, 40); // RLE list
const DISK_B = rect(128, 64, 100, 0, 104, 4); // RLE string
function cocoJson(): Record<string, unknown[]> {
  return {
    images: [
      { id: 1, file_name: "a.png", width: 128, height: 64 },
      { id: 2, file_name: "b.png", width: 64, height: 64 },
      { id: 3, file_name: "c.png", width: 64, height: 64 },
      { id: 4, file_name: "missing.png", width: 64, height: 64 },
    ],
    annotations: [
      {
        id: 10,
        image_id: 1,
        category_id: 1,
        bbox: [8, 8, 32, 16],
        segmentation: [[8, 8, 40, 8, 40, 24, 8, 24]],
      },
      {
        id: 11,
        image_id: 1,
        category_id: 2,
        bbox: [64, 32, 8, 8],
        iscrowd: 1,
        segmentation: { counts: toRle(DISK_A, 128, 64), size: [64, 128] },
      },
      {
        id: 12,
        image_id: 1,
        category_id: 2,
        bbox: [100, 0, 4, 4],
        segmentation: { counts: encodeRleString(toRle(DISK_B, 128, 64)), size: [64, 128] },
      },
      { id: 13, image_id: 1, category_id: 3, bbox: [0, 0, 4, 4], segmentation: [] },
      { id: 20, image_id: 2, category_id: 1, bbox: [0, 0, 10, 10], segmentation: [] },
      { id: 30, image_id: 4, category_id: 1, bbox: [0, 0, 10, 10], segmentation: [] },
    ],
    categories: [{ id: 2, name: "disk" }, { id: 1, name: "square" }, { id: 3, name: "zebra" }],
  };
}
const COCO_FILE = `${cocoDir}/annotations/instances_val.json`;
await Deno.writeTextFile(COCO_FILE, JSON.stringify(cocoJson()));

Deno.test("coco: pairs, unknown classes, masks (polygon, RLE list / string, box) scaled", async () => {
  const ds = loadDataset(COCO_FILE); // images found in ../val
  assertEquals(ds.format, "coco");
  assertEquals(ds.categories, ["square", "disk", "zebra"]); // by category id
  const p = datasetPairs(ds, MAPPING);
  assertEquals(p.pairs.map((q) => [q.image.key, q.category, q.candidates]), [
    ["1", "square", [3]],
    ["1", "disk", [0]],
    ["2", "square", [3]],
    ["4", "square", [3]],
  ]);
  assertEquals(p.unknown, { zebra: 1 });
  assertEquals(p.imagesWithoutObjects, 1);
  const s = await samplesOf(ds);
  assertEquals(s.length, 3); // image 4 is missing
  // 128 × 64 -> 64 × 64: sx = 1/2, sy = 1. Square polygon x 8..40, y 8..24 -> x 4..20, y 8..24.
  assertEquals(s[0].sample.mask, rect(64, 64, 4, 8, 20, 24));
  assertEquals(s[0].sample.box, [4, 8, 20, 24]);
  assertEquals(s[0].sample.label, 3);
  // Disk: RLE x 64..72, y 32..40 -> x 32..36; RLE string x 100..104, y 0..4 -> x 50..52.
  assertEquals(s[1].sample.mask, union(rect(64, 64, 32, 32, 36, 40), rect(64, 64, 50, 0, 52, 4)));
  assertEquals(s[1].sample.box, [32, 0, 52, 40]); // the union box of both instances
  assertEquals(s[2].sample.mask, rect(64, 64, 0, 0, 10, 10)); // box only, scale 1
  // The image is resized like every other input (non-uniformly to 64 × 64).
  const a = await decodeImageRgba8(await Deno.readFile(`${cocoDir}/val/a.png`));
  assertEquals(s[0].sample.image, toModelInput(a, 64, 64, "imagenet"));
  // Difficult subset: image 1 has other classes and small objects; image 2 has one class.
  const d = datasetPairs(ds, MAPPING, { subset: "difficult" });
  assertEquals(d.pairs.map((q) => q.key), ["1\tsquare", "1\tdisk"]);
  assertEquals(d.notDifficult, 2);
});

Deno.test("coco: the numbers are evaluate()'s on the same samples; missing image counted", async () => {
  const ds = loadDataset(COCO_FILE);
  const events: string[] = [];
  const r = await evaluateDataset({
    model,
    dataset: ds,
    mapping: MAPPING,
    preprocess: "imagenet",
    ...METHODS,
    onPair: (e) => events.push(`${e.pair.key}:${e.status}`),
  });
  assertEquals(r.n, 3);
  assertEquals(r.summary.failed, [{ file: `${cocoDir}/val/missing.png`, problem: "no such file" }]);
  assertEquals(r.summary.unknown, { zebra: 1 });
  // Pairs are reported when their group is scored (3 per group here), failures at once.
  assertEquals(events, ["1\tsquare:ok", "1\tdisk:ok", "2\tsquare:ok", "4\tsquare:failed"]);
  const direct = await evaluate({
    model,
    samples: (await samplesOf(ds)).map((x) => x.sample),
    ...METHODS,
  });
  assertEquals(strip(r), strip(direct));
});

Deno.test("coco: malformed entries are one-line errors naming the entry", () => {
  const bad = (edit: (j: Record<string, unknown[]>) => void, ...parts: string[]): void => {
    const j = cocoJson();
    edit(j);
    const f = `${cocoDir}/annotations/bad.json`;
    Deno.writeTextFileSync(f, JSON.stringify(j));
    throwsDataset(() => loadDataset(f, { imageDir: `${cocoDir}/val` }), f, ...parts);
  };
  bad(
    (j) => ((j.annotations[4] as Record<string, unknown>).bbox = [0, 0, -1, 3]),
    'annotations[4] (id 20): "bbox" must be [x, y, width, height]',
  );
  bad(
    (j) => ((j.annotations[0] as Record<string, unknown>).category_id = 9),
    'annotations[0] (id 10): category_id 9 is not in "categories"',
  );
  bad(
    (j) => ((j.annotations[0] as Record<string, unknown>).image_id = 99),
    'annotations[0] (id 10): image_id 99 is not in "images"',
  );
  bad(
    (j) => ((j.annotations[0] as Record<string, unknown>).segmentation = [[1, 2, 3]]),
    "annotations[0] (id 10): segmentation polygon 0 must be a list of at least 3 x, y pairs",
  );
  bad(
    (j) => ((j.annotations[1] as Record<string, unknown>).segmentation = {
      counts: [1, 2],
      size: [64, 128],
    }),
    "annotations[1] (id 11): segmentation RLE counts add up to 3, the image has 64×128 = 8192",
  );
  bad(
    (j) => ((j.images[1] as Record<string, unknown>).width = 0),
    'images[1] (id 2): "width" and "height" must be positive integers',
  );
  bad((j) => delete (j as Record<string, unknown>).annotations, '"annotations" is not a list');
  Deno.writeTextFileSync(`${cocoDir}/annotations/broken.json`, "{ not json");
  throwsDataset(() => loadDataset(`${cocoDir}/annotations/broken.json`), "invalid JSON");
});

// ---------------------------------------------------------------------------------------
// Pascal VOC
// ---------------------------------------------------------------------------------------

const vocDir = `${tmp}/VOC`;
for (const d of ["Annotations", "JPEGImages", "SegmentationObject", "ImageSets/Main"]) {
  await Deno.mkdir(`${vocDir}/${d}`, { recursive: true });
}
const vocObject = (name: string, box: number[], difficult: number): string =>
  `<object><name>${name}</name><pose>Left</pose><truncated>0</truncated>` +
  `<difficult>${difficult}</difficult><bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin>` +
  `<xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;
await Deno.writeTextFile(
  `${vocDir}/Annotations/000001.xml`,
  `<annotation>\n<folder>VOC2007</folder><filename>000001.jpg</filename>` +
    `<size><width>100</width><height>50</height><depth>3</depth></size>\n` +
    vocObject("square", [11, 6, 30, 25], 0) + "\n" + vocObject("ring", [51, 1, 90, 50], 1) +
    "\n" + vocObject("square", [61, 31, 70, 40], 1) + "\n</annotation>\n",
);
await Deno.writeTextFile(
  `${vocDir}/Annotations/000002.xml`,
  `<annotation><filename>000002.jpg</filename><size><width>64</width><height>64</height>` +
    `</size>${vocObject("disk", [1, 1, 64, 64], 0)}</annotation>`,
);
await Deno.writeTextFile(`${vocDir}/ImageSets/Main/test.txt`, "000001\n000002\n");
await Deno.writeFile(`${vocDir}/JPEGImages/000001.jpg`, await noisePng(100, 50, 4));
await Deno.writeFile(`${vocDir}/JPEGImages/000002.jpg`, await noisePng(64, 64, 5));
{
  const idx = new Uint8Array(100 * 50);
  for (let y = 10; y < 15; y++) for (let x = 12; x < 20; x++) idx[y * 100 + x] = 1;
  for (let y = 30; y < 40; y++) for (let x = 60; x < 70; x++) idx[y * 100 + x] = 3;
  for (let x = 11; x < 21; x++) idx[9 * 100 + x] = 255; // void outline: no object
  await Deno.writeFile(`${vocDir}/SegmentationObject/000001.png`, await palettePng(idx, 100, 50));
}

Deno.test("voc: 1-based boxes, TorchRay's all-difficult rule, SegmentationObject masks", async () => {
  const ds = loadDataset(vocDir);
  assertEquals(ds.format, "voc");
  assertEquals(ds.images.map((i) => i.file), [
    `${vocDir}/JPEGImages/000001.jpg`,
    `${vocDir}/JPEGImages/000002.jpg`,
  ]);
  assertEquals(ds.images[0].objects[0].box, [10, 5, 30, 25]);
  const p = datasetPairs(ds, MAPPING);
  assertEquals(p.pairs.map((q) => q.key), ["000001\tsquare", "000002\tdisk"]);
  assertEquals(p.allDifficult, 1); // the ring: its only object is difficult
  // Boxes (the default for VOC, as TorchRay): 100 × 50 -> 64 × 64, sx = 0.64, sy = 1.28.
  // [10, 5, 30, 25] -> x 6.4..19.2, y 6.4..32 -> pixels x 6..18, y 6..31;
  // the difficult square [60, 30, 70, 40] counts too -> x 38..44, y 38..50.
  const [sq, disk] = await samplesOf(ds);
  assertEquals(sq.sample.mask, union(rect(64, 64, 6, 6, 19, 32), rect(64, 64, 38, 38, 45, 51)));
  assertEquals(count(sq.sample.mask), 13 * 26 + 7 * 13);
  assertEquals(sq.sample.box, [6, 6, 45, 51]);
  assertEquals(disk.sample.mask, new Uint8Array(64 * 64).fill(1));
  // --regions masks: palette indices 1 and 3 (255 = void is no object), nearest sampling:
  // index 1 at x 12..19, y 10..14 -> x 8..12, y 13..18; index 3 at x 60..69, y 30..39
  // -> x 38..44, y 38..50.
  const [sqm] = await samplesOf(ds, { regions: "masks" });
  assertEquals(
    sqm.sample.mask,
    union(rect(64, 64, 8, 13, 13, 19), rect(64, 64, 38, 38, 45, 51)),
  );
  assertEquals(sqm.sample.box, [6, 6, 45, 51]); // boxes still from the XML
  // Difficult subset: 000001's square has another class (the ring) and covers
  // 20·20 + 10·10 = 500 < 100·50 / 4 px; 000002 has one class.
  const d = datasetPairs(ds, MAPPING, { subset: "difficult" });
  assertEquals(d.pairs.map((q) => q.key), ["000001\tsquare"]);
  // A split that is not there, and a malformed annotation.
  throwsDataset(() => loadDataset(vocDir, { split: "val" }), "val.txt: no such image-set list");
});

Deno.test("voc: difficult subset end to end, and TorchRay's flags list", async () => {
  const r = await evaluateDataset({
    model,
    dataset: loadDataset(vocDir),
    mapping: MAPPING,
    preprocess: "imagenet",
    subset: "difficult",
    ...METHODS,
  });
  assertEquals([r.n, r.summary.notDifficult, r.summary.allDifficult], [1, 1, 1]);
  // With a flags list (columns = dataset categories: 20 VOC classes, then square, ring,
  // disk), 000002's disk is marked difficult and 000001 is not listed (so kept).
  const ds = loadDataset(vocDir);
  const flags = new Map([["000002", ds.categories.map((c) => c === "disk")]]);
  const d = datasetPairs(ds, MAPPING, { subset: "difficult", difficultFlags: flags });
  assertEquals(d.pairs.map((q) => q.key), ["000001\tsquare", "000002\tdisk"]);
});

// ---------------------------------------------------------------------------------------
// Manifest
// ---------------------------------------------------------------------------------------

const manDir = `${tmp}/manifest`;
await Deno.mkdir(`${manDir}/img`, { recursive: true });
const SCENES = Array.from({ length: 7 }, (_, i) => generateScene(4_100_000 + i, { size: SIZE }));
for (const [i, s] of SCENES.entries()) {
  const rgba = new Uint8Array(SIZE * SIZE * 4);
  for (let p = 0; p < SIZE * SIZE; p++) {
    for (let k = 0; k < 3; k++) rgba[4 * p + k] = Math.round(s.image[3 * p + k] * 255);
    rgba[4 * p + 3] = 255;
  }
  await Deno.writeFile(`${manDir}/img/s${i}.png`, await encodePng(SIZE, SIZE, rgba));
  await Deno.writeFile(`${manDir}/img/s${i}_mask.png`, await maskPng(s.mask, SIZE, SIZE));
}
const PERFECT = `${manDir}/perfect.json`;
await Deno.writeTextFile(
  PERFECT,
  JSON.stringify(
    SCENES.map((s, i) => ({
      image: `img/s${i}.png`,
      class: i % 2 ? s.className : s.label,
      mask: `img/s${i}_mask.png`,
    })),
  ),
);

Deno.test("manifest: perfect masks = the scenes' own masks; numbers = evaluate()'s", async () => {
  const ds = loadDataset(PERFECT);
  assertEquals(ds.format, "manifest");
  const s = await samplesOf(ds);
  assertEquals(s.length, SCENES.length);
  const reference: EvalSample[] = [];
  for (const [i, sc] of SCENES.entries()) {
    assertEquals(s[i].sample.mask, sc.mask);
    assertEquals(s[i].sample.box, sc.box);
    assertEquals(s[i].sample.label, sc.label);
    const img = await decodeImageRgba8(await Deno.readFile(`${manDir}/img/s${i}.png`));
    reference.push({
      image: toModelInput(img, SIZE, SIZE, "imagenet"),
      mask: sc.mask,
      box: sc.box,
      label: sc.label,
    });
  }
  const before = tf.memory().numTensors;
  const r = await evaluateDataset({
    model,
    dataset: ds,
    mapping: MAPPING,
    preprocess: "imagenet",
    ...METHODS,
    curveSamples: 5,
  });
  assertEquals(tf.memory().numTensors, before);
  const direct = await evaluate({ model, samples: reference, ...METHODS, curveSamples: 5 });
  assertEquals(r.curveSamples, 5);
  assertEquals(strip(r), strip(direct));
});

Deno.test("many-to-one mapping: the explained class is the best-scoring candidate", async () => {
  const all = Array.from({ length: 10 }, (_, k) => k);
  const mapping = buildClassMapping({
    labels: CLASS_NAMES,
    numClasses: 10,
    map: Object.fromEntries(CLASS_NAMES.map((c) => [c, all])),
  });
  const res = `${tmp}/many.jsonl`;
  const r = await evaluateDataset({
    model,
    dataset: loadDataset(PERFECT),
    mapping,
    preprocess: "imagenet",
    ...METHODS,
    steps: 2,
    results: res,
  });
  assertEquals(r.n, SCENES.length);
  const chosen = (await Deno.readTextFile(res)).trim().split("\n").slice(1)
    .map((l) => JSON.parse(l).class);
  const top1: number[] = [];
  for (const [i] of SCENES.entries()) {
    const img = await decodeImageRgba8(await Deno.readFile(`${manDir}/img/s${i}.png`));
    const x = tf.tensor4d(toModelInput(img, SIZE, SIZE, "imagenet"), [1, SIZE, SIZE, 3]);
    const y = model.predict(x) as tf.Tensor;
    top1.push((await y.argMax(-1).data())[0]);
    tf.dispose([x, y]);
  }
  // Odd entries name their class (mapped to all ten): the model's top-1 is explained;
  // even entries give a class index, which is explained as given.
  assertEquals(chosen, top1.map((t, i) => (i % 2 ? t : SCENES[i].label)));
});

Deno.test("manifest: CSV with boxes, masks, indices, unknown classes, bad lines", async () => {
  const csv = `${manDir}/labels.csv`;
  await Deno.writeTextFile(
    csv,
    "image,class,mask,x0,y0,x1,y1\n" +
      "img/s0.png,disk,img/s0_mask.png,,,,\n" +
      'img/s1.png,3,,2,2,10,12\n"img/s1.png",zebra,,0,0,4,4\n' +
      "img/s1.png,square,,20,20,22,23\n" +
      "img/nope.png,disk,,0,0,4,4\n",
  );
  const ds = loadDataset(csv);
  const p = datasetPairs(ds, MAPPING);
  assertEquals(p.pairs.map((q) => q.key), [
    "img/s0.png\tdisk",
    "img/s1.png\t3",
    "img/s1.png\tsquare",
    "img/nope.png\tdisk",
  ]);
  assertEquals(p.unknown, { zebra: 1 });
  const s = await samplesOf(ds);
  assertEquals(s[0].sample.mask, SCENES[0].mask);
  assertEquals(s[1].sample.mask, rect(64, 64, 2, 2, 10, 12));
  assertEquals(s[1].sample.label, 3);
  assertEquals(s[2].sample.label, 3); // "square" is class 3 by name
  const line = (row: string, ...parts: string[]): void => {
    throwsDataset(() => parseManifestCsv(`image,class,x0,y0,x1,y1\n${row}\n`, "m.csv"), ...parts);
  };
  line("a.png,dog,5,2,1,12", 'm.csv: line 2: "box" needs x0 < x1 and y0 < y1, got [5, 2, 1, 12]');
  line("a.png,dog,5,2,x,12", "m.csv: line 2: x0, y0, x1, y1 must all be numbers");
  line("a.png,,0,0,1,1", 'line 2: "class" must be a class name or index');
  line("a.png,dog,0,0,1", "line 2: 5 fields, the header has 6");
  throwsDataset(
    () => parseManifestCsv("picture,class\n", "m.csv"),
    "the header has no 'image' column",
  );
  // A class index the model does not have is an error naming the line.
  await Deno.writeTextFile(`${manDir}/bad.csv`, "image,class,x0,y0,x1,y1\na.png,12,0,0,1,1\n");
  throwsDataset(
    () => datasetPairs(loadDataset(`${manDir}/bad.csv`), MAPPING),
    "bad.csv: line 2: class index 12 is out of range (the model has 10 classes)",
  );
  await Deno.writeTextFile(`${manDir}/bad.json`, JSON.stringify([{ image: "a.png", class: "x" }]));
  throwsDataset(
    () => loadDataset(`${manDir}/bad.json`),
    'bad.json: entry 1: needs a "mask" or a "box"',
  );
});

// ---------------------------------------------------------------------------------------
// CLI: resume, failures, errors
// ---------------------------------------------------------------------------------------

const LABELS = `${tmp}/labels.json`;
await Deno.writeTextFile(LABELS, JSON.stringify(CLASS_NAMES));
const CLI = [
  "--model",
  MODEL_PATH,
  "--labels",
  LABELS,
  "--methods",
  "grad-cam",
  "--extrapolate",
  "none",
  "--steps",
  "8",
  "--quiet",
  "--json",
];

Deno.test("cli eval --dataset: --results / --resume give the numbers of one full run", async () => {
  const full = await runCli(["--dataset", PERFECT, ...CLI]);
  assertEquals(full.code, 0);
  const all = JSON.parse(full.out);
  assertEquals(all.n, 7);
  assertEquals(all.dataset.format, "manifest");
  const res = `${tmp}/perfect.jsonl`;
  const part = await runCli(["--dataset", PERFECT, ...CLI, "--n", "3", "--results", res]);
  assertEquals(JSON.parse(part.out).n, 3);
  let lines = (await Deno.readTextFile(res)).trim().split("\n");
  assertEquals(lines.length, 1 + 3);
  // Without --resume an existing results file is not overwritten.
  let msg = "";
  try {
    await runCli(["--dataset", PERFECT, ...CLI, "--results", res]);
  } catch (e) {
    msg = formatError(e);
  }
  assertEquals(
    msg,
    `gradual: ${res}: the results file exists; pass --resume to continue it, or remove it`,
  );
  // An interrupted run leaves a line cut short: it is dropped on resume.
  await Deno.writeTextFile(res, '{"image": "img/s3.png", "categ', { append: true });
  const rest = await runCli(["--dataset", PERFECT, ...CLI, "--results", res, "--resume"]);
  assertEquals(rest.code, 0);
  const resumed = JSON.parse(rest.out);
  assertEquals([resumed.summary.resumed, resumed.summary.evaluated], [3, 4]);
  lines = (await Deno.readTextFile(res)).trim().split("\n");
  assertEquals(lines.length, 1 + 7);
  lines.forEach((l) => JSON.parse(l));
  const rows = (x: { rows: { msPerImage: number }[] }): unknown =>
    x.rows.map((r) => ({ ...r, msPerImage: 0 }));
  assertEquals(rows(resumed), rows(all));
  // Different settings cannot resume the same file.
  try {
    await runCli(["--dataset", PERFECT, ...CLI, "--steps", "4", "--results", res, "--resume"]);
  } catch (e) {
    msg = formatError(e);
  }
  assertEquals(
    msg,
    `gradual: ${res}: made with different settings (steps); use another results file`,
  );
});

Deno.test("cli eval --dataset: missing images counted, table printed, exit 1", async () => {
  const r = await runCli(["--dataset", COCO_FILE, ...CLI.filter((a) => a !== "--quiet")]);
  assertEquals(r.code, 1);
  const rep = JSON.parse(r.out);
  assertEquals([rep.n, rep.summary.failed.length], [3, 1]);
  assert(
    r.err.some((l) =>
      l.startsWith(
        `gradual: ${COCO_FILE}: skipped 1 (image, class) pair of 1 class the model does not know: zebra (1)`,
      )
    ),
    r.err.join("\n"),
  );
  assert(r.err.some((l) => l.includes("1 pair(s) failed")), r.err.join("\n"));
  const table = await runCli(["--dataset", vocDir, ...CLI.filter((a) => a !== "--json")]);
  assertEquals(table.code, 0);
  assert(table.out.includes("| grad-cam | none |") && table.out.includes("| centre-baseline |"));
});

Deno.test("cli eval --dataset: one-line errors for bad files and flags", async () => {
  const err = async (args: string[]): Promise<string> => {
    try {
      await runCli(args);
    } catch (e) {
      return formatError(e);
    }
    return "no error";
  };
  assertEquals(
    await err(["--dataset", `${manDir}/bad.csv`, ...CLI]),
    `gradual: ${manDir}/bad.csv: line 2: class index 12 is out of range (the model has 10 classes)`,
  );
  assertEquals(
    await err(["--dataset", `${tmp}/nothing.json`, ...CLI]),
    `gradual: ${tmp}/nothing.json: no such file or folder`,
  );
  const map = `${tmp}/map.json`;
  await Deno.writeTextFile(map, JSON.stringify({ square: "box" }));
  assertEquals(
    await err(["--dataset", vocDir, ...CLI, "--class-map", map]),
    `gradual: ${map}: "square": the model has no class 'box'`,
  );
  // Labels that share no name with the dataset: nothing to evaluate.
  const other = `${tmp}/other.json`;
  await Deno.writeTextFile(other, JSON.stringify("abcdefghij".split("")));
  assertEquals(
    await err(["--dataset", vocDir, ...CLI, "--labels", other]),
    `gradual: ${vocDir}: no class of the dataset is a class of the model (square, ring, disk); ` +
      "map them with a class map file or give the model's labels",
  );
  assertEquals(await err(["--resume"]), "gradual: --resume needs --dataset");
  assertEquals(
    await err(["--dataset", vocDir, ...CLI, "--resume"]),
    "gradual: --resume needs --results FILE",
  );
  assertEquals(
    await err(["--dataset", vocDir, ...CLI, "--subset", "hard"]),
    "gradual: --subset must be all or difficult, got 'hard'",
  );
});

Deno.test("datasets: clean up", async () => {
  await Deno.remove(tmp, { recursive: true });
});
