/**
 * Full-scale checks (`deno task test:fullscale`, run by `.ci/run`): on the paper's VGG16 at
 * 224x224, batch 2, where every speed path actually applies (the `vgg_tiny` fixtures never
 * reach Winograd), each path must give the plain path's answer within the float32 noise floor.
 *
 * Noise floor: the same method on the same weights and input, direct convolutions, tfjs-cpu
 * vs tfjs-wasm (two summation orders), max |difference| / max |map| (measured with
 * `bench/fullscale_diff.ts --cpu`, see README "Performance"). The tolerances below are that
 * floor with a margin; a method without a measured floor gets {@link DEFAULT_TOL}.
 *
 * @module
 */
import { getWinograd, initBackend, setWinograd } from "../backend/mod.ts";
import { maxPoolInputGrad, type Tensor, type Tensor4D, tf } from "../core/tensor.ts";
import type { RuleContext } from "../core/session.ts";
import { ModelSession } from "../core/session.ts";
import { assert, assertEquals } from "./_assert.ts";
import { allCases, loadVgg16, relDiff, runCases, vggInput } from "./_fullscale.ts";

await initBackend({ backend: "wasm" });

/**
 * Measured noise floor (tfjs-cpu vs tfjs-wasm, direct) with a margin, per method; see the
 * module doc and README "Correct at full scale".
 */
const TOL: Record<string, number> = {
  "grad-cam": 1e-5,
  "excitation-backprop": 5e-4,
  "contrastive-excitation-backprop": 1e-2,
  gradient: 6e-2,
};
const DEFAULT_TOL = 1e-3;

function tolerance(name: string): number {
  return TOL[name] ?? DEFAULT_TOL;
}

Deno.test("full scale (VGG16 224x224, batch 2): every speed path equals the plain path", async (t) => {
  const model = await loadVgg16();
  const x = vggInput(2);
  const session = new ModelSession(model);
  try {
    // GRADUAL_FULLSCALE_ONLY=a,b runs only those cases (for development; CI runs all).
    const only = Deno.env.get("GRADUAL_FULLSCALE_ONLY")?.split(",");
    const cases = allCases().filter((c) => !only || only.includes(c.name));
    const defaultMode = getWinograd(); // what a user gets without setting anything
    const direct = await (async () => {
      setWinograd("off");
      try {
        return await runCases(model, x, cases);
      } finally {
        setWinograd(defaultMode);
      }
    })();
    // Default settings; when the default mode is "off" itself, that run is the same one.
    const fast = defaultMode === "off" ? direct : await runCases(model, x, cases);
    console.log(`default Winograd mode: ${defaultMode}`);

    await t.step("default settings = winograd off, for every method and extrapolator", () => {
      const lines: string[] = [];
      const bad: string[] = [];
      for (const c of cases) {
        const d = relDiff(direct.get(c.name)!, fast.get(c.name)!);
        lines.push(`${c.name}: ${d.toExponential(2)}`);
        if (!(d <= tolerance(c.name))) bad.push(`${c.name} ${d} > ${tolerance(c.name)}`);
      }
      console.log(`default vs off, max |diff| / max |map|:\n  ${lines.join("\n  ")}`);
      assertEquals(bad, []);
    });

    await t.step("tf.memory() stays flat over repeated runs", async () => {
      const some = allCases().filter((c) =>
        ["grad-cam", "contrastive-excitation-backprop+gradual"].includes(c.name)
      );
      (await runCases(model, x, some)).clear();
      const before = tf.memory().numTensors;
      (await runCases(model, x, some)).clear();
      assertEquals(tf.memory().numTensors, before);
    });

    await t.step(
      "EB / c-EB equal a plain-path EB (no cached weights, shared z, fast kernels)",
      async () => {
        // The plugins with default settings (whatever speed paths those take).
        const names = ["excitation-backprop", "contrastive-excitation-backprop"];
        const ref = names.every((n) => fast.has(n))
          ? fast
          : await runCases(model, x, allCases().filter((c) => names.includes(c.name)));
        const layer = "features_18";
        const pass = session.forward(x, { gradientsFrom: [layer] });
        const before = tf.memory().numTensors;
        try {
          const seed = tf.tidy(() => tf.oneHot(pass.scores.argMax(1), pass.scores.shape[1]));
          const classifier = session.graph.classifierLayer!;
          const rule = (negate: string | undefined) => (ctx: RuleContext) =>
            plainExcitation(ctx, ctx.node.name === negate);
          const [eb] = pass.backward(seed, { wrt: [layer], rule: rule(undefined) });
          const [contrast] = pass.backward(seed, { wrt: [layer], rule: rule(classifier) });
          const ebMap = tf.tidy(() => eb.sum(-1));
          const cebMap = tf.tidy(() => tf.relu(eb.sub(contrast).sum(-1)));
          const dEb = relDiff(ref.get(names[0])!, ebMap.dataSync() as Float32Array);
          const dCeb = relDiff(
            ref.get(names[1])!,
            cebMap.dataSync() as Float32Array,
          );
          console.log(`plain-path EB: ${dEb.toExponential(2)}, c-EB: ${dCeb.toExponential(2)}`);
          assert(dEb <= tolerance("excitation-backprop"), `EB ${dEb}`);
          assert(dCeb <= tolerance("contrastive-excitation-backprop"), `c-EB ${dCeb}`);
          tf.dispose([seed, eb, contrast, ebMap, cebMap]);
          assertEquals(tf.memory().numTensors, before);
        } finally {
          pass.dispose();
        }
      },
    );

    await t.step(
      "MaxPoolGrad kernel = the generic first-maximum path (real ReLU ties)",
      async () => {
        const pass = session.forward(x, { record: ["features_3"] });
        try {
          const a = pass.activation("features_3") as Tensor4D; // [2, 224, 224, 64], post-ReLU
          const dy = tf.tidy(() => tf.randomUniform([2, 112, 112, 64], -1, 1, "float32", 3));
          const fast = maxPoolInputGrad(a, dy as Tensor4D, [2, 2], [2, 2], "valid");
          const data = [a.dataSync(), dy.dataSync()] as Float32Array[];
          await tf.setBackend("cpu");
          let plain: Float32Array;
          try {
            plain = tf.tidy(() => {
              const ac = tf.tensor4d(data[0], a.shape);
              const dc = tf.tensor4d(data[1], dy.shape as [number, number, number, number]);
              return maxPoolInputGrad(ac, dc, [2, 2], [2, 2], "valid").dataSync() as Float32Array;
            });
          } finally {
            await tf.setBackend("wasm");
          }
          let zeros = 0;
          for (const v of data[0]) if (v === 0) zeros++;
          assert(zeros > data[0].length / 10, "the activations have tied (zero) windows");
          assertEquals(relDiff(plain, fast.dataSync() as Float32Array), 0);
          tf.dispose([dy, fast]);
        } finally {
          pass.dispose();
        }
      },
    );

    await t.step("dense input gradient (W · dyᵀ)ᵀ = dy · Wᵀ on fc1 [25088, 4096]", () => {
      const w = model.getLayer("classifier_0").getWeights()[0] as tf.Tensor2D;
      tf.tidy(() => {
        const dy = tf.randomUniform([2, 4096], -1, 1, "float32", 5) as tf.Tensor2D;
        const plain = tf.matMul(dy, w, false, true);
        const fast = tf.matMul(w, dy.transpose()).transpose();
        const d = relDiff(plain.dataSync() as Float32Array, fast.dataSync() as Float32Array);
        assert(d < 1e-5, `dense input gradient differs by ${d}`);
      });
    });
  } finally {
    tf.dispose(x);
    model.dispose();
  }
});

/**
 * Excitation backprop for conv / dense on the plain path: W+ made anew each call, tfjs's own
 * conv2d / conv2dTranspose / transposed matMul, z computed per pass; other ops: their
 * ordinary gradient (VGG16 has only ReLU, max-pool, flatten and dropout besides).
 */
function plainExcitation(ctx: RuleContext, negate: boolean): Tensor[] | undefined {
  const { op } = ctx;
  if (op.kind !== "conv2d" && op.kind !== "dense") return undefined;
  return [tf.tidy(() => {
    const k = op.params.kernel!;
    const w = negate ? tf.relu(tf.neg(k)) : tf.relu(k);
    const x = ctx.inputs[0];
    if (op.kind === "dense") {
      const z = tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
      const s = ctx.dy.reshape(z.shape).div(z.add(1e-20)) as tf.Tensor2D;
      return x.mul(tf.matMul(s, w as tf.Tensor2D, false, true).reshape(x.shape));
    }
    const pad = op.params.padding as "same" | "valid";
    const z = tf.conv2d(x as Tensor4D, w as Tensor4D, 1, pad);
    const s = ctx.dy.div(z.add(1e-20)) as Tensor4D;
    return x.mul(
      tf.conv2dTranspose(s, w as Tensor4D, x.shape as [number, number, number, number], 1, pad),
    );
  })];
}
