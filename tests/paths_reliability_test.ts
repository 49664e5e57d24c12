/**
 * Files a model or a dataset points at (issue 21): weights shards and dataset images are
 * read only when they are regular files inside their own folder (unless allowed), no bigger
 * than declared; devices, FIFOs, `../` and absolute paths are refused at once, without
 * hanging or reading; a malformed VOC annotation leaves out only its image.
 *
 * @module
 */
import { join } from "node:path";
import { loadLayersModel, ModelLoadError } from "../core/model_io.ts";
import { loadDataset } from "../datasets/load.ts";
import { loadPairSamples } from "../datasets/samples.ts";
import { DatasetError } from "../datasets/errors.ts";
import { encodePng } from "../io/mod.ts";
import "../plugins/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { evalCommand } from "../cli/eval.ts";
import { generateScene } from "../models/scenes.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL } from "./_cli_corpus.ts";

const FIXTURE_DIR = join(FIXTURE_MODEL, "..");

await initBackend({ backend: "wasm", threads: 1 });

async function modelWithShard(dir: string, shardPath: string): Promise<string> {
  const json = JSON.parse(await Deno.readTextFile(FIXTURE_MODEL));
  json.weightsManifest[0].paths = [shardPath];
  const file = join(dir, "model.json");
  await Deno.writeTextFile(file, JSON.stringify(json));
  return file;
}

async function loadFails(file: string, needle: string, allow = false): Promise<string> {
  try {
    const m = await loadLayersModel(file, { allowOutsideFolder: allow });
    m.dispose();
  } catch (e) {
    assert(e instanceof ModelLoadError, `not a ModelLoadError: ${e}`);
    assert(e.message.includes(needle), `'${e.message}' does not mention '${needle}'`);
    return e.message;
  }
  throw new Error(`expected a ModelLoadError mentioning '${needle}'`);
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gradual_paths_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assertEquals(r.code, 0, "mkfifo");
}

Deno.test("model shards: only regular files in the model's folder, no bigger than declared", async () => {
  await withTemp(async (dir) => {
    const shard = await Deno.readFile(join(FIXTURE_DIR, "group1-shard1of1.bin"));
    const inner = join(dir, "model");
    await Deno.mkdir(inner);
    await Deno.writeFile(join(dir, "outside.bin"), shard);
    // ../ and absolute paths are refused unless allowed
    const up = await modelWithShard(inner, "../outside.bin");
    await loadFails(up, "outside the model's folder");
    const m = await loadLayersModel(up, { allowOutsideFolder: true });
    m.dispose();
    const passwd = await modelWithShard(inner, "/etc/passwd");
    const msg = await loadFails(passwd, "outside the model's folder");
    const size = (await Deno.stat("/etc/passwd").catch(() => undefined))?.size;
    if (size !== undefined) assert(!msg.includes(String(size)), `size leaked: ${msg}`);
    // a device, a FIFO, a folder: refused without reading (no hang, no unbounded growth)
    await Deno.symlink("/dev/zero", join(inner, "zero.bin"));
    await loadFails(await modelWithShard(inner, "zero.bin"), "zero.bin': not a regular file");
    await mkfifo(join(inner, "fifo.bin"));
    await loadFails(await modelWithShard(inner, "fifo.bin"), "fifo.bin': not a regular file");
    await Deno.mkdir(join(inner, "folder.bin"));
    await loadFails(await modelWithShard(inner, "folder.bin"), "not a regular file");
    // bigger than the manifest declares: refused from its size
    const big = new Uint8Array(shard.length + 4096);
    big.set(shard);
    await Deno.writeFile(join(inner, "big.bin"), big);
    await loadFails(await modelWithShard(inner, "big.bin"), `more than the ${shard.length}`);
    // the model.json itself must be a regular file too
    await mkfifo(join(inner, "fifo.json"));
    await loadFails(join(inner, "fifo.json"), "not a regular file");
    // the right shard still loads
    await Deno.writeFile(join(inner, "ok.bin"), shard);
    const ok = await loadLayersModel(await modelWithShard(inner, "ok.bin"));
    ok.dispose();
  });
});

Deno.test("datasets: image paths stay in the dataset folder; devices and FIFOs are refused", async () => {
  await withTemp(async (dir) => {
    const ds = join(dir, "ds");
    await Deno.mkdir(ds);
    const png = await encodePng(8, 8, new Uint8Array(8 * 8 * 4).fill(200));
    await Deno.writeFile(join(dir, "secret.png"), png);
    await Deno.writeFile(join(dir, "secret2.png"), png);
    await Deno.writeFile(join(ds, "good.png"), png);
    await mkfifo(join(ds, "fifo.png"));
    const entries = [
      { image: "good.png", class: 0, box: [0, 0, 4, 4] },
      { image: "../secret.png", class: 0, box: [0, 0, 4, 4] },
      { image: join(dir, "secret2.png"), class: 0, box: [0, 0, 4, 4] },
      { image: "/dev/urandom", class: 0, box: [0, 0, 4, 4] },
      { image: "fifo.png", class: 0, box: [0, 0, 4, 4] },
    ];
    const manifest = join(ds, "labels.json");
    await Deno.writeTextFile(manifest, JSON.stringify(entries));
    const d = loadDataset(manifest);
    assertEquals(d.images.map((i) => i.key), ["good.png", "fifo.png"]);
    assertEquals(d.skipped?.length, 3);
    for (const s of d.skipped ?? []) {
      assert(s.problem.includes("leads outside the dataset folder"), s.problem);
      assertEquals(s.file, manifest);
    }
    // allowed explicitly: outside paths are kept, but a device is still no image
    const all = loadDataset(manifest, { allowOutside: true });
    assertEquals(all.images.length, 5);
    const opts = {
      inputSize: [8, 8, 3] as const,
      preprocess: "unit" as const,
      format: "manifest" as const,
    };
    for (const img of all.images) {
      const pair = {
        key: `${img.key}|0`,
        image: img,
        category: "0",
        candidates: [0],
        objects: img.objects,
        otherClasses: 0,
      };
      const run = loadPairSamples(img, [pair], opts);
      if (img.key === "/dev/urandom" || img.key === "fifo.png") {
        try {
          await run;
          throw new Error(`${img.key} was read`);
        } catch (e) {
          assert(e instanceof DatasetError, String(e));
          assertEquals(e.problem, "not a regular file", img.key);
        }
      } else assertEquals((await run).samples.length, 1, img.key);
    }
  });
});

Deno.test("voc: one malformed annotation leaves out its image, with a message", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(join(dir, "Annotations"));
    await Deno.mkdir(join(dir, "JPEGImages"));
    const xml = (name: string): string =>
      `<annotation><filename>${name}.jpg</filename><size><width>8</width><height>8</height>` +
      `<depth>3</depth></size><object><name>dog</name><difficult>0</difficult><bndbox>` +
      `<xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>`;
    await Deno.writeTextFile(join(dir, "Annotations", "a.xml"), xml("a"));
    await Deno.writeTextFile(
      join(dir, "Annotations", "b.xml"),
      "<annotation><object></annotation>",
    );
    await Deno.writeTextFile(join(dir, "Annotations", "c.xml"), xml("c"));
    await Deno.writeTextFile(
      join(dir, "Annotations", "d.xml"),
      xml("d").replace("<filename>d.jpg", "<filename>../../d.jpg"),
    );
    const ds = loadDataset(dir);
    assertEquals(ds.images.map((i) => i.key), ["a", "c"]);
    assertEquals(ds.skipped?.length, 2);
    const [bad, outside] = ds.skipped!;
    assertEquals(bad.file, join(dir, "Annotations", "b.xml"));
    assert(
      bad.problem.startsWith("malformed XML") && bad.problem.endsWith("image skipped"),
      bad.problem,
    );
    assert(outside.problem.includes("leads outside the dataset folder"), outside.problem);
  });
});

Deno.test("gradual eval: a malformed VOC annotation is reported, the other images evaluated", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(join(dir, "Annotations"));
    await Deno.mkdir(join(dir, "JPEGImages"));
    const scene = generateScene(7, { size: 64, label: 0 });
    const rgba = new Uint8Array(64 * 64 * 4);
    for (let i = 0; i < 64 * 64; i++) {
      for (let k = 0; k < 3; k++) rgba[4 * i + k] = Math.round(scene.image[3 * i + k] * 255);
      rgba[4 * i + 3] = 255;
    }
    const png = await encodePng(64, 64, rgba);
    const [x0, y0, x1, y1] = scene.box.map((v) => Math.round(v));
    const xml = (id: string): string =>
      `<annotation><filename>${id}.jpg</filename><size><width>64</width><height>64</height>` +
      `<depth>3</depth></size><object><name>${scene.className}</name><difficult>0</difficult>` +
      `<bndbox><xmin>${x0 + 1}</xmin><ymin>${y0 + 1}</ymin><xmax>${x1}</xmax><ymax>${y1}</ymax>` +
      `</bndbox></object></annotation>`;
    for (const id of ["a", "c"]) {
      await Deno.writeTextFile(join(dir, "Annotations", `${id}.xml`), xml(id));
      await Deno.writeFile(join(dir, "JPEGImages", `${id}.jpg`), png);
    }
    await Deno.writeTextFile(join(dir, "Annotations", "b.xml"), "<annotation><object>");
    await Deno.writeFile(join(dir, "JPEGImages", "b.jpg"), png);
    const err: string[] = [];
    const out: string[] = [];
    const error = console.error, log = console.log;
    console.error = (...a: unknown[]) => void err.push(a.join(" "));
    console.log = (...a: unknown[]) => void out.push(a.join(" "));
    let code: number;
    try {
      code = await evalCommand([
        "--dataset",
        dir,
        "--model",
        "shapes-vgg",
        "--methods",
        "grad-cam",
        "--extrapolate",
        "none",
        "--steps",
        "4",
        "--threads",
        "1",
        "--quiet",
      ]);
    } finally {
      console.error = error;
      console.log = log;
    }
    const line = err.find((l) => l.includes("b.xml"));
    assert(
      line?.startsWith(`gradual: ${join(dir, "Annotations", "b.xml")}: malformed XML`),
      err.join("\n"),
    );
    assert(line !== undefined && line.endsWith("image skipped"), line);
    assertEquals(err.length, 1, err.join("\n"));
    assertEquals(code, 1, "an image was left out: exit status 1");
    assert(out.join("\n").includes(": 2 (image, class) pairs of"), out.join("\n"));
  });
});
