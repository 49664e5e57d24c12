/**
 * The README's examples run as written: the library example and the "bring your own model"
 * worked example (a PyTorch VGG exported to a tfjs LayersModel, with a labels file).
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { type CliResult, ROOT, runDeno } from "./_cli_run.ts";

const run = (args: string[]): Promise<CliResult> => runDeno(args);

Deno.test("README library example explains a sample with the built-in model", async () => {
  const r = await run(["run", "--allow-read", "--allow-env", "examples/library_usage.ts"]);
  assertEquals(r.code, 0, r.stderr);
  const [cls, , w, h] = r.stdout.trim().split(/\s+/);
  assertEquals([cls, w, h], ["4", "128", "128"]); // star_3000004 is a star (class 4)
});

Deno.test("README worked example: own model with labels, two methods, top-3 targets", async () => {
  const out = await Deno.makeTempDir();
  const r = await run([
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "cli/main.ts",
    "explain",
    "models/samples/star_3000004.png",
    "--model",
    "tests/fixtures/models/vgg_tiny/tfjs/model.json",
    "--labels",
    "examples/vgg_tiny_labels.txt",
    "--preprocess",
    "imagenet",
    "--method",
    "grad-cam,c-eb",
    "--target",
    "top3",
    "--format",
    "json",
    "--json",
    "--quiet",
    "--threads",
    "1",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  // 2 methods x gradual and none x 3 targets
  assert(records.length >= 6, `${records.length} records`);
  const labels = (await Deno.readTextFile(`${ROOT}examples/vgg_tiny_labels.txt`)).trim().split(
    "\n",
  );
  for (const rec of records) assert(labels.includes(rec.className), JSON.stringify(rec));
  await Deno.remove(out, { recursive: true });
});
