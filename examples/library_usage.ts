/**
 * The README's library example, runnable: explains a sample scene with the built-in model.
 *
 * `deno run --allow-read --allow-env examples/library_usage.ts [image.png]`
 *
 * @module
 */
import { exitProcess, explain, initBackend, loadLayersModel, prepareInput } from "../mod.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts"; // "@gradual/saliency/models"
import { tf } from "../core/tf.ts"; // "@gradual/saliency/tf"

await initBackend({ backend: "wasm" }); // SIMD, and threads on every core
const model = await loadLayersModel(BUILTIN_MODELS["shapes-vgg"].modelUrl);
const file = Deno.args[0] ?? new URL("../models/samples/star_3000004.png", import.meta.url);
const { input } = await prepareInput(await Deno.readFile(file), 128, 128, "unit");
const x = tf.tensor4d(input, [1, 128, 128, 3]);

const [e] = await explain(model, x, {
  method: "grad-cam", // any registered method: "c-eb", "grad-cam++", "integrated-gradients", ...
  extrapolator: "gradual", // the paper's; "gradual+" measures better; or leave out
  targets: "top1", // or a class index, a class name, [per image], { topK: 3 }, a score function
});
console.log(e.classIndex, e.probability.toFixed(3), e.width, e.height); // e.map: [0, 1] values
x.dispose();
exitProcess(0); // wasm worker threads keep the process alive otherwise (Deno or Node)
