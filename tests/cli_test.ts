/**
 * End-to-end tests of the `gradual` command line: the CLI runs as a subprocess over a
 * corpus of good, odd and broken inputs made in a temporary folder.
 *
 * @module
 */
import { decodeImageRgba8 } from "../io/decode.ts";
import { decodeNpy } from "../io/npy.ts";
import denoJson from "../deno.json" with { type: "json" };
import { assert, assertEquals } from "./_assert.ts";
import { type Corpus, FIXTURE_MODEL, makeCorpus, pngSize } from "./_cli_corpus.ts";
import { type CliResult, gradual } from "./_cli_run.ts";

const M = ["--model", FIXTURE_MODEL, "--preprocess", "imagenet", "--backend", "cpu"];

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return gradual(args, { env });
}

let corpusPromise: Promise<Corpus> | undefined;
function corpus(): Promise<Corpus> {
  return (corpusPromise ??= makeCorpus());
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) out.push(...await listAll(p));
      else out.push(p);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
  }
  return out.sort();
}

/** No stack trace, and every stderr line is one `gradual: ...` message. */
function assertCleanStderr(r: CliResult, context: string): void {
  assert(!r.stderr.includes("    at "), `${context}: stack trace in stderr:\n${r.stderr}`);
  for (const line of r.stderr.split("\n").filter((l) => l.trim())) {
    assert(line.startsWith("gradual: "), `${context}: unexpected stderr line: ${line}`);
  }
}

function assertMentions(r: CliResult, needle: string, context: string): void {
  const line = r.stderr.split("\n").find((l) => l.includes(needle));
  assert(line !== undefined, `${context}: stderr does not mention '${needle}':\n${r.stderr}`);
}

async function assertNoTempFiles(dir: string): Promise<void> {
  const stray = (await listAll(dir)).filter((f) => f.includes(".gradual-tmp-"));
  assertEquals(stray, [], "temporary files left behind");
}

Deno.test("explain: every PNG variant, JPEG and 1x1 image, all formats, --json records", async () => {
  const c = await corpus();
  const out = `${c.root}/out_happy`;
  const r = await cli([
    "explain",
    c.good,
    ...M,
    "--method",
    "grad-cam",
    "--extrapolate",
    "gradual,none",
    "--format",
    "overlay,heatmap,npy,json",
    "--json",
    "--batch",
    "4",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertCleanStderr(r, "happy path");
  assertMentions(r, `${c.goodFiles.length} images, 0 failed`, "summary");
  const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(records.length, c.goodFiles.length * 2);
  assertEquals([...new Set(records.map((x) => x.file))].sort(), c.goodFiles);
  const outputs = new Set<string>();
  for (const rec of records) {
    for (
      const k of ["file", "class", "score", "probability", "method", "layer", "outputs", "map"]
    ) {
      assert(k in rec, `record lacks ${k}`);
    }
    assertEquals(rec.method, "grad-cam");
    assert(rec.extrapolator === "gradual" || rec.extrapolator === null);
    assert(rec.map.min >= 0 && rec.map.max <= 1 && rec.map.mean >= 0);
    assertEquals(Object.keys(rec.outputs).sort(), ["heatmap", "json", "npy", "overlay"]);
    for (const p of Object.values(rec.outputs) as string[]) {
      assert(!outputs.has(p), `output name collision: ${p}`);
      outputs.add(p);
    }
    const npy = decodeNpy(await Deno.readFile(rec.outputs.npy));
    assertEquals(npy.dtype, "float32");
    assertEquals(npy.shape, [64, 64]);
    assertEquals(pngSize(await Deno.readFile(rec.outputs.heatmap)), [64, 64]);
    assertEquals(JSON.parse(await Deno.readTextFile(rec.outputs.json)), rec);
  }
  const overlayOf = (file: string): string =>
    records.find((x) => x.file === file && x.extrapolator === "gradual").outputs.overlay;
  assertEquals(pngSize(await Deno.readFile(overlayOf(c.rgb))), [120, 80]);
  assertEquals(pngSize(await Deno.readFile(overlayOf(`${c.good}/b/x.png`))), [48, 96]);
  assertEquals(pngSize(await Deno.readFile(overlayOf(`${c.good}/one.png`))), [1, 1]);
  assertEquals((await listAll(out)).length, outputs.size);
  await assertNoTempFiles(out);
});

Deno.test("explain: a very large image works and its overlay keeps the original size", async () => {
  const c = await corpus();
  const out = `${c.root}/out_big`;
  const r = await cli(["explain", c.big, ...M, "--format", "overlay", "--json", "--out", out]);
  assertEquals(r.code, 0, r.stderr);
  const [rec] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(pngSize(await Deno.readFile(rec.outputs.overlay)), c.bigSize);
});

Deno.test("explain: bad files fail one by one, the batch goes on", async () => {
  const c = await corpus();
  const out = `${c.root}/out_bad`;
  const missing = `${c.root}/no_such_image.png`;
  const r = await cli([
    "explain",
    c.bad,
    c.rgb,
    missing,
    c.empty,
    ...M,
    "--format",
    "overlay,npy",
    "--batch",
    "3",
    "--out",
    out,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertCleanStderr(r, "bad batch");
  for (const f of [...c.badFiles, missing, c.empty]) assertMentions(r, `gradual: ${f}: `, f);
  const files = await listAll(out);
  assertEquals(files.length, 2, files.join("\n"));
  assert(files.every((f) => f.split("/").pop()!.startsWith("rgb_")), files.join("\n"));
  await assertNoTempFiles(out);
});

Deno.test("explain: a plugin that throws fails that image only", async () => {
  const c = await corpus();
  const out = `${c.root}/out_boom`;
  const r = await cli([
    "explain",
    c.black,
    c.rgb,
    ...M,
    "--plugin",
    c.pluginBoom,
    "--method",
    "boom-cam",
    "--extrapolate",
    "none",
    "--format",
    "npy",
    "--batch",
    "2",
    "--out",
    out,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertCleanStderr(r, "boom");
  assertMentions(r, `gradual: ${c.black}: boom: black image`, "boom");
  const files = await listAll(out);
  assertEquals(files.length, 1, files.join("\n"));
  assert(files[0].includes("rgb_") && files[0].includes(".boom-cam."), files[0]);
});

Deno.test("explain: usage and set-up errors are one line, exit 1/2, no output", async () => {
  const c = await corpus();
  const cases: { name: string; args: string[]; code: number; mention: string }[] = [
    { name: "unknown method", args: [c.rgb, ...M, "--method", "nope"], code: 2, mention: "nope" },
    {
      name: "unknown extrapolator",
      args: [c.rgb, ...M, "--extrapolate", "sideways"],
      code: 2,
      mention: "sideways",
    },
    {
      name: "unknown layer",
      args: [c.rgb, ...M, "--layer", "feature_12"],
      code: 2,
      mention: "'features_12'",
    },
    {
      name: "target out of range",
      args: [c.rgb, ...M, "--target", "10"],
      code: 2,
      mention: "out of range",
    },
    {
      name: "unknown class name",
      args: [c.rgb, ...M, "--labels", c.labels, "--target", "zebra"],
      code: 2,
      mention: "zebra",
    },
    {
      name: "class name without labels",
      args: [c.rgb, ...M, "--target", "cat"],
      code: 2,
      mention: "cat",
    },
    { name: "top-k too big", args: [c.rgb, ...M, "--target", "top11"], code: 2, mention: "top-k" },
    {
      name: "model missing",
      args: [c.rgb, "--model", `${c.root}/nope/model.json`, "--backend", "cpu"],
      code: 1,
      mention: `${c.root}/nope/model.json`,
    },
    {
      name: "model invalid JSON",
      args: [c.rgb, "--model", c.modelBadJson, "--backend", "cpu"],
      code: 1,
      mention: c.modelBadJson,
    },
    {
      name: "model missing weights shard",
      args: [c.rgb, "--model", c.modelNoWeights, "--backend", "cpu"],
      code: 1,
      mention: "group1-shard1of1.bin",
    },
    {
      name: "model without spatial layer",
      args: [c.rgb, "--model", c.modelFlat, "--backend", "cpu"],
      code: 1,
      mention: c.modelFlat,
    },
    {
      name: "plugin file missing",
      args: [c.rgb, ...M, "--plugin", `${c.root}/plugins/missing.ts`],
      code: 1,
      mention: `${c.root}/plugins/missing.ts`,
    },
    {
      name: "plugin without default export",
      args: [c.rgb, ...M, "--plugin", c.pluginNoDefault],
      code: 1,
      mention: c.pluginNoDefault,
    },
    {
      name: "plugin with an invalid default export",
      args: [c.rgb, ...M, "--plugin", c.pluginInvalid],
      code: 1,
      mention: c.pluginInvalid,
    },
    {
      name: "missing input only",
      args: [`${c.root}/none.png`, ...M],
      code: 1,
      mention: "none.png",
    },
    { name: "empty folder only", args: [c.empty, ...M], code: 1, mention: c.empty },
    { name: "unknown flag", args: [c.rgb, ...M, "--colour", "red"], code: 2, mention: "--colour" },
    { name: "no inputs", args: [...M], code: 2, mention: "explain needs" },
    { name: "bad shard", args: [c.rgb, ...M, "--shard", "2/2"], code: 2, mention: "--shard" },
    { name: "bad format", args: [c.rgb, ...M, "--format", "gif"], code: 2, mention: "gif" },
    { name: "npy without --preprocess none", args: [c.npy, ...M], code: 1, mention: c.npy },
  ];
  const results = await Promise.all(cases.map(async (t, i) => {
    const out = `${c.root}/out_err_${i}`;
    return { t, out, r: await cli(["explain", ...t.args, "--out", out]) };
  }));
  // an output folder under a regular file
  const unwritable = `${c.regularFile}/sub`;
  results.push({
    t: { name: "output folder not writable", args: [], code: 1, mention: unwritable },
    out: unwritable,
    r: await cli(["explain", c.rgb, ...M, "--out", unwritable]),
  });
  for (const { t, out, r } of results) {
    assertEquals(r.code, t.code, `${t.name}: exit ${r.code}\n${r.stderr}`);
    assertCleanStderr(r, t.name);
    assertMentions(r, t.mention, t.name);
    assertEquals(await listAll(out), [], `${t.name}: stray output`);
  }
});

Deno.test("explain: --preprocess none reads .npy tensors", async () => {
  const c = await corpus();
  const out = `${c.root}/out_npy`;
  const r = await cli([
    "explain",
    c.npy,
    "--model",
    FIXTURE_MODEL,
    "--preprocess",
    "none",
    "--backend",
    "cpu",
    "--format",
    "npy,overlay",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await listAll(out)).length, 2);
});

Deno.test("explain: --shard K/N covers every file once; --skip-existing skips", async () => {
  const c = await corpus();
  const out = `${c.root}/out_shard`;
  const run = (shard: string, ...more: string[]) =>
    cli([
      "explain",
      c.good,
      ...M,
      "--format",
      "npy",
      "--json",
      "--shard",
      shard,
      "--out",
      out,
      ...more,
    ]);
  const [a, b] = await Promise.all([run("0/2"), run("1/2")]);
  assertEquals(a.code, 0, a.stderr);
  assertEquals(b.code, 0, b.stderr);
  const files = (r: CliResult) =>
    r.stdout.trim().split("\n").map((l) => JSON.parse(l).file as string);
  const fa = files(a), fb = files(b);
  assertEquals(fa.filter((f) => fb.includes(f)), []);
  assertEquals([...fa, ...fb].sort(), c.goodFiles);
  const before = await Promise.all(
    (await listAll(out)).map(async (f) => [f, (await Deno.stat(f)).mtime?.getTime()]),
  );
  const again = await run("0/2", "--skip-existing");
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.stdout.trim(), "");
  assertMentions(again, `${fa.length} skipped`, "skip summary");
  const after = await Promise.all(
    (await listAll(out)).map(async (f) => [f, (await Deno.stat(f)).mtime?.getTime()]),
  );
  assertEquals(after, before);
});

Deno.test("compare: one figure per image, panel titles, right size (wasm, 1 thread)", async () => {
  const c = await corpus();
  const out = `${c.root}/out_compare`;
  const r = await cli([
    "compare",
    c.rgb,
    "--model",
    FIXTURE_MODEL,
    "--preprocess",
    "imagenet",
    "--backend",
    "wasm",
    "--threads",
    "1",
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertCleanStderr(r, "compare");
  assert(!r.stderr.includes("warning"), r.stderr); // no panel left out
  const panels = 5; // the input, then Grad-CAM and c-EB, each without and with gradual
  const files = await listAll(out);
  assertEquals(files.length, 1);
  assert(files[0].endsWith(".compare.png"));
  // figure(): margin 12, gap 12, title 18 + 6, panels 224 high; 120x80 -> 336 wide
  const pw = Math.round((120 * 224) / 80);
  const png = await Deno.readFile(files[0]);
  assertEquals(pngSize(png), [24 + panels * pw + (panels - 1) * 12, 12 + 18 + 6 + 224 + 12]);
  // Every panel has its title: black ink in the 18-pixel band above it (white background).
  const fig = await decodeImageRgba8(png);
  for (let p = 0; p < panels; p++) {
    const x0 = 12 + p * (pw + 12);
    let ink = 0;
    for (let y = 12; y < 12 + 18; y++) {
      for (let x = x0; x < x0 + pw; x++) {
        const o = (y * fig.width + x) * 4;
        if (fig.data[o] + fig.data[o + 1] + fig.data[o + 2] < 100) ink++;
      }
    }
    assert(ink > 40, `panel ${p}: ${ink} title pixels`);
  }
});

Deno.test("list: methods, extrapolators, plugins and a model's layers", async () => {
  const c = await corpus();
  const r = await cli(["list", "--model", FIXTURE_MODEL, "--plugin", c.pluginBoom]);
  assertEquals(r.code, 0, r.stderr);
  for (const s of ["grad-cam", "gradual", "boom-cam", "Built-in models", "shapes-vgg"]) {
    assert(r.stdout.includes(s), `list lacks ${s}`);
  }
  // Every plugin's options, from its declarations: allowed values, default, doc.
  const row = (name: string) => r.stdout.split("\n").find((l) => l.trim().startsWith(name)) ?? "";
  assert(/none\|torchray\|pgc +default none +emulate/.test(row("inplaceRelu")), row("inplaceRelu"));
  assert(/image\|batch +default image/.test(row("statistics")), row("statistics"));
  assert(/integer >= 1 +default 50 +intervals/.test(row("steps")), row("steps"));
  const line = (name: string) => r.stdout.split("\n").find((l) => l.includes(` ${name} `)) ?? "";
  assert(line("features_11").includes("target (default)"), line("features_11"));
  assert(line("features_12").includes("[N, 8, 8, 64]"), line("features_12"));
  assert(line("features_4").includes("reduces"), line("features_4"));
  assert(line("features_9").includes("reduces"), line("features_9"));
  assert(!line("features_0").includes("reduces"), line("features_0"));
  assert(line("classifier_0").includes("classifier"), line("classifier_0"));
  const bad = await cli(["list", "--model", c.modelBadJson]);
  assertEquals(bad.code, 1);
  assertCleanStderr(bad, "list bad model");
});

Deno.test("help and version", async () => {
  const [v, h, he, hc, hl, unknown, badWinograd] = await Promise.all([
    cli(["--version"]),
    cli(["--help"]),
    cli(["explain", "--help"]),
    cli(["compare", "--help"]),
    cli(["list", "--help"]),
    cli(["frobnicate"]),
    cli(["explain", "x.png", "--winograd", "fast"]),
  ]);
  assertEquals(v.stdout.trim(), `gradual ${denoJson.version}`);
  for (const r of [h, he, hc, hl]) {
    assertEquals(r.code, 0);
    assert(r.stdout.includes("Usage:") && r.stdout.includes("Examples:"), r.stdout);
  }
  assert(hc.stdout.includes("gradual compare"));
  assertEquals(unknown.code, 2);
  assertCleanStderr(unknown, "unknown command");
  assertEquals(badWinograd.code, 2);
  assert(badWinograd.stderr.includes("--winograd must be auto, all or off"), badWinograd.stderr);
  assert(he.stdout.includes("--winograd"));
});

Deno.test("cli tests: remove the corpus", async () => {
  if (corpusPromise) await Deno.remove((await corpusPromise).root, { recursive: true });
});
