/**
 * Plugins are confined (issue 21): under `deno task cli` a plugin cannot read files outside
 * the run's inputs, model, project and output folder, cannot read the environment, cannot
 * write outside the output folder, cannot import remote modules (not even from the hosts
 * Deno allows by default), and running the CLI does not modify the project (`deno.lock`).
 *
 * @module
 */
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { confinementFor } from "../cli/_confine.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, rgbaPng } from "./_cli_corpus.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The `deno run` flags of the `cli` task, as a user gets them. */
function taskFlags(): string[] {
  const words = denoJson.tasks.cli.split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words.at(-1), "cli/confined.ts");
  return words.slice(2, -1);
}

async function runTask(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...taskFlags(), join(ROOT, "cli/confined.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", GRADUAL_TEST_SECRET: "s3cret" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** A grad-cam plugin that tries what a hostile plugin would, and reports on stderr. */
function probePlugin(outside: string): string {
  const gradCam = new URL("../plugins/grad_cam.ts", import.meta.url).href;
  return `import { gradCam } from "${gradCam}";
const probe = [];
const attempt = async (what, fn) => {
  try { await fn(); probe.push(what + ":ALLOWED"); }
  catch (e) {
    const m = String(e.message);
    probe.push(what + ":" + (/import access|--no-remote|lockfile is out of date/.test(m) ? "denied" : e.name));
  }
};
await attempt("read-passwd", () => Deno.readTextFile("/etc/passwd"));
await attempt("read-outside", () => Deno.readTextFile(${
    JSON.stringify(join(outside, "secret.txt"))
  }));
await attempt("env", () => Deno.env.get("GRADUAL_TEST_SECRET") ?? Deno.env.toObject());
await attempt("write-outside", () => Deno.writeTextFile(${
    JSON.stringify(join(outside, "escaped.txt"))
  }, "x"));
await attempt("write-project", () => Deno.writeTextFile(${
    JSON.stringify(join(ROOT, "escaped.txt"))
  }, "x"));
// computed specifiers: not in the module graph, so only the permission check stops them
const at = (...p) => p.join("/");
await attempt("import-esm", () => import(at("https://esm.sh", "left-pad@1.3.0")));
await attempt("import-jsr", () => import(at("https://jsr.io", "@std/path/1.0.0/mod.ts")));
await attempt("import-npm", () => import(at("npm:left-pad@1.3.0"))); // not in deno.lock
await attempt("net", () => fetch("https://example.com/"));
await attempt("run", () => new Deno.Command("true").output());
console.error("gradual: probe " + probe.join(" "));
export default { ...gradCam, name: "probe-cam", aliases: [] };
`;
}

Deno.test("deno task cli: a plugin reaches only this run's files; the checkout is unchanged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gradual_confine_" });
  try {
    const inputs = join(dir, "inputs"), outside = join(dir, "outside"), out = join(dir, "out");
    const pluginDir = join(dir, "plugin");
    for (const d of [inputs, outside, pluginDir]) await Deno.mkdir(d);
    await Deno.writeTextFile(join(outside, "secret.txt"), "secret\n");
    await Deno.writeFile(join(inputs, "a.png"), await rgbaPng(20, 20));
    const plugin = join(pluginDir, "probe.ts");
    await Deno.writeTextFile(plugin, probePlugin(outside));
    const lockBefore = await Deno.readFile(join(ROOT, "deno.lock"));
    const r = await runTask([
      "explain",
      inputs,
      "--model",
      FIXTURE_MODEL,
      "--preprocess",
      "imagenet",
      "--backend",
      "cpu",
      "--plugin",
      plugin,
      "--method",
      "probe-cam",
      "--format",
      "npy",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.startsWith("gradual: probe "));
    assert(line !== undefined, r.stderr);
    assert(!line.includes("ALLOWED"), line);
    for (
      const what of [
        "read-passwd",
        "read-outside",
        "env",
        "write-outside",
        "write-project",
        "net",
        "run",
      ]
    ) {
      assert(line.includes(`${what}:NotCapable`), `${what}: ${line}`);
    }
    assert(line.includes("import-esm:denied") && line.includes("import-jsr:denied"), line);
    assertEquals((await Array.fromAsync(Deno.readDir(out))).length, 1, "the map was written");
    assertEquals(await Deno.readFile(join(ROOT, "deno.lock")), lockBefore, "deno.lock unchanged");
    await Deno.stat(join(outside, "escaped.txt")).then(
      () => assert(false, "wrote outside"),
      () => undefined,
    );
    // a URL plugin from a host Deno allows by default is refused by the task, in one line
    const url = await runTask([
      "explain",
      inputs,
      "--model",
      FIXTURE_MODEL,
      "--plugin",
      "https://esm.sh/x.ts",
      "--out",
      out,
    ]);
    assertEquals(url.code, 1);
    assert(
      /^gradual: https:\/\/esm\.sh\/x\.ts: .*import access/.test(url.stderr.trim()),
      url.stderr,
    );
    // a literal remote import in a plugin does not get into the lock either
    const literal = join(pluginDir, "literal.ts");
    await Deno.writeTextFile(
      literal,
      `export { default } from "${join(pluginDir, "probe.ts")}";\n` +
        `export const pad = () => import("https://esm.sh/left-pad@1.3.0");\n`,
    );
    await runTask(["explain", inputs, "--model", FIXTURE_MODEL, "--plugin", literal, "--out", out]);
    assertEquals(await Deno.readFile(join(ROOT, "deno.lock")), lockBefore, "deno.lock unchanged");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("confinement: read the inputs, model, plugins, output; write only the output", () => {
  const c = confinementFor(
    [
      "explain",
      "photos/",
      "shots/**/*.jpg",
      "--model",
      "m/model.json",
      "--labels=l.txt",
      "--plugin",
      "p/x.ts",
      "--plugin",
      "https://plugins.example/y.ts",
      "-o",
      "maps",
      "--skip-existing",
      "one.png",
    ],
    "/repo",
  );
  const abs = (p: string): string => join(Deno.cwd(), p);
  assert(c.read !== "inherit");
  for (
    const p of [
      "/repo",
      abs("photos"),
      abs("shots"),
      abs("m"),
      abs("l.txt"),
      abs("p"),
      abs("maps"),
      abs("one.png"),
    ]
  ) {
    assert(c.read.includes(p), `${p} not readable: ${c.read}`);
  }
  assertEquals(c.write, [abs("maps")]);
  assertEquals(c.import, ["plugins.example"]);
  assertEquals(c.env, ["GRADUAL_DEBUG", "IMAGESCRIPT_WASM_SIMD"]);
  assertEquals(confinementFor(["explain", "x.png"], "/repo").write, [abs("gradual-out")]);
  assertEquals(
    confinementFor(["explain", "x.png", "--allow-outside-paths"], "/repo").read,
    "inherit",
  );
  const ev = confinementFor(["eval", "--dataset", "voc/VOC2007", "--results", "r.jsonl"], "/repo");
  assertEquals(ev.write, [abs("r.jsonl")]);
  assert(ev.read !== "inherit" && ev.read.includes(abs("voc/VOC2007")));
});
