/**
 * The plugin API from the outside: the two example plugins load through the library and
 * through the CLI's `--plugin`, and the gradual extrapolator sharpens a user's method.
 *
 * @module
 */
import {
  explain,
  initBackend,
  loadLayersModel,
  Registry,
  registry,
  type Tensor4D,
} from "../mod.ts";
import { tf } from "../core/tf.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, rgbaPng } from "./_cli_corpus.ts";
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
