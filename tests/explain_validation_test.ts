/**
 * The library's API boundary (issue 21): `explain` / `explainMany` check the input batch
 * once (rank, empty batch, size, NaN / infinity) before any tensor is made, and check each
 * plugin's maps against the contract (a `[N, h, w]` tensor), blaming the plugin by name;
 * nothing leaks on any of these errors.
 *
 * @module
 */
import "../plugins/mod.ts";
import { initBackend } from "../backend/mod.ts";
import { explain, explainMany } from "../core/explain.ts";
import { loadLayersModel } from "../core/model_io.ts";
import { PluginError, registry } from "../core/registry.ts";
import { type Tensor4D, tf } from "../core/tensor.ts";
import type { SaliencyMethod } from "../core/types.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL } from "./_cli_corpus.ts";

await initBackend({ backend: "wasm", threads: 1 });
const model = await loadLayersModel(FIXTURE_MODEL);

async function rejects(p: Promise<unknown>, kind: new (...a: never[]) => Error, needle: string) {
  try {
    await p;
  } catch (e) {
    assert(e instanceof kind, `expected ${kind.name}, got ${e}`);
    assert((e as Error).message.includes(needle), `'${(e as Error).message}' lacks '${needle}'`);
    return;
  }
  throw new Error(`expected an error mentioning '${needle}'`);
}

Deno.test("explain: NaN, infinite, empty and misshapen inputs are refused, nothing leaks", async () => {
  const good = tf.randomUniform([2, 64, 64, 3]) as Tensor4D;
  const nan = tf.tidy(() => good.mul(tf.scalar(NaN)) as Tensor4D);
  const inf = tf.tidy(() => good.div(tf.scalar(0)) as Tensor4D);
  const empty = tf.zeros([0, 64, 64, 3]) as Tensor4D;
  const small = tf.zeros([1, 32, 32, 3]) as Tensor4D;
  const rank3 = tf.zeros([64, 64, 3]) as unknown as Tensor4D;
  const before = tf.memory().numTensors;
  for (let round = 0; round < 3; round++) {
    await rejects(explain(model, nan), RangeError, "NaN or infinite values");
    await rejects(explain(model, inf), RangeError, "NaN or infinite values");
    await rejects(explain(model, empty), RangeError, "the batch is empty");
    await rejects(explainMany(model, empty, [{ method: "grad-cam" }]), RangeError, "empty");
    await rejects(explain(model, small), RangeError, "takes [N, 64, 64, 3] inputs");
    await rejects(explain(model, rank3), RangeError, "[N, H, W, C]");
  }
  assertEquals(tf.memory().numTensors, before, "no tensor leaked");
  const [e] = await explain(model, good);
  assert(e.map.every(Number.isFinite));
  tf.dispose([good, nan, inf, empty, small, rank3]);
});

Deno.test("explain: a plugin breaking the maps contract is named; nothing leaks", async () => {
  const gradCam = registry.method("grad-cam");
  const broken = (name: string, f: (maps: tf.Tensor) => tf.Tensor): SaliencyMethod => ({
    ...gradCam,
    name,
    aliases: [],
    async run(ctx) {
      const m = await gradCam.run(ctx);
      const maps = f(m.maps);
      if (maps !== m.maps) m.maps.dispose();
      return { ...m, maps: maps as typeof m.maps };
    },
  });
  const x = tf.randomUniform([2, 64, 64, 3]) as Tensor4D;
  const before = tf.memory().numTensors;
  await rejects(
    explain(model, x, { method: broken("rank-cam", (t) => t.expandDims(-1)) }),
    PluginError,
    "method 'rank-cam' returned maps of shape [2, ",
  );
  await rejects(
    explain(model, x, { method: broken("batch-cam", (t) => t.slice([0], [1])) }),
    PluginError,
    "the contract is [N, h, w] with N = 2",
  );
  await rejects(
    explain(model, x, {
      method: "grad-cam",
      extrapolator: {
        ...registry.extrapolator("gradual"),
        name: "flat-ex",
        refine: (m) => ({ ...m, maps: tf.zeros([2, 4]) as unknown as typeof m.maps }),
      },
    }),
    PluginError,
    "extrapolator 'flat-ex' returned maps of shape [2, 4]",
  );
  assertEquals(tf.memory().numTensors, before, "no tensor leaked");
  x.dispose();
});
