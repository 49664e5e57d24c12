/**
 * Plugin options from the command line (issue 19): `--opt` is validated once in the
 * runner's requests step, before any image is read (one line, exit 2, no output, not once
 * per image); `--opt NAME.layer=L` sets each method's request layer (by name or alias) in
 * the step `explain`, `compare` and `eval` share; the default extrapolator is left off maps
 * already at input resolution, with a note; every command's `--help` lists the options.
 *
 * @module
 */
import { join } from "node:path";
import "../plugins/mod.ts";
import type { ExplainRequest } from "../core/explain.ts";
import { type Command, runCommand } from "../cli/_runner.ts";
import { COMMON_FLAGS } from "../cli/_common.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL, rgbaPng } from "./_cli_corpus.ts";
import { gradual } from "./_cli_run.ts";

const M = ["--model", FIXTURE_MODEL, "--backend", "cpu", "--format", "npy"];

async function withImages(fn: (dir: string, images: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gradual_options_" });
  try {
    await Deno.mkdir(join(dir, "in"));
    for (let i = 0; i < 3; i++) {
      await Deno.writeFile(join(dir, "in", `${i}.png`), await rgbaPng(40, 32));
    }
    await fn(dir, join(dir, "in"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("explain: a bad --opt stops the run before any image, in one line", async () => {
  await withImages(async (dir, images) => {
    const out = join(dir, "out");
    const cases: [string[], string][] = [
      [
        ["--extrapolate", "gradual", "--opt", "gradual.statistics=bogus"],
        "gradual: extrapolator 'gradual': option 'statistics' must be image|batch, got 'bogus'",
      ],
      [
        ["--opt", "inplaceRelu=wrong"],
        "gradual: method 'grad-cam': option 'inplaceRelu' must be none|torchray|pgc, got 'wrong'",
      ],
      [
        ["--opt", "nonsense=1"],
        "gradual: option 'nonsense' is not an option of grad-cam (grad-cam takes raw, inplaceRelu)",
      ],
      [
        ["--method", "grad-cam,gradient", "--opt", "steps=3"],
        "gradual: option 'steps' is not an option of grad-cam, gradient (grad-cam takes raw, " +
        "inplaceRelu; gradient takes reduce); it is an option of integrated-gradients",
      ],
      [
        ["--method", "c-eb", "--opt", "c-eb.contrastLayer=features_99"],
        "did you mean 'features_9'",
      ],
      [
        ["--extrapolate", "gradual+", "--opt", "gradual.statistics=batch"],
        "gradual: --opt gradual.statistics: 'gradual' does not run here",
      ],
    ];
    for (const [args, needle] of cases) {
      const r = await gradual(["explain", images, ...M, "--out", out, ...args]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr); // once, not once per image
      assert(lines[0].includes(needle), `'${lines[0]}' lacks '${needle}'`);
      assert(!(await exists(out)), "nothing written");
    }
  });
});

Deno.test("explain: --opt NAME.layer= sets each method's layer; the default extrapolator is left off input-resolution maps", async () => {
  await withImages(async (dir, images) => {
    const records = async (...args: string[]) => {
      const r = await gradual([
        "explain",
        images,
        ...M,
        "--json",
        "--out",
        join(dir, "o"),
        ...args,
      ]);
      assertEquals(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      return { rows, stderr: r.stderr };
    };
    const { rows } = await records(
      "--method",
      "grad-cam,c-eb",
      "--extrapolate",
      "none",
      "--layer",
      "features_4",
      "--opt",
      "grad-cam.layer=features_6",
      "--opt",
      "contrastive-excitation-backprop.layer=features_9",
      "--quiet",
    );
    const layers = new Set(rows.map((r) => `${r.method}@${r.layer}`));
    assertEquals([...layers].sort(), [
      "contrastive-excitation-backprop@features_9",
      "grad-cam@features_6",
    ]);
    const dflt = await records("--method", "gradient,grad-cam");
    assert(
      dflt.stderr.includes(
        "note: gradient gives maps at input resolution ('features_0_input'): the default " +
          "extrapolator gradual+ is not applied",
      ),
      dflt.stderr,
    );
    const kinds = new Set(dflt.rows.map((r) => `${r.method}+${r.extrapolator}`));
    assertEquals([...kinds].sort(), ["grad-cam+gradual+", "gradient+null"]);
    const asked = await records("--method", "gradient", "--extrapolate", "gradual+", "--quiet");
    assertEquals(new Set(asked.rows.map((r) => r.extrapolator)), new Set(["gradual+"]));
  });
});

Deno.test("the runner's one requests step: per-method layers and options for every command", async () => {
  // A command that records what the runner gives it (explain, compare and eval run the same step).
  let seen: readonly ExplainRequest[] = [];
  const probe: Command<{ methods: string[] }> = {
    help: "probe",
    flags: { ...COMMON_FLAGS },
    prepare: () => Promise.resolve({ methods: ["grad-cam", "c-eb", "gradient"] }),
    select: (s) => ({ methods: s.methods, extrapolators: ["none"], target: "top1" }),
    run: (ctx) => {
      seen = ctx.requests;
      return Promise.resolve(0);
    },
  };
  const code = await runCommand(probe, [
    "--model",
    FIXTURE_MODEL,
    "--backend",
    "cpu",
    "--quiet",
    "--layer",
    "features_4",
    "--opt",
    "grad-cam.layer=features_6",
    "--opt",
    "c-eb.layer=features_9",
    "--opt",
    "raw=true",
    "--opt",
    "reduce=sum",
  ]);
  assertEquals(code, 0);
  assertEquals(seen.map((r) => [r.method, r.layer, r.methodOptions]), [
    ["grad-cam", "features_6", { raw: true }],
    ["c-eb", "features_9", {}],
    ["gradient", "features_4", { reduce: "sum" }],
  ]);
});

Deno.test("every command's --help lists every plugin's options", async () => {
  for (const cmd of ["explain", "compare", "eval", "list"]) {
    const r = await gradual([cmd, "--help"]);
    assertEquals(r.code, 0, r.stderr);
    for (const s of ["inplaceRelu", "none|torchray|pgc", "statistics", "exponent", "riemann"]) {
      assert(r.stdout.includes(s), `${cmd} --help lacks ${s}`);
    }
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
