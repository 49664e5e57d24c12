/**
 * The plugin API from the outside: the two example plugins load through the library and
 * through the CLI's `--plugin`, and the gradual extrapolator sharpens a user's method (finer
 * detail than the coarse map's grid allows, more of the map's energy on the object than the
 * example "upsample" extrapolator's plain bilinear upsampling).
 *
 * @module
 */
import {
  decodeImage,
  energyPointing,
  explain,
  type Explanation,
  initBackend,
  loadLayersModel,
  prepareInput,
  Registry,
  registry,
  type Tensor4D,
} from "../mod.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";
import { tf } from "../core/tf.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, rgbaPng } from "./_cli_corpus.ts";
import { maxStep } from "./_maps.ts";
import { gradual, ROOT } from "./_cli_run.ts";

await initBackend({ backend: "wasm", threads: 1 });

Deno.test("example plugins load through the library and run with and without gradual", async () => {
  const reg = new Registry();
  for (const p of registry.methods()) reg.register(p);
  for (const p of registry.extrapolators()) reg.register(p);
  const [method] = await reg.load(`${ROOT}examples/custom_method.ts`);
  const [extrapolator] = await reg.load(`${ROOT}examples/custom_extrapolator.ts`);
  assertEquals([method.name, extrapolator.name], ["abs-grad-cam", "upsample"]);
  const model = await loadLayersModel(FIXTURE_MODEL);
  const x = tf.randomUniform([2, 64, 64, 3], -1, 1, "float32", 3) as Tensor4D;
  const before = tf.memory().numTensors;
  for (const ex of ["none", "gradual", "upsample"]) {
    const res = await explain(model, x, {
      method: "abs-grad-cam",
      extrapolator: ex,
      registry: reg,
    });
    assertEquals(res.length, 2);
    assertEquals([res[0].height, res[0].width], [64, 64]);
    assert(res[0].map.every(Number.isFinite));
  }
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});

/** A registry with the built-in plugins and the two example plugins. */
async function exampleRegistry(): Promise<Registry> {
  const reg = new Registry();
  for (const p of registry.methods()) reg.register(p);
  for (const p of registry.extrapolators()) reg.register(p);
  await reg.load(`${ROOT}examples/custom_method.ts`);
  await reg.load(`${ROOT}examples/custom_extrapolator.ts`);
  return reg;
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

Deno.test("gradual sharpens a user's method: finer than its grid, more energy on the object", async () => {
  // The eight shipped sample scenes (one per class shape, with their boxes), the built-in
  // shapes-vgg and the example method abs-grad-cam; the baseline is the example extrapolator
  // "upsample" (plain bilinear upsampling of the same coarse map, then min-max).
  const reg = await exampleRegistry();
  const model = await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl);
  const dir = `${ROOT}models/samples/`;
  const samples: { file: string; label: number; box: [number, number, number, number] }[] = JSON
    .parse(await Deno.readTextFile(`${dir}samples.json`));
  const [h, w] = BUILTIN_MODELS["shapes-vgg"].inputSize;
  const data = new Float32Array(samples.length * h * w * 3);
  for (const [i, s] of samples.entries()) {
    const png = await Deno.readFile(`${dir}${s.file}`);
    assertEquals((await decodeImage(png)).width, w, s.file);
    data.set((await prepareInput(png, h, w, "unit")).input, i * h * w * 3);
  }
  const x = tf.tensor4d(data, [samples.length, h, w, 3]) as Tensor4D;
  const before = tf.memory().numTensors;
  const run = (extrapolator: string, resize: "input" | "none" = "input"): Promise<Explanation[]> =>
    explain(model, x, {
      method: "abs-grad-cam",
      extrapolator,
      resize,
      targets: samples.map((s) => s.label),
      registry: reg,
    });
  const [coarse, upsampled, gradual] = [
    await run("none", "none"),
    await run("upsample"),
    await run(
      "gradual",
    ),
  ];
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();

  // Resolution: a bilinear upsampling of an n x n map in [0, 1] to N x N moves at most n / N
  // between adjacent pixels; gradual's map has steps several times larger (edges of the
  // shapes, from the activations of the finer layers).
  const [ch, cw] = [coarse[0].height, coarse[0].width];
  assert(ch < h && cw < w, `coarse map ${ch}x${cw}`);
  const bound = Math.max(ch / h, cw / w);
  for (const [i, s] of samples.entries()) {
    assertEquals([gradual[i].height, gradual[i].width], [h, w]);
    const up = maxStep(upsampled[i].map, h, w), sharp = maxStep(gradual[i].map, h, w);
    assert(up <= bound + 1e-6, `${s.file}: upsample step ${up} > ${bound}`);
    assert(
      sharp > 4 * bound,
      `${s.file}: gradual's largest step ${sharp} is not above ${4 * bound}`,
    );
  }
  // Localisation: over the sample set, a larger share of the map's energy lies in the object's
  // box (energy pointing game) than with plain upsampling of the same maps.
  const energy = (maps: Explanation[]): number =>
    mean(maps.map((e, i) => energyPointing(e.map, samples[i].box, h, w)));
  const [eUp, eGradual] = [energy(upsampled), energy(gradual)];
  assert(eGradual > eUp + 0.1, `energy in the box: gradual ${eGradual}, upsample ${eUp}`);
});

Deno.test("example plugins load through the CLI's --plugin", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/a.png`, await rgbaPng(40, 30));
  const out = await gradual([
    "explain",
    `${dir}/a.png`,
    "--model",
    FIXTURE_MODEL,
    "--preprocess",
    "imagenet",
    "--backend",
    "cpu",
    "--plugin",
    "examples/custom_method.ts",
    "--plugin",
    "examples/custom_extrapolator.ts",
    "--method",
    "abs-grad-cam",
    "--extrapolate",
    "upsample,gradual",
    "--format",
    "npy",
    "--json",
    "--quiet",
    "--out",
    `${dir}/out`,
  ]);
  assertEquals(out.code, 0, out.stderr);
  const records = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(records.length, 2);
  assertEquals(records.map((r) => r.extrapolator).sort(), ["gradual", "upsample"]);
  await Deno.remove(dir, { recursive: true });
});
