import { initBackend } from "../core/backend.ts";
import { allPassed, runConformance } from "../conformance/run.ts";
import { assert, assertEquals } from "./_assert.ts";

await initBackend({ backend: "wasm", threads: 1 });
const FIXTURES = new URL("./fixtures/fixtures.json", import.meta.url);

Deno.test("conformance: every supported fixture array passes on vgg_tiny", async () => {
  const report = await runConformance(FIXTURES);
  const arrays = report.models.vgg_tiny;
  const failed = Object.entries(arrays).filter(([, r]) => r !== "skipped" && !r.pass);
  assertEquals(failed, []);
  assert(allPassed(report));
  // Everything runs except: the `_signed` 3-channel gradients (checked in methods_test.ts,
  // the runner compares maps) and the seed's triple-pyramid c-EB artefact.
  const skipped = Object.keys(arrays).filter((n) => arrays[n] === "skipped").sort();
  assertEquals(skipped, [
    "deconvnet_torchray_signed",
    "gradient_torchray_signed",
    "guided_backprop_torchray_signed",
    "seed_flow_gradual_ceb",
  ]);
  assert(Object.keys(arrays).length >= 45);
});

Deno.test("conformance: the task prints one JSON object and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "conformance/run.ts", FIXTURES.pathname],
    cwd: new URL("..", import.meta.url).pathname,
    env: { GRADUAL_BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  assert(report.models.vgg_tiny.gradcam_torchray_conv.pass === true);
});
