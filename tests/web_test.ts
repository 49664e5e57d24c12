/**
 * The browser playground in a real browser: `web/headless.ts` (run as a subprocess, since
 * playwright-core needs more permissions than the test task grants) builds and serves the
 * page, loads it in the system Chromium (headless, wasm backend), runs one method of each
 * family (CAM, excitation backprop, gradient, backprop rules, perturbation, path integral),
 * each with and without gradual extrapolation, on a bundled sample with the built-in model,
 * then the extra cases: screenshots and layout at 1440 and 375 px, Cancel, a dropped ONNX model
 * with labels.json, a file that is not an image, and a page asking for WebGPU (wasm and a
 * notice where no adapter exists, as in headless Chromium without a GPU). This test checks
 * that the page's maps equal the ones `explainMany` computes here in Deno for the same input
 * (max abs difference 1e-4), that no request left localhost, that the console had no errors
 * other than the bad file's, that the figure download is a PNG, and each case's outcome.
 * The screenshots stay in `gradual-out/web/` for people to look at.
 *
 * Skipped, with a message, when no Chromium is installed (`apt-get install -y chromium`).
 * The server's own checks (headers, types, refused paths) run without a browser.
 */
import { assert, assertEquals } from "./_assert.ts";
import { initBackend } from "../backend/mod.ts";
import { explainMany } from "../core/explain.ts";
import { prepareInput, type PreprocessPreset } from "../io/mod.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { tf } from "../core/tensor.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";
import "../plugins/mod.ts";
import { findChromium, type HeadlessReport } from "../web/browser.ts";
import { handle } from "../web/serve.ts";

const CHROMIUM = findChromium();
const ROOT = new URL("../", import.meta.url);
const TOLERANCE = 1e-4;
/** One method per family. */
const METHODS = [
  "grad-cam",
  "contrastive-excitation-backprop",
  "gradient",
  "guided-backprop",
  "score-cam",
  "integrated-gradients",
];
const SHOTS = "gradual-out/web";

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
      "/backend/mod.ts",
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
    // A model to drop: vgg_tiny exported from PyTorch to ONNX, with its own labels.json.
    const drop = await Deno.makeTempDir({ prefix: "gradual-web-drop-" });
    await Deno.copyFile(
      new URL("tests/fixtures/onnx/vgg_tiny.onnx", ROOT),
      `${drop}/vgg_tiny.onnx`,
    );
    const tinyLabels = Array.from({ length: 10 }, (_, i) => `tiny class ${i}`);
    await Deno.writeTextFile(`${drop}/labels.json`, JSON.stringify(tinyLabels));
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
          METHODS.join(","),
          "--extrapolator",
          "gradual",
          "--backend",
          "wasm",
          "--timeout",
          "120000",
          "--out",
          out,
          "--shots",
          SHOTS,
          "--drop-model",
          ["vgg_tiny.onnx", "labels.json"].map((f) => `${drop}/${f}`).join(
            ",",
          ),
        ],
        cwd: ROOT,
        env: { GRADUAL_CHROMIUM: CHROMIUM! },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(400_000),
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

      // A clean console: the only error is the bad file's, reported by the page.
      const errors = report.console.filter((m) => m.type === "error");
      assertEquals(errors.length, 1, `console errors: ${JSON.stringify(errors)}`);
      assert(errors[0].text.includes("broken.png"), errors[0].text);
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
      const deno = (await explainMany(
        m,
        x,
        METHODS.flatMap((method) => [{ method }, { method, extrapolator: "gradual" }]),
      )).map((r) => r[0]);
      x.dispose();
      m.dispose();
      assertEquals(report.maps.length, 2 * METHODS.length);
      assert(report.maps.some((p) => p.title === "Gradual Grad-CAM"), "paper-style titles");
      assertEquals(report.classIndex, deno[0].classIndex, "explained class");
      // The page lists the maps in its panel order: match them by method and extrapolator.
      const key = (m: { method: string; extrapolator?: string }): string =>
        `${m.method}+${m.extrapolator ?? "none"}`;
      const byKey = new Map(report.maps.map((p) => [key(p), p]));
      const diffs = deno.map((e) => {
        const page = byKey.get(key(e));
        assert(page !== undefined, `no ${key(e)} map in the page`);
        assertEquals([page.height, page.width], [e.height, e.width]);
        let d = 0;
        for (let k = 0; k < e.map.length; k++) d = Math.max(d, Math.abs(e.map[k] - page.map[k]));
        return d;
      });
      console.log(
        `web_test: ${model.name}/${sample} max |page - deno| over ${diffs.length} maps ${
          Math.max(...diffs).toExponential(2)
        }; page to maps ${report.times.firstResult.toFixed(0)} ms, whole run ${
          (wall / 1000).toFixed(1)
        } s (${report.backend.backend}, ${report.backend.threads} thread(s))`,
      );
      diffs.forEach((d, i) =>
        assert(d <= TOLERANCE, `${key(deno[i])}: max abs difference ${d} > ${TOLERANCE}`)
      );
      checkScenario(report, model.name, tinyLabels);
    } finally {
      await Deno.remove(out).catch(() => {});
      await Deno.remove(drop, { recursive: true }).catch(() => {});
    }
  },
});

/** The extra cases' outcomes (see `web/headless.ts`). */
function checkScenario(report: HeadlessReport, builtin: string, tinyLabels: string[]): void {
  const s = report.scenario;
  assert(s !== undefined, "the extra cases did not run");
  // Layout: nothing wider than the screen, maps a usable size, status and buttons in view,
  // and the header (status, buttons) still at the top after scrolling down.
  const [wide, narrow] = s.layouts;
  assertEquals([wide.viewport, narrow.viewport], [1440, 375]);
  for (const l of s.layouts) {
    assert(l.pageWidth <= l.viewport, `${l.viewport} px: the page is ${l.pageWidth} px wide`);
    assert(l.buttonsInView, `${l.viewport} px: Explain / status out of view`);
    assertEquals(l.afterScroll.headerTop, 0, `${l.viewport} px: header not sticky`);
    assert(l.afterScroll.statusInView, `${l.viewport} px: status scrolled away`);
    assert(Deno.statSync(l.screenshot).size > 1000, `no screenshot ${l.screenshot}`);
  }
  assert(narrow.afterScroll.scrollY > 0, "at 375 px the page should scroll (one column)");
  assert(narrow.figureWidth >= 300, `375 px: results ${narrow.figureWidth} px wide`);
  assert(narrow.canvasWidth >= 140, `375 px: maps ${narrow.canvasWidth} px wide`);
  assert(wide.canvasWidth >= 150, `1440 px: maps ${wide.canvasWidth} px wide`);

  // Cancel: the worker restarted, the page idle and saying so, the old maps still there.
  assertEquals(s.cancel.state, "idle", `cancel: ${s.cancel.status}`);
  assertEquals(s.cancel.status, "cancelled");
  assertEquals(s.cancel.maps.length, 2 * METHODS.length);

  // The built-in model says what it knows, next to the results.
  assert(report.model.name === builtin);
  // (Read from the cancel case: still the built-in model.)
  assert(s.cancel.modelNote.includes("10 generated shape classes"), s.cancel.modelNote);
  assert(s.cancel.modelNote.includes("drop your model"), s.cancel.modelNote);
  assert(s.cancel.maps.every((m) => m.layer !== ""), "layers shown");

  // A dropped ONNX model with labels.json: it runs, its labels are used (the blob URL is read
  // as a URL).
  const d = s.droppedModel;
  assertEquals(d.state, "done", `dropped model: ${d.error}`);
  assertEquals(d.model?.name, "vgg_tiny.onnx");
  assertEquals(d.model?.labels, tinyLabels);
  assert(d.top.every((l) => tinyLabels.includes(l)), `top classes ${d.top}`);
  assertEquals(d.modelNote, "", "no built-in note for a dropped model");
  assert(
    d.download.enabled && d.download.name?.includes("vgg_tiny.onnx"),
    `download after a drop: ${d.download.name}`,
  );

  // A bad file: one clear line naming it, stale results dimmed, Download disabled.
  const b = s.badFile;
  assertEquals(b.state, "error");
  assert(b.error?.includes("broken.png") && !b.error.includes("\n"), `bad file: ${b.error}`);
  assert(b.stale, "the previous maps are not dimmed");
  assertEquals(b.download, { enabled: false, name: null });

  // WebGPU: used where an adapter exists; else wasm, and the page says why.
  const g = s.webgpu;
  assertEquals(g.state, "done", `webgpu page: ${g.error}`);
  if (g.backend?.backend !== "webgpu") {
    assertEquals(g.backend?.backend, "wasm");
    assertEquals(g.backend?.fallbackFrom, "webgpu");
    assert(g.notice?.includes("webgpu failed to start"), `notice: ${g.notice}`);
    assert(g.notice?.includes(g.backend?.fallbackReason ?? "?"), `notice: ${g.notice}`);
  }
  assertEquals(g.maps.length, 2 * METHODS.length);
}
