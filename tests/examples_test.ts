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
  const records: { method: string; extrapolator: string; className: string; score: number }[] = r
    .stdout.trim().split("\n").map((l) => JSON.parse(l));
  // 2 methods x the default extrapolator (gradual+) x the 3 top classes: exactly these 6.
  const labels = (await Deno.readTextFile(`${ROOT}examples/vgg_tiny_labels.txt`)).trim().split(
    "\n",
  );
  const top3 = ["iota", "zeta", "delta"]; // vgg_tiny's three highest logits on this star
  assert(top3.every((c) => labels.includes(c)));
  const key = (m: string, c: string): string => `${m}+gradual+ ${c}`;
  assertEquals(
    records.map((rec) => `${rec.method}+${rec.extrapolator} ${rec.className}`).sort(),
    ["grad-cam", "contrastive-excitation-backprop"].flatMap((m) => top3.map((c) => key(m, c)))
      .sort(),
  );
  for (const m of ["grad-cam", "contrastive-excitation-backprop"]) {
    const scores = records.filter((rec) => rec.method === m).map((rec) => rec.score);
    assertEquals(scores, [...scores].sort((a, b) => b - a), `${m}: targets in score order`);
  }
  await Deno.remove(out, { recursive: true });
});
