/**
 * How much each speed setting changes every method's maps on the paper's VGG16 (224x224,
 * batch 2): runs every registered method and extrapolator once per setting and prints
 * max |map - reference| / max |reference| per case, the reference being the direct path
 * (`winograd: "off"`) on wasm. `--cpu` adds the direct path on the tfjs cpu backend (another
 * summation order): its distance to the wasm direct path is the float32 noise floor.
 *
 *   deno run --allow-read --allow-env --allow-sys=cpus bench/fullscale_diff.ts \
 *     [--modes off,auto,all] [--cpu] [--only grad-cam,excitation-backprop] [--threads 2]
 *     [--input blobs|bench]   (the test's input, or bench.ts's uniform noise)
 *
 * @module
 */
import { initBackend, setWinograd, type WinogradMode } from "../backend/mod.ts";
import { tf } from "../core/tensor.ts";
import { benchInput } from "./_worker.ts";
import { allCases, loadVgg16, relDiff, runCases, vggInput } from "../tests/_fullscale.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const modes = (arg("modes") ?? "off,auto").split(",") as WinogradMode[];
const only = arg("only")?.split(",");
const threads = Number(arg("threads") ?? 2);
const withCpu = Deno.args.includes("--cpu");
const input = arg("input") ?? "blobs";

await initBackend({ backend: "wasm", threads });
const model = await loadVgg16();
const x = input === "bench" ? benchInput(2, 224, 224, false) : vggInput(2);
const cases = allCases().filter((c) => !only || only.includes(c.name));

const results = new Map<string, Map<string, Float32Array>>();
for (const m of modes) {
  setWinograd(m);
  const t0 = performance.now();
  results.set(m, await runCases(model, x, cases));
  console.error(`wasm ${m}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
if (withCpu) {
  await initBackend({ backend: "cpu" });
  const t0 = performance.now();
  results.set("cpu", await runCases(model, x, cases.filter((c) => c.name !== "score-cam")));
  console.error(`cpu: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const ref = results.get(modes[0])!;
const cols = [...results.keys()].slice(1);
console.log(["case", ...cols.map((c) => `${c} vs ${modes[0]}`)].join("\t"));
for (const c of cases) {
  const a = ref.get(c.name)!;
  const row = cols.map((k) => {
    const b = results.get(k)!.get(c.name);
    return b ? relDiff(a, b).toExponential(2) : "-";
  });
  console.log([c.name, ...row].join("\t"));
}
tf.dispose(x);
model.dispose();
Deno.exit(0);
