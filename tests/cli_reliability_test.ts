/**
 * Nothing lost, nothing silent (issue 21), end to end: unique output names, resume
 * semantics of `--skip-existing` with several targets, stale temporaries, the output folder
 * never read as input, symbolic-link loops, unsupported files counted, non-finite maps and
 * broken plugins failing only their image and method.
 *
 * @module
 */
import { join } from "node:path";
import { outputStem, stemCollisions } from "../cli/_output.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, rgbaPng } from "./_cli_corpus.ts";
import { type CliResult, gradual, ROOT } from "./_cli_run.ts";
import { encodePng } from "../io/mod.ts";

const M = ["--model", FIXTURE_MODEL, "--preprocess", "imagenet", "--backend", "cpu"];

function cli(args: string[], cwd = ROOT): Promise<CliResult> {
  return gradual(args, { cwd });
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gradual_rel_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("outputs: names that sanitise alike stay unique; --skip-existing does not skip a twin", async () => {
  await withTemp(async (dir) => {
    const png = await rgbaPng(20, 16);
    const inputs = ["café.png", "cafè.png", "a b.png", "a_b.png", "x.png", "x.PNG"];
    const long = "n".repeat(90);
    inputs.push(`${long}1.png`, `${long}2.png`);
    await Deno.mkdir(join(dir, "in"));
    for (const f of inputs) await Deno.writeFile(join(dir, "in", f), png);
    const out = join(dir, "out");
    const r = await cli(["compare", join(dir, "in"), ...M, "--methods", "grad-cam", "--out", out]);
    assertEquals(r.code, 0, r.stderr);
    const figures = (await names(out)).filter((n) => n.endsWith(".compare.png"));
    assertEquals(figures.length, inputs.length, `one figure per input: ${figures.join(" ")}`);
    // a new image whose name sanitises like an existing one is not skipped
    await Deno.writeFile(join(dir, "in", "cafe\u0301.png"), png);
    const again = await cli([
      "compare",
      join(dir, "in"),
      ...M,
      "--methods",
      "grad-cam",
      "--out",
      out,
      "--skip-existing",
    ]);
    assertEquals(again.code, 0, again.stderr);
    assert(again.stderr.includes(`1 image, 0 failed, ${inputs.length} skipped`), again.stderr);
    assertEquals((await names(out)).length, inputs.length + 1);
  });
});

Deno.test("outputs: a hash collision between two inputs is reported before anything is written", async () => {
  await withTemp(async (dir) => {
    // two folders whose x.png get the same stem (found by trying folder names)
    const seen = new Map<string, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const f = join(dir, `d${i}`, "x.png");
      const stem = outputStem(f);
      const other = seen.get(stem);
      if (other !== undefined) pair = [other, f];
      else seen.set(stem, f);
    }
    assertEquals(stemCollisions(pair), [pair]);
    const png = await rgbaPng(8, 8);
    for (const f of pair) {
      await Deno.mkdir(join(f, ".."), { recursive: true });
      await Deno.writeFile(f, png);
    }
    const out = join(dir, "out");
    const r = await cli(["explain", ...pair, ...M, "--out", out]);
    assertEquals(r.code, 1);
    assert(r.stderr.includes("same names"), r.stderr);
    assertEquals(await names(out), [], "nothing written");
  });
});

Deno.test("--skip-existing: an image is done only when all --target top3 outputs exist", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(24, 24));
    await Deno.writeFile(join(dir, "b.png"), await rgbaPng(30, 20));
    const out = join(dir, "out");
    const args = ["explain", join(dir, "a.png"), join(dir, "b.png"), ...M, "--out", out];
    const opts = ["--target", "top3", "--format", "npy", "--skip-existing"];
    const r = await cli([...args, ...opts]);
    assertEquals(r.code, 0, r.stderr);
    const all = await names(out);
    assertEquals(all.length, 6, all.join(" "));
    // as if killed after the first class of a.png
    const aFiles = all.filter((n) => n.startsWith("a_"));
    assertEquals(aFiles.length, 3);
    for (const n of aFiles.slice(1)) await Deno.remove(join(out, n));
    const again = await cli([...args, ...opts]);
    assertEquals(again.code, 0, again.stderr);
    assert(again.stderr.includes("1 image, 0 failed, 1 skipped"), again.stderr);
    assertEquals(await names(out), all);
  });
});

Deno.test("output folder: stale temporaries of ours are removed, fresh and foreign files kept", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(16, 16));
    const out = join(dir, "out");
    await Deno.mkdir(out);
    const pid = 4242;
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    const minutesAgo = new Date(Date.now() - 2 * 60_000);
    const files: Record<string, Date | undefined> = {
      [`.a.png.gradual-tmp-${pid}-0badf00d`]: hourAgo, // left by a killed process: stale
      [".old.png.gradual-tmp-deadbeef"]: hourAgo, // older naming: stale
      [`.b.png.gradual-tmp-${pid}-12345678`]: undefined, // being written: kept
      [`.c.png.gradual-tmp-${pid}-abcdef01`]: minutesAgo, // may still be written: kept
      ["notes.gradual-tmp-deadbeef"]: hourAgo, // not hidden, not ours: kept
      [".d.png.gradual-tmp-XYZ"]: hourAgo, // not our naming: kept
    };
    for (const [name, t] of Object.entries(files)) {
      await Deno.writeFile(join(out, name), new Uint8Array(3));
      if (t) await Deno.utime(join(out, name), t, t);
    }
    const r = await cli(["explain", join(dir, "a.png"), ...M, "--format", "npy", "--out", out]);
    assertEquals(r.code, 0, r.stderr);
    const left = (await names(out)).filter((n) => n.includes("gradual-tmp"));
    assertEquals(
      left,
      [
        `.b.png.gradual-tmp-${pid}-12345678`,
        `.c.png.gradual-tmp-${pid}-abcdef01`,
        ".d.png.gradual-tmp-XYZ",
        "notes.gradual-tmp-deadbeef",
      ].sort(),
    );
  });
});

Deno.test("explain .: the output folder inside the input folder is never read", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(16, 16));
    await Deno.writeFile(join(dir, "b.png"), await rgbaPng(18, 16));
    const counts: number[] = [];
    for (let run = 0; run < 3; run++) {
      const r = await cli(["explain", ".", ...M, "--format", "overlay"], dir);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stderr.includes("gradual: 2 images, 0 failed"), r.stderr);
      counts.push((await names(join(dir, "gradual-out"))).length);
    }
    assertEquals(counts, [2, 2, 2]);
    assert(!(await cli(["explain", "gradual-out", ...M], dir)).stderr.includes("0 failed"));
  });
});

Deno.test("folders: symbolic-link loops are skipped with a warning, unsupported files counted", async () => {
  await withTemp(async (dir) => {
    const inDir = join(dir, "in");
    await Deno.mkdir(join(inDir, "sub"), { recursive: true });
    await Deno.writeFile(join(inDir, "a.png"), await rgbaPng(16, 16));
    await Deno.writeFile(join(inDir, "sub", "b.png"), await rgbaPng(16, 12));
    await Deno.writeTextFile(join(inDir, "notes.txt"), "not an image\n");
    await Deno.writeFile(join(inDir, "sub", "anim.gif"), new Uint8Array([71, 73, 70]));
    await Deno.symlink("self.png", join(inDir, "self.png"));
    await Deno.symlink("loop_b", join(inDir, "loop_a"));
    await Deno.symlink("loop_a", join(inDir, "loop_b"));
    await Deno.symlink("..", join(inDir, "sub", "up"));
    const out = join(dir, "out");
    const r = await cli(["explain", inDir, ...M, "--format", "npy", "--out", out]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes("2 images, 0 failed"), r.stderr);
    assert(r.stderr.includes("2 unsupported files in folders skipped"), r.stderr);
    for (const link of ["self.png", "loop_a", "loop_b", "sub/up"]) {
      assert(
        r.stderr.includes(`warning: ${join(inDir, link)}: symbolic link loop`),
        `${link}: ${r.stderr}`,
      );
    }
    assertEquals((await names(out)).length, 2);
  });
});

/** A plugin file: grad-cam whose maps go through `body` (a function of the maps tensor). */
function pluginSource(name: string, body: string): string {
  const gradCam = new URL("../plugins/grad_cam.ts", import.meta.url).href;
  return `import { gradCam } from "${gradCam}";
export default {
  ...gradCam,
  name: "${name}",
  aliases: [],
  description: "test plugin",
  async run(ctx) {
    const m = await gradCam.run(ctx);
    const maps = ((t) => (${body}))(m.maps);
    if (maps !== m.maps) m.maps.dispose();
    return { ...m, maps };
  },
};
`;
}

Deno.test("non-finite maps and broken plugins fail only their image and method, named", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(16, 16));
    await Deno.writeFile(join(dir, "b.png"), await rgbaPng(20, 16));
    const plugins: Record<string, string> = {
      "nan-cam": "t.mul(NaN)",
      "rank-cam": "t.expandDims(-1)",
      "batch-cam": "t.concat(t)",
    };
    const args = ["explain", join(dir, "a.png"), join(dir, "b.png"), ...M];
    for (const [name, body] of Object.entries(plugins)) {
      const file = join(dir, `${name}.ts`);
      await Deno.writeTextFile(file, pluginSource(name, body));
      const out = join(dir, `out_${name}`);
      const r = await cli([
        ...args,
        "--plugin",
        file,
        "--method",
        `grad-cam,${name}`,
        "--extrapolate",
        "none",
        "--format",
        "npy,json",
        "--out",
        out,
      ]);
      assertEquals(r.code, 1, `${name}: ${r.stderr}`);
      assert(r.stderr.includes("2 images, 2 failed"), `${name}: ${r.stderr}`);
      const lines = r.stderr.split("\n").filter((l) => l.includes(name) && !l.includes(" images"));
      assertEquals(lines.length, 2, `${name}: one line per image:\n${r.stderr}`);
      for (const l of lines) {
        assert(l.startsWith("gradual: "), l);
        assert(!l.includes("undefined"), l);
      }
      if (name === "nan-cam") assert(lines[0].includes("not finite"), lines[0]);
      else assert(lines[0].includes(`method '${name}'`) && lines[0].includes("contract"), lines[0]);
      // grad-cam's outputs are written for both images; nothing for the broken method
      const written = await names(out);
      assertEquals(written.filter((n) => n.includes(".grad-cam.")).length, 4, written.join(" "));
      assertEquals(written.filter((n) => n.includes(name)).length, 0, written.join(" "));
      for (const n of written.filter((n) => n.endsWith(".json"))) {
        const rec = JSON.parse(await Deno.readTextFile(join(out, n)));
        assert(Number.isFinite(rec.map.min) && Number.isFinite(rec.map.max), n);
      }
    }
  });
});

Deno.test("empty and non-finite maps: the paper's gradual on a black image is empty (a warning), NaN weights fail with one line each", async () => {
  await withTemp(async (dir) => {
    const black = join(dir, "black.png");
    const d = new Uint8Array(64 * 64 * 4).map((_, i) => (i % 4 === 3 ? 255 : 0));
    await Deno.writeFile(black, await encodePng(64, 64, d));
    const out = join(dir, "out");
    const r = await cli([
      "explain",
      black,
      "--model",
      "shapes-resnet",
      "--method",
      "grad-cam",
      "--extrapolate",
      "gradual,none",
      "--format",
      "npy,json",
      "--out",
      out,
    ]);
    // A black image gives a legitimately empty map: finite, written, with one warning line.
    assertEquals(r.code, 0, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.includes("grad-cam+gradual"));
    assert(line !== undefined && line.startsWith(`gradual: ${black}: `), r.stderr);
    assert(line.includes("is empty"), line);
    assert(r.stderr.includes("1 image, 0 failed"), r.stderr);
    const written = await names(out);
    assertEquals(
      written.filter((n) => /\.grad-cam(\+gradual)?\./.test(n)).length,
      4,
      written.join(" "),
    );
    for (const n of written.filter((n) => n.endsWith(".json"))) {
      const rec = JSON.parse(await Deno.readTextFile(join(out, n)));
      assert(Number.isFinite(rec.map.min) && Number.isFinite(rec.map.max), n);
    }
    // a model with NaN weights: every method of every image fails, each with a line
    const nanDir = join(dir, "nan_model");
    await Deno.mkdir(nanDir);
    const json = JSON.parse(await Deno.readTextFile(FIXTURE_MODEL));
    await Deno.writeTextFile(join(nanDir, "model.json"), JSON.stringify(json));
    const shard = await Deno.readFile(join(FIXTURE_MODEL, "..", json.weightsManifest[0].paths[0]));
    await Deno.writeFile(
      join(nanDir, json.weightsManifest[0].paths[0]),
      new Uint8Array(new Float32Array(shard.length / 4).fill(NaN).buffer),
    );
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(16, 16));
    const n = await cli([
      "explain",
      join(dir, "a.png"),
      "--model",
      join(nanDir, "model.json"),
      "--preprocess",
      "imagenet",
      "--backend",
      "cpu",
      "--out",
      join(dir, "out_nan"),
    ]);
    assertEquals(n.code, 1, n.stderr);
    assert(n.stderr.includes("not finite"), n.stderr);
    assert(n.stderr.includes("1 image, 1 failed"), n.stderr);
    assertEquals(await names(join(dir, "out_nan")), []);
  });
});

Deno.test("--max-pixels: an image over the limit fails from its header, the others go on", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(join(dir, "big.png"), await rgbaPng(50, 40));
    await Deno.writeFile(join(dir, "small.png"), await rgbaPng(20, 20));
    const args = ["explain", dir, ...M, "--format", "npy", "--out", join(dir, "out")];
    const r = await cli([...args, "--max-pixels", "1000"]);
    assertEquals(r.code, 1, r.stderr);
    assert(
      r.stderr.includes(
        `gradual: ${
          join(dir, "big.png")
        }: image is 50x40 (2000 pixels), over the limit of 1000 pixels`,
      ),
      r.stderr,
    );
    assert(r.stderr.includes("2 images, 1 failed"), r.stderr);
    assertEquals((await cli([...args, "--max-pixels", "2000"])).code, 0);
    const bad = await cli([...args, "--max-pixels", "lots"]);
    assertEquals(bad.code, 2);
    assert(bad.stderr.startsWith("gradual: --max-pixels must be an integer"), bad.stderr);
  });
});
