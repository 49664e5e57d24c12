/**
 * The one command runner (`cli/_runner.ts`): method names are resolved only once the
 * plugins are loaded, so a plugin whose name contains `+` (`grad-norm++`) runs in
 * `explain`, `compare` and `eval`, alone and with an extrapolator.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, pngSize, rgbaPng } from "./_cli_corpus.ts";
import { type CliResult, gradual } from "./_cli_run.ts";

const M = ["--model", FIXTURE_MODEL, "--backend", "cpu"];

/** `grad-norm++`: Grad-CAM under a name with `+` characters (so its maps equal Grad-CAM's). */
function plusPlugin(): string {
  const gradCam = new URL("../plugins/grad_cam.ts", import.meta.url).href;
  return `import { gradCam } from "${gradCam}";
export default { ...gradCam, name: "grad-norm++", aliases: [], description: "Grad-CAM, renamed" };
`;
}

async function withPlugin(fn: (dir: string, plugin: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gradual_runner_" });
  try {
    const plugin = join(dir, "grad_norm_pp.ts");
    await Deno.writeTextFile(plugin, plusPlugin());
    await Deno.writeFile(join(dir, "a.png"), await rgbaPng(40, 32));
    await fn(dir, plugin);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ok(r: CliResult, what: string): void {
  assertEquals(r.code, 0, `${what}: ${r.stderr}`);
  assert(!/unknown method|not registered/.test(r.stderr), `${what}: ${r.stderr}`);
}

Deno.test("explain: a plugin named grad-norm++ runs, alone and with each extrapolator", async () => {
  await withPlugin(async (dir, plugin) => {
    const out = join(dir, "out");
    const r = await gradual([
      "explain",
      join(dir, "a.png"),
      ...M,
      "--plugin",
      plugin,
      "--method",
      "grad-cam,grad-norm++,grad-norm+++gradual",
      "--extrapolate",
      "gradual+,none",
      "--format",
      "npy",
      "--json",
      "--out",
      out,
    ]);
    ok(r, "explain");
    const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const variants = records.map((x) => `${x.method}|${x.extrapolator}`).sort();
    assertEquals(variants, [
      "grad-cam|gradual+",
      "grad-cam|null",
      "grad-norm++|gradual",
      "grad-norm++|gradual+",
      "grad-norm++|null",
    ]);
    // the renamed Grad-CAM gives Grad-CAM's maps, byte for byte
    const npy = (method: string, ex: string | null): Promise<Uint8Array> => {
      const rec = records.find((x) => x.method === method && x.extrapolator === ex);
      return Deno.readFile(rec.outputs.npy);
    };
    for (const ex of ["gradual+", null]) {
      assertEquals(await npy("grad-norm++", ex), await npy("grad-cam", ex), String(ex));
    }
  });
});

Deno.test("compare: a plugin named grad-norm++ gets its panels, alone and + gradual", async () => {
  await withPlugin(async (dir, plugin) => {
    const figure = async (methods: string, out: string): Promise<[number, number]> => {
      const r = await gradual([
        "compare",
        join(dir, "a.png"),
        ...M,
        "--plugin",
        plugin,
        "--methods",
        methods,
        "--out",
        join(dir, out),
      ]);
      ok(r, `compare ${methods}`);
      const names = [...Deno.readDirSync(join(dir, out))].map((e) => e.name);
      assertEquals(names.length, 1, names.join(" "));
      assert(names[0].endsWith(".compare.png"), names[0]);
      return pngSize(await Deno.readFile(join(dir, out, names[0])));
    };
    // as many panels as the same figure of Grad-CAM (input + 2)
    assertEquals(
      await figure("grad-norm++,grad-norm+++gradual", "plugin"),
      await figure("grad-cam,grad-cam+gradual", "builtin"),
    );
  });
});

Deno.test("eval: a plugin named grad-norm++ is evaluated like the Grad-CAM it wraps", async () => {
  await withPlugin(async (_dir, plugin) => {
    const r = await gradual([
      "eval",
      ...M,
      "--plugin",
      plugin,
      "--methods",
      "grad-cam,grad-norm++",
      "--extrapolate",
      "none",
      "--n",
      "3",
      "--steps",
      "2",
      "--json",
      "--quiet",
    ]);
    ok(r, "eval");
    const rows: { method: string; msPerImage?: number }[] = JSON.parse(r.stdout).rows;
    assertEquals(rows.map((x) => x.method), ["grad-cam", "grad-norm++", "centre-baseline"]);
    const figures = (x: { msPerImage?: number }): unknown => ({ ...x, method: 0, msPerImage: 0 });
    assertEquals(figures(rows[1]), figures(rows[0]));
  });
});
