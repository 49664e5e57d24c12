/**
 * `gradual eval` as people use it: `--layer` (and `--opt NAME.layer=`) for every method, the
 * metric options, named fields in `--results`, and `--shard K/N` + `--merge` giving the table
 * of one run.
 */
import * as tf from "@tensorflow/tfjs";
import "../plugins/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { encodePng } from "../io/mod.ts";
import { formatError } from "../cli/_errors.ts";
import { evalCommand } from "../cli/eval.ts";
import { CLASS_NAMES, generateScene } from "../models/scenes.ts";
import { assert, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });
tf.enableProdMode();

const MODEL = "tests/fixtures/models/vgg_tiny/tfjs/model.json";
const SIZE = 64;
const tmp = await Deno.makeTempDir({ prefix: "gradual_eval_options_" });
const LABELS = `${tmp}/labels.json`;
await Deno.writeTextFile(LABELS, JSON.stringify(CLASS_NAMES));

// A manifest of 9 generated scenes with their boxes.
const DATASET = `${tmp}/scenes.json`;
{
  await Deno.mkdir(`${tmp}/img`);
  const entries = [];
  for (let i = 0; i < 9; i++) {
    const s = generateScene(4_200_000 + i, { size: SIZE });
    const rgba = new Uint8Array(SIZE * SIZE * 4);
    for (let p = 0; p < SIZE * SIZE; p++) {
      for (let k = 0; k < 3; k++) rgba[4 * p + k] = Math.round(s.image[3 * p + k] * 255);
      rgba[4 * p + 3] = 255;
    }
    await Deno.writeFile(`${tmp}/img/s${i}.png`, await encodePng(SIZE, SIZE, rgba));
    entries.push({ image: `img/s${i}.png`, class: s.className, box: s.box });
  }
  await Deno.writeTextFile(DATASET, JSON.stringify(entries));
}

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await evalCommand(args);
    return { code, out: out.join("\n"), err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function cliError(args: string[]): Promise<string> {
  try {
    await runCli(args);
  } catch (e) {
    return formatError(e);
  }
  return "no error";
}

const COMMON = [
  "--model",
  MODEL,
  "--labels",
  LABELS,
  "--extrapolate",
  "none",
  "--steps",
  "4",
  "--threads",
  "1",
  "--quiet",
];
/** The common flags and one method. */
const BASE = [...COMMON, "--methods", "grad-cam"];

interface Row {
  method: string;
  layer?: string;
  msPerImage: number;
  pointing: { mean: number };
  energy: { mean: number };
}

/** A report's rows without the timings. */
const numbers = (r: { rows: Row[] }): unknown => r.rows.map((x) => ({ ...x, msPerImage: 0 }));

Deno.test("eval --layer applies to every method; --opt NAME.layer= to one", async () => {
  const dflt = JSON.parse((await runCli([...BASE, "--n", "3", "--json"])).out);
  const defaultLayer = dflt.rows[0].layer;
  assert(typeof defaultLayer === "string" && defaultLayer !== "", "the layer used is reported");
  const other = "features_6";
  assert(defaultLayer !== other, `default ${defaultLayer}`);
  const withLayer = JSON.parse(
    (await runCli([
      ...COMMON,
      "--n",
      "3",
      "--methods",
      "grad-cam,grad-cam++",
      "--layer",
      other,
      "--json",
    ])).out,
  );
  assertEquals(withLayer.rows.map((r: Row) => r.layer), [other, other, undefined]);
  assert(withLayer.rows[0].energy.mean !== dflt.rows[0].energy.mean, "another layer's maps");
  const perMethod = JSON.parse(
    (await runCli([
      ...COMMON,
      "--n",
      "3",
      "--methods",
      "grad-cam,grad-cam++",
      "--opt",
      `grad-cam.layer=${other}`,
      "--json",
    ])).out,
  );
  assertEquals(perMethod.rows.map((r: Row) => r.layer), [other, defaultLayer, undefined]);
  assertEquals(numbers({ rows: [perMethod.rows[0]] }), numbers({ rows: [withLayer.rows[0]] }));
  const bad = await cliError([...BASE, "--n", "2", "--layer", "nope"]);
  assert(bad.startsWith("gradual: ") && bad.includes("'nope'") && !bad.includes("\n"), bad);
});

Deno.test("eval metric options: tolerance, energy map, insertion start; bad values named", async () => {
  const run = async (...extra: string[]) =>
    JSON.parse((await runCli([...BASE, "--n", "4", "--json", ...extra])).out);
  const d = await run();
  assertEquals([d.tolerance, d.energyMap, d.insertionStart], [
    15 * SIZE / 224,
    "minmax",
    "gaussian",
  ]);
  const t = await run("--tolerance", "0");
  assertEquals(t.tolerance, 0);
  assert(t.rows[0].pointing.mean <= d.rows[0].pointing.mean, "no tolerance, fewer hits");
  const raw = await run("--energy", "raw");
  assertEquals(raw.energyMap, "raw");
  assert(raw.rows[0].energy.mean !== d.rows[0].energy.mean, "the raw map's energy");
  const rise = await run("--insertion-start", "rise");
  assertEquals(rise.insertionStart, "rise");
  assertEquals(rise.rows[0].deletion, d.rows[0].deletion);
  assert(rise.rows[0].insertion.mean !== d.rows[0].insertion.mean, "another insertion start");
  assertEquals(d.curveWork.images, 2 * 2 * 4 * 5); // 2 rows · 4 scenes · 2 curves · 5 steps
  assert(d.curveWork.scored < d.curveWork.images, "shared images scored once");
  assertEquals(
    await cliError([...BASE, "--energy", "sum"]),
    "gradual: --energy must be minmax or raw, got 'sum'",
  );
  assertEquals(
    await cliError([...BASE, "--insertion-start", "black"]),
    "gradual: --insertion-start must be gaussian or rise, got 'black'",
  );
});

Deno.test("eval --results: records with named fields and the run index", async () => {
  const res = `${tmp}/named.jsonl`;
  const r = await runCli([...BASE, "--dataset", DATASET, "--n", "2", "--results", res, "--json"]);
  assertEquals(r.code, 0);
  const [header, ...recs] = (await Deno.readTextFile(res)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(header.gradualEvalResults, 2);
  assertEquals(header.settings.rows, ["grad-cam+none", "centre-baseline+none"]);
  assertEquals(recs.map((x) => x.index), [0, 1]);
  const s = recs[0].scores["grad-cam+none"];
  assertEquals(Object.keys(s).sort(), [
    "deletion",
    "energy",
    "insertion",
    "layer",
    "ms",
    "pointing",
    "pointingFirst",
  ]);
  assertEquals(s.layer, JSON.parse(r.out).rows[0].layer);
  assert(s.deletion >= 0 && s.deletion <= 1 && s.pointing >= 0, "scores are numbers");
  assertEquals(Object.keys(recs[0].scores["centre-baseline+none"]).includes("layer"), false);
});

Deno.test("eval --shard K/N + --merge: the same table as one run", async () => {
  const one = await runCli([...BASE, "--dataset", DATASET, "--json"]);
  assertEquals(one.code, 0);
  const whole = JSON.parse(one.out);
  assertEquals(whole.n, 9);
  const files = [0, 1, 2].map((k) => `${tmp}/shard${k}.jsonl`);
  const ns: number[] = [];
  for (const [k, f] of files.entries()) {
    const r = await runCli([
      ...BASE,
      "--dataset",
      DATASET,
      "--shard",
      `${k}/3`,
      "--results",
      f,
      "--json",
    ]);
    assertEquals(r.code, 0);
    ns.push(JSON.parse(r.out).n);
  }
  assertEquals(ns, [3, 3, 3]);
  // Merged in any order: the numbers of one run (same pairs, same order, same bootstrap).
  const merged = await runCli(["--merge", files[2], files[0], files[1], "--json"]);
  assertEquals(merged.code, 0);
  const m = JSON.parse(merged.out);
  assertEquals(m.n, 9);
  assertEquals(numbers(m), numbers(whole));
  // The markdown table too, timings aside.
  const table = async (args: string[]): Promise<string[]> =>
    (await runCli(args)).out.split("\n").filter((l) => l.startsWith("|")).map((l) =>
      l.replace(/\| [0-9.]+ \|$/, "| t |")
    );
  assertEquals(
    await table(["--merge", ...files]),
    await table([...BASE, "--dataset", DATASET]),
  );
  // Problems name the file.
  assertEquals(
    await cliError(["--merge", files[0], files[1]]),
    `gradual: ${files[0]}: shard(s) 2/3 missing from the merge`,
  );
  assertEquals(
    await cliError(["--merge", files[0], files[0], files[1], files[2]]),
    `gradual: ${files[0]}: shard 0/3 is also in ${files[0]}`,
  );
  const other = `${tmp}/other.jsonl`;
  await runCli([
    ...BASE,
    "--dataset",
    DATASET,
    "--shard",
    "2/3",
    "--steps",
    "2",
    "--results",
    other,
  ]);
  assertEquals(
    await cliError(["--merge", files[0], files[1], other]),
    `gradual: ${other}: made with different settings than ${files[0]} (steps)`,
  );
  assertEquals(
    await cliError([...BASE, "--dataset", DATASET, "--shard", "1/3"]),
    "gradual: --shard needs --results FILE (to merge the shards with --merge)",
  );
  assertEquals(await cliError([...BASE, "--shard", "1/3"]), "gradual: --shard needs --dataset");
});
