/**
 * The browser playground in a real browser: `web/headless.ts` (run as a subprocess, since
 * playwright-core needs more permissions than the test task grants) builds and serves the
 * page, loads it in the system Chromium (headless, wasm backend), runs Grad-CAM and Gradual
 * Grad-CAM on a bundled sample with the built-in model, and reports what happened. This test
 * checks that the page's maps equal the ones `explainMany` computes here in Deno for the same
 * input (max abs difference 1e-4), that no request left localhost, that the console had no
 * errors, and that the figure download is a PNG.
 *
 * Skipped, with a message, when no Chromium is installed (`apt-get install -y chromium`).
 * The server's own checks (headers, types, refused paths) run without a browser.
 */
import { assert, assertEquals } from "./_assert.ts";
import { initBackend } from "../core/backend.ts";
import { explainMany } from "../core/explain.ts";
import { prepareInput, type PreprocessPreset } from "../core/image.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { tf } from "../core/tensor.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";
import "../plugins/mod.ts";
import { findChromium, type HeadlessReport } from "../web/browser.ts";
import { handle } from "../web/serve.ts";

const CHROMIUM = findChromium();
const ROOT = new URL("../", import.meta.url);
const TOLERANCE = 1e-4;

if (CHROMIUM === null) {
  console.warn(
    "web_test: SKIPPED, no Chromium found (set GRADUAL_CHROMIUM or run " +
      "`sudo apt-get install -y chromium` on Debian/Ubuntu)",
  );
}

function exists(u: URL): boolean {
  try {
    return Deno.statSync(u).isFile;
  } catch {
    return false;
  }
}

/** The built-in model when it is trained, else the development fixture. */
function pickModel(): { name: string; url: URL; preprocess: PreprocessPreset } {
  const builtin = BUILTIN_MODELS["shapes-vgg"];
  if (exists(builtin.modelUrl)) {
    return { name: builtin.name, url: builtin.modelUrl, preprocess: builtin.preprocess };
  }
  return {
    name: "vgg_tiny",
    url: new URL("tests/fixtures/models/vgg_tiny/tfjs/model.json", ROOT),
    preprocess: "imagenet",
  };
}

function pickSample(): string {
  const list = JSON.parse(
    Deno.readTextFileSync(new URL("models/samples/samples.json", ROOT)),
  ) as { file: string }[];
  return list[0].file;
}

Deno.test("playground server: isolation headers, content types, refused paths", async () => {
  const get = (path: string, method = "GET") =>
    handle(new Request(`http://127.0.0.1:1${path}`, { method }));
  const page = await get("/web/");
  assertEquals(page.status, 200);
  assertEquals(page.headers.get("cross-origin-opener-policy"), "same-origin");
  assertEquals(page.headers.get("cross-origin-embedder-policy"), "require-corp");
  assert(page.headers.get("content-type")!.startsWith("text/html"));
  assert((await page.text()).includes("dist/app.js"));
  const cat = await get("/api/catalog.json");
  const catalog = await cat.json() as { models: { name: string }[]; samples: { url: string }[] };
  assert(catalog.models.length > 0 && catalog.samples.length > 0, "empty catalog");
  assert(catalog.samples.every((s) => !s.url.endsWith("_mask.png")), "masks offered as samples");
  const png = await get(catalog.samples[0].url);
  assertEquals([png.status, png.headers.get("content-type")], [200, "image/png"]);
  await png.body?.cancel();
  assertEquals((await get("/")).status, 302);
  for (
    const bad of [
      "/deno.json",
      "/core/backend.ts",
      "/web/app.ts",
      "/web/%2e%2e/deno.json",
      "/models/%2E%2E/deno.json",
      "/web/.gitignore",
      "/tests/fixtures/fixtures.json",
    ]
  ) {
    const r = await get(bad);
    await r.body?.cancel();
    assertEquals(r.status, 404, bad);
  }
  assertEquals((await get("/web/", "POST")).status, 405);
});

Deno.test({
  name: "browser playground: page maps equal Deno's, offline, no console errors",
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const model = pickModel();
    const sample = pickSample();
    const out = await Deno.makeTempFile({ prefix: "gradual-web-", suffix: ".json" });
    try {
      const t0 = performance.now();
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "web/headless.ts",
          "--model",
          model.name,
          "--sample",
          sample,
          "--methods",
          "grad-cam",
          "--extrapolator",
          "gradual",
          "--backend",
          "wasm",
          "--timeout",
          "60000",
          "--out",
          out,
        ],
        cwd: ROOT,
        env: { GRADUAL_CHROMIUM: CHROMIUM! },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(85_000),
      }).output();
      const wall = performance.now() - t0;
      const text = new TextDecoder().decode(run.stderr) + new TextDecoder().decode(run.stdout);
      assert(run.success, `web/headless.ts failed (exit ${run.code}):\n${text.slice(-4000)}`);
      const report = JSON.parse(await Deno.readTextFile(out)) as HeadlessReport;

      assertEquals(report.state, "done", `page error: ${report.error}`);
      assertEquals(report.backend.backend, "wasm");
      assert(report.backend.crossOriginIsolated, "the page is not cross-origin isolated");
      assertEquals(report.model.name, model.name);

      // Nothing left localhost.
      const all = [...report.requests, ...report.pageResources, ...report.workerResources];
      const foreign = all.filter((u) =>
        !u.startsWith(`${report.origin}/`) && !u.startsWith(`blob:${report.origin}/`) &&
        !u.startsWith("data:")
      );
      assertEquals(foreign, [], "requests that left localhost");
      assert(report.requests.some((u) => u.endsWith(".wasm")), "no wasm binary was loaded");

      // A clean console.
      const errors = report.console.filter((m) => m.type === "error");
      assertEquals(errors, [], "console errors");
      assertEquals(report.pageErrors, [], "page errors");

      // The figure download.
      assert(report.download?.png === true, "the figure download is not a PNG");
      assert(report.download.width > 0 && report.download.height > 0);

      // The same maps in Deno.
      await initBackend({ backend: "wasm", threads: 1 });
      const m = await loadLayersModel(model.url);
      const [, h, w] = m.inputs[0].shape as number[];
      const bytes = await Deno.readFile(new URL(`models/samples/${sample}`, ROOT));
      const { input } = await prepareInput(bytes, w, h, model.preprocess);
      const x = tf.tensor4d(input, [1, h, w, 3]);
      const [plain, gradual] = await explainMany(m, x, [
        { method: "grad-cam" },
        { method: "grad-cam", extrapolator: "gradual" },
      ]);
      x.dispose();
      m.dispose();
      assertEquals(report.maps.map((p) => p.title), ["Grad-CAM", "Gradual Grad-CAM"]);
      assertEquals(report.classIndex, plain[0].classIndex, "explained class");
      const diffs = [plain[0], gradual[0]].map((e, i) => {
        const page = report.maps[i];
        assertEquals([page.height, page.width], [e.height, e.width]);
        let d = 0;
        for (let k = 0; k < e.map.length; k++) d = Math.max(d, Math.abs(e.map[k] - page.map[k]));
        return d;
      });
      console.log(
        `web_test: ${model.name}/${sample} max |page - deno| grad-cam ${
          diffs[0].toExponential(2)
        }` +
          `, gradual ${diffs[1].toExponential(2)}; page to maps ${
            report.times.firstResult.toFixed(0)
          } ms, whole run ${
            (wall / 1000).toFixed(1)
          } s (${report.backend.backend}, ${report.backend.threads} thread(s))`,
      );
      for (const d of diffs) assert(d <= TOLERANCE, `max abs difference ${d} > ${TOLERANCE}`);
    } finally {
      await Deno.remove(out).catch(() => {});
    }
  },
});
