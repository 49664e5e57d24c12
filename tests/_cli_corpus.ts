/**
 * Test corpus for the CLI tests: PNGs of every colour type and bit depth (written by a tiny
 * PNG writer here, since the toolkit's encoder only writes 8-bit RGB/RGBA), JPEGs,
 * truncated and corrupt files, broken models and plugins, all in a temporary folder.
 *
 * @module
 */
import { createRequire } from "node:module";
import { encodePng } from "../io/mod.ts";
import { encodeNpy } from "../io/npy.ts";
import { rawPng } from "./_png.ts";

export { rawPng };

const REPO = new URL("../", import.meta.url);

/** The fixture model (64x64 input, 10 classes, no labels). */
export const FIXTURE_MODEL: string = new URL("tests/fixtures/models/vgg_tiny/tfjs/model.json", REPO)
  .pathname;

/** An 8-bit RGBA PNG with a smooth pattern (opaque unless `alpha`). */
export async function rgbaPng(width: number, height: number, alpha = false): Promise<Uint8Array> {
  const d = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 4 * (y * width + x);
      d[o] = (x * 255) / Math.max(1, width - 1);
      d[o + 1] = (y * 255) / Math.max(1, height - 1);
      d[o + 2] = ((x + y) * 4) & 255;
      d[o + 3] = alpha ? (x * 7) & 255 : 255;
    }
  }
  return await encodePng(width, height, d);
}

interface JpegEncoder {
  memory: WebAssembly.Memory;
  walloc(size: number): number;
  wfree(ptr: number, size: number): void;
  wlen(): number;
  encode(ptr: number, width: number, height: number, quality: number): number;
}

let jpegModule: Promise<WebAssembly.Module> | undefined;

/** A JPEG, encoded by imagescript's WebAssembly codec (no FFI needed). */
export async function jpeg(width: number, height: number): Promise<Uint8Array> {
  jpegModule ??= Deno.readFile(
    createRequire(import.meta.url).resolve("imagescript/wasm/any/jpeg.wasm"),
  ).then((b) => WebAssembly.compile(b));
  const wasm = new WebAssembly.Instance(await jpegModule).exports as unknown as JpegEncoder;
  const rgba = new Uint8Array(width * height * 4).map((
    _,
    i,
  ) => (i % 4 === 3 ? 255 : (i * 31) & 255));
  const src = wasm.walloc(rgba.length);
  new Uint8Array(wasm.memory.buffer, src, rgba.length).set(rgba);
  const out = wasm.encode(src, width, height, 90);
  const bytes = new Uint8Array(wasm.memory.buffer, out, wasm.wlen()).slice();
  wasm.wfree(src, rgba.length);
  return bytes;
}

/** Width and height from a PNG's IHDR. */
export function pngSize(bytes: Uint8Array): [number, number] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
}

/** Paths of the corpus. */
export interface Corpus {
  /** The temporary root. */
  root: string;
  /** Folder of good images (every PNG variant, JPEG, 1x1, nested a/x.png and b/x.png). */
  good: string;
  /** The good images, sorted. */
  goodFiles: string[];
  /** The large PNG (kept out of `good` so most runs stay fast). */
  big: string;
  /** Size of the large PNG. */
  bigSize: [number, number];
  /** 120x80 RGB PNG. */
  rgb: string;
  /** An all-black PNG (the throwing test plugin fails on it). */
  black: string;
  /** Folder of bad files. */
  bad: string;
  /** The bad files. */
  badFiles: string[];
  /** An empty folder. */
  empty: string;
  /** A regular file (an output folder under it cannot be created). */
  regularFile: string;
  /** Labels for the fixture model (10 names). */
  labels: string;
  /** model.json without its weights shard. */
  modelNoWeights: string;
  /** model.json that is not JSON. */
  modelBadJson: string;
  /** A model with no spatial layer (Flatten + Dense). */
  modelFlat: string;
  /** Plugin module without default export. */
  pluginNoDefault: string;
  /** Plugin module whose default export is not a plugin. */
  pluginInvalid: string;
  /** Method plugin `boom-cam`: Grad-CAM that throws on an all-black image. */
  pluginBoom: string;
  /** A preprocessed tensor `[1, 64, 64, 3]`. */
  npy: string;
}

/** Writes the corpus into a new temporary folder. */
export async function makeCorpus(): Promise<Corpus> {
  const root = await Deno.makeTempDir({ prefix: "gradual_cli_" });
  const p = (rel: string): string => `${root}/${rel}`;
  for (
    const d of [
      "good/a",
      "good/b",
      "bad",
      "empty",
      "big",
      "black",
      "models/noweights",
      "models/flat",
      "plugins",
      "npy",
    ]
  ) {
    await Deno.mkdir(p(d), { recursive: true });
  }
  const w = (rel: string, data: Uint8Array | string): Promise<void> =>
    typeof data === "string" ? Deno.writeTextFile(p(rel), data) : Deno.writeFile(p(rel), data);
  const grad = (x: number, y: number, c: number): number => (x * 9 + y * 5 + c * 40) & 255;
  await w("good/rgb.png", await rgbaPng(120, 80));
  await w("good/rgba.png", await rgbaPng(40, 30, true));
  await w("good/gray8.png", await rawPng(33, 21, 0, 8, grad));
  await w("good/gray_alpha.png", await rawPng(20, 20, 4, 8, grad));
  await w("good/rgb16.png", await rawPng(30, 50, 2, 16, (x, y, c) => (grad(x, y, c) * 257) ^ 0x55));
  const plte = new Uint8Array(48).map((_, i) => (i * 53) & 255);
  await w(
    "good/palette4.png",
    await rawPng(25, 17, 3, 4, (x, y) => (x + y) & 15, {
      plte,
      trns: new Uint8Array([0, 128]),
    }),
  );
  await w("good/one.png", await rgbaPng(1, 1));
  await w("good/photo.jpg", await jpeg(70, 50));
  await w("good/a/x.png", await rgbaPng(64, 64));
  await w("good/b/x.png", await rgbaPng(48, 96));
  const bigSize: [number, number] = [2600, 1700];
  await w("big/big.png", await rgbaPng(bigSize[0], bigSize[1]));
  await w(
    "black/black.png",
    await encodePng(
      32,
      32,
      new Uint8Array(32 * 32 * 4).fill(0).map((v, i) => (i % 4 === 3 ? 255 : v)),
    ),
  );

  const good = await rgbaPng(50, 40);
  const jpg = await jpeg(60, 40);
  await w("bad/not_an_image.png", "this is text, not a PNG\n");
  await w("bad/truncated.png", good.slice(0, Math.floor(good.length * 0.6)));
  const crc = good.slice();
  crc[40] ^= 0xff; // inside IDAT: CRC mismatch
  await w("bad/corrupt.png", crc);
  await w("bad/truncated.jpg", jpg.slice(0, Math.floor(jpg.length / 2)));
  const cj = jpg.slice();
  cj.fill(0x55, 20, 400);
  await w("bad/corrupt.jpg", cj);
  await w("bad/empty.png", new Uint8Array(0));

  await w("regular_file", "not a folder\n");
  await w(
    "labels.txt",
    ["cat", "dog", "fox", "owl", "bee", "ant", "elk", "yak", "eel", "emu"].join("\n"),
  );
  await w("models/noweights/model.json", await Deno.readTextFile(FIXTURE_MODEL));
  await w("models/bad.json", "{ this is not json");
  const dense = (name: string, extra: Record<string, unknown>) => ({
    class_name: name,
    config: { name: name.toLowerCase(), dtype: "float32", ...extra },
  });
  await w(
    "models/flat/model.json",
    JSON.stringify({
      format: "layers-model",
      modelTopology: {
        class_name: "Sequential",
        config: {
          name: "flat",
          layers: [
            dense("Flatten", { batch_input_shape: [null, 8, 8, 3] }),
            dense("Dense", { units: 10, activation: "linear", use_bias: true }),
          ],
        },
        keras_version: "tfjs-layers 4.22.0",
        backend: "tensor_flow.js",
      },
      weightsManifest: [{
        paths: ["w.bin"],
        weights: [
          { name: "dense/kernel", shape: [192, 10], dtype: "float32" },
          { name: "dense/bias", shape: [10], dtype: "float32" },
        ],
      }],
    }),
  );
  await w("models/flat/w.bin", new Uint8Array((192 * 10 + 10) * 4));

  const gradCam = new URL("plugins/grad_cam.ts", REPO).href;
  await w("plugins/no_default.ts", "export const notAPlugin = 1;\n");
  await w("plugins/invalid.ts", "export default { hello: 'world' };\n");
  await w(
    "plugins/boom.ts",
    `import { gradCam } from "${gradCam}";
export default {
  ...gradCam,
  name: "boom-cam",
  aliases: [],
  description: "Grad-CAM that throws on an all-black image",
  async run(ctx) {
    const max = ctx.pass.input.max([1, 2, 3]);
    const values = await max.data();
    max.dispose();
    if (Array.from(values).some((v) => v < -1)) throw new Error("boom: black image");
    return gradCam.run(ctx);
  },
};
`,
  );
  const t = new Float32Array(64 * 64 * 3).map((_, i) => Math.sin(i / 50));
  await w("npy/tensor.npy", encodeNpy(t, [1, 64, 64, 3]));

  const goodFiles = [
    "good/a/x.png",
    "good/b/x.png",
    "good/gray8.png",
    "good/gray_alpha.png",
    "good/one.png",
    "good/palette4.png",
    "good/photo.jpg",
    "good/rgb.png",
    "good/rgb16.png",
    "good/rgba.png",
  ].map(p);
  return {
    root,
    good: p("good"),
    goodFiles,
    big: p("big/big.png"),
    bigSize,
    rgb: p("good/rgb.png"),
    black: p("black/black.png"),
    bad: p("bad"),
    badFiles: [
      "bad/corrupt.jpg",
      "bad/corrupt.png",
      "bad/empty.png",
      "bad/not_an_image.png",
      "bad/truncated.jpg",
      "bad/truncated.png",
    ].map(p),
    empty: p("empty"),
    regularFile: p("regular_file"),
    labels: p("labels.txt"),
    modelNoWeights: p("models/noweights/model.json"),
    modelBadJson: p("models/bad.json"),
    modelFlat: p("models/flat/model.json"),
    pluginNoDefault: p("plugins/no_default.ts"),
    pluginInvalid: p("plugins/invalid.ts"),
    pluginBoom: p("plugins/boom.ts"),
    npy: p("npy/tensor.npy"),
  };
}
