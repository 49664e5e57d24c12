/**
 * Plugin options (issue 19): every plugin declares its options, they are validated once
 * before anything runs (an unknown key, a bad value, an option of another plugin: one line
 * listing what is allowed), plugins receive them typed and defaulted, version-1 plugins keep
 * working with untyped options, `layer` is the request's field and never an option, and an
 * input-resolution method written as the README says works without surprises.
 *
 * @module
 */
import {
  BUILTIN_PLUGINS,
  explain,
  explainMany,
  gradCam,
  initBackend,
  inputGradientMethod,
  loadLayersModel,
  OptionError,
  PLUGIN_API_VERSION,
  PluginError,
  Registry,
  registry,
  type SaliencyMethod,
  sessionOf,
  shareOptions,
  smoothGrad,
  type Tensor4D,
  validateOptions,
  validateRequests,
} from "../mod.ts";
import { tf } from "../core/tf.ts";
import { assert, assertEquals } from "./_assert.ts";
import { FIXTURE_MODEL } from "./_cli_corpus.ts";
import { ROOT } from "./_cli_run.ts";
import { UsageError } from "../cli/_errors.ts";
import {
  atInputResolution,
  requestsWithOptions,
  withoutDefaultAtInput,
} from "../cli/_plugin_options.ts";

await initBackend({ backend: "wasm", threads: 1 });
const model = await loadLayersModel(FIXTURE_MODEL);

/** The message of what `f` throws (or rejects with), checked to be one line of `kind`. */
async function oneLine(
  f: () => unknown,
  kind: new (...a: never[]) => Error = OptionError,
): Promise<string> {
  try {
    await f();
  } catch (e) {
    assert(e instanceof kind, `expected ${kind.name}, got ${e}`);
    const msg = (e as Error).message;
    assert(!msg.includes("\n"), `not one line: ${msg}`);
    return msg;
  }
  throw new Error("expected an error");
}

Deno.test("options: every built-in plugin declares its options; defaults validate, idempotently", () => {
  assertEquals(PLUGIN_API_VERSION, 2);
  for (const p of BUILTIN_PLUGINS) {
    assertEquals(p.apiVersion, 2, p.name);
    const specs = p.options ?? {};
    assert(Object.keys(specs).length > 0, `${p.name} declares no option`);
    for (const [name, s] of Object.entries(specs)) {
      assert(s.doc.length > 10 && !s.doc.includes("\n"), `${p.name}.${name}: one-line doc`);
    }
    const typed = validateOptions(p, {});
    assertEquals(Object.keys(typed).sort(), Object.keys(specs).sort(), p.name);
    for (const [name, s] of Object.entries(specs)) {
      if (s.default !== undefined) assertEquals(typed[name], s.default, `${p.name}.${name}`);
    }
    assertEquals(validateOptions(p, typed), typed, `${p.name}: validation is idempotent`);
  }
  // Text from the command line becomes typed values.
  assertEquals(validateOptions(gradCam, { raw: "true" }), { raw: true, inplaceRelu: "none" });
  assertEquals(validateOptions(registry.method("c-eb"), { dropContrast: "yes", plainAdd: 0 }), {
    classifier: undefined,
    plainAdd: false,
    contrastLayer: undefined,
    dropContrast: true,
  });
  const ig = validateOptions(registry.method("ig"), { steps: "8", baseline: [0.1, 0.2, 0.3] });
  assertEquals([ig.steps, ig.baseline, ig.riemann, ig.reduce], [
    8,
    [0.1, 0.2, 0.3],
    "trapezoid",
    "sum",
  ]);
});

Deno.test("options: unknown key, bad value, another plugin's option, layer: one line each", async () => {
  const cases: [() => unknown, string][] = [
    [
      () => validateOptions(gradCam, { nonsense: 1 }),
      "method 'grad-cam': unknown option 'nonsense' (grad-cam takes raw, inplaceRelu)",
    ],
    [
      () => validateOptions(gradCam, { inplaceRelu: "wrong" }),
      "method 'grad-cam': option 'inplaceRelu' must be none|torchray|pgc, got 'wrong'",
    ],
    [
      () => validateOptions(registry.extrapolator("gradual"), { statistics: "bogus" }),
      "extrapolator 'gradual': option 'statistics' must be image|batch, got 'bogus'",
    ],
    [
      () => validateOptions(registry.method("score-cam"), { batchSize: 0 }),
      "method 'score-cam': option 'batchSize' must be integer >= 1, got 0",
    ],
    [
      () => validateOptions(registry.method("ig"), { steps: 2.5 }),
      "method 'integrated-gradients': option 'steps' must be integer >= 1, got 2.5",
    ],
    [
      () => validateOptions(registry.method("ig"), { baseline: "ones" }),
      "method 'integrated-gradients': option 'baseline' must be 'zeros', a number, a per-channel " +
      "number array or a tensor, got 'ones'",
    ],
    [
      () => validateOptions(gradCam, { layer: "features_6" }),
      "method 'grad-cam': 'layer' is not an option but the request's layer",
    ],
    [
      () => shareOptions({ steps: 3 }, [gradCam, registry.method("eb")], registry.methods()),
      "option 'steps' is not an option of grad-cam, excitation-backprop (grad-cam takes raw, " +
      "inplaceRelu; excitation-backprop takes classifier, plainAdd); it is an option of " +
      "integrated-gradients",
    ],
    // SmoothGrad passes what it does not declare to its base method, checked there.
    [
      () => validateOptions(smoothGrad, { reduce: "median" }),
      "method 'gradient': option 'reduce' must be max-abs|sum-abs|sum|l2|max, got 'median'",
    ],
    [
      () => validateOptions(smoothGrad, { base: "grad-cam", reduce: "sum" }),
      "method 'grad-cam': unknown option 'reduce' (grad-cam takes raw, inplaceRelu)",
    ],
    [
      () => validateOptions(smoothGrad, { base: "smoothgrad" }),
      "method 'smooth-grad': option 'base'",
    ],
  ];
  for (const [f, needle] of cases) {
    const msg = await oneLine(f);
    assert(msg.includes(needle), `'${msg}' lacks '${needle}'`);
  }
  // What SmoothGrad forwards arrives typed in baseOptions.
  const sg = validateOptions(smoothGrad, { samples: "3", reduce: "sum" });
  assertEquals([sg.samples, sg.baseOptions], [3, { reduce: "sum" }]);
  assertEquals(shareOptions({ raw: true, reduce: "sum" }, [gradCam, smoothGrad]), [
    { raw: true },
    { reduce: "sum" },
  ]);
});

Deno.test("options: explain validates every request before the forward pass; nothing leaks", async () => {
  const x = tf.randomUniform([2, 64, 64, 3], -1, 1, "float32", 7) as Tensor4D;
  const s = sessionOf(model);
  const original = s.forward.bind(s);
  let forwards = 0;
  s.forward = (input, o) => {
    forwards++;
    return original(input, o);
  };
  const before = tf.memory().numTensors;
  try {
    const bad = [
      { method: "grad-cam", methodOptions: { nonsense: 1 } },
      { method: "grad-cam", methodOptions: { inplaceRelu: "wrong" } },
      { method: "grad-cam", extrapolator: "gradual", extrapolatorOptions: { statistics: "bogus" } },
      { method: "c-eb", methodOptions: { contrastLayer: "nope" } },
      { method: "grad-cam", methodOptions: { layer: "features_6" } },
    ];
    for (const r of bad) {
      // A good request first: the bad one still stops everything before the pass.
      await oneLine(() => explainMany(model, x, [{ method: "gradient" }, r]));
    }
    assertEquals(forwards, 0, "no forward pass ran");
    assertEquals(tf.memory().numTensors, before, "nothing leaked");
    const msg = await oneLine(() =>
      explain(model, x, { method: "c-eb", methodOptions: { classifier: "classifer_0" } })
    );
    assert(msg.includes("'classifier_0'"), msg); // did you mean
    // Validated requests run and give the same maps as raw ones.
    const [typed] = validateRequests([{ method: "grad-cam", methodOptions: { raw: "true" } }]);
    assertEquals(typed.methodOptions, { raw: true, inplaceRelu: "none" });
    const [a] = await explain(model, x, { ...typed, normalize: "none" });
    const [b] = await explain(model, x, {
      method: "grad-cam",
      methodOptions: { raw: true },
      normalize: "none",
    });
    assertEquals(a.map, b.map);
    assertEquals(forwards, 2);
  } finally {
    s.forward = original;
    x.dispose();
  }
});

/** A method written against plugin API version 1: no declarations, reads an untyped option. */
function versionOnePlugin(): SaliencyMethod {
  return {
    kind: "method",
    apiVersion: 1,
    name: "scaled-activation",
    description: "a layer's mean activation times the option 'scale'",
    defaultLayer: (g) => g.defaultTargetLayer,
    requires: (_g, layer) => ({ record: [layer!] }),
    run: (ctx) => {
      const k = Number(ctx.options.scale ?? 1);
      const maps = tf.tidy(() => ctx.pass.activation(ctx.layer!).mean(-1).mul(k) as tf.Tensor3D);
      return {
        maps,
        method: "scaled-activation",
        layer: ctx.layer!,
        classes: ctx.targets.classes,
        resolution: [maps.shape[1], maps.shape[2]],
      };
    },
  };
}

Deno.test("plugin API: version-1 plugins run with untyped options; bad declarations refused", async () => {
  const reg = new Registry().register(versionOnePlugin());
  const x = tf.randomUniform([1, 64, 64, 3], -1, 1, "float32", 8) as Tensor4D;
  const run = (scale: unknown) =>
    explain(model, x, {
      method: "scaled-activation",
      methodOptions: { scale },
      normalize: "none",
      resize: "none",
      registry: reg,
    });
  const [one] = await run("1");
  const [two] = await run("2");
  assert(one.map.some((v) => v !== 0));
  one.map.forEach((v, i) => assert(Math.abs(two.map[i] - 2 * v) <= 1e-6 * Math.abs(v) + 1e-9));
  x.dispose();
  const good = { ...versionOnePlugin(), apiVersion: 2 };
  const cases: [unknown, string][] = [
    [{ ...good, apiVersion: 3 }, "plugin API version 3, this is version 2 (versions 1, 2 load)"],
    [{ ...good, options: { scale: { type: "number" } } }, "option 'scale' needs a one-line doc"],
    [{ ...good, options: { scale: { type: "float", doc: "d" } } }, "option 'scale' needs a type"],
    [{ ...good, options: { layer: { type: "layer", doc: "d" } } }, "'layer' cannot be an option"],
    [
      { ...good, options: { scale: { type: "number", min: 1, default: 0, doc: "d" } } },
      "the default of option 'scale' is invalid",
    ],
  ];
  for (const [p, needle] of cases) {
    const msg = await oneLine(() => new Registry().register(p as SaliencyMethod), PluginError);
    assert(msg.includes(needle), `'${msg}' lacks '${needle}'`);
  }
  // A version-2 plugin declaring nothing takes no options.
  const none = await oneLine(() => validateOptions(good as SaliencyMethod, { scale: 2 }));
  assert(none.includes("scaled-activation takes no options"), none);
});

Deno.test("an input-resolution method written as the README says: input layer, no surprise", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/sum_gradient.ts`;
  // The README's recipe: the input-gradient helper exported like the CAM helper.
  assertEquals(typeof inputGradientMethod, "function");
  await Deno.writeTextFile(
    file,
    `import { inputGradientMethod } from "${new URL("mod.ts", `file://${ROOT}`).href}";\n` +
      `export default inputGradientMethod({\n` +
      `  name: "sum-gradient",\n` +
      `  description: "Gradient w.r.t. the input, summed over the channels",\n` +
      `  defaultReduce: "sum",\n` +
      `});\n`,
  );
  const reg = new Registry();
  for (const p of BUILTIN_PLUGINS) reg.register(p);
  const [p] = await reg.load(file);
  assertEquals(p.name, "sum-gradient");
  assertEquals(Object.keys(p.options ?? {}), ["reduce"]);
  const x = tf.randomUniform([1, 64, 64, 3], -1, 1, "float32", 9) as Tensor4D;
  const graph = sessionOf(model).graph;
  const opts = { method: "sum-gradient", registry: reg, normalize: "none" as const };
  await explain(model, x, opts); // warm-up (the session's caches)
  const before = tf.memory().numTensors;
  const [byDefault] = await explain(model, x, opts);
  const [atInput] = await explain(model, x, { ...opts, layer: graph.inputName });
  assertEquals(tf.memory().numTensors, before);
  assertEquals([byDefault.layer, byDefault.height, byDefault.width], [graph.inputName, 64, 64]);
  assertEquals(atInput.map, byDefault.map, "the input is a valid layer, the default one");
  const [plain] = await explain(model, x, { method: "gradient", normalize: "none" });
  assert(plain.map.some((v, i) => Math.abs(v - byDefault.map[i]) > 1e-6), "reduce: sum");
  const reduce = await oneLine(() =>
    explain(model, x, { ...opts, methodOptions: { reduce: "mean" } })
  );
  assert(reduce.startsWith("method 'sum-gradient': option 'reduce' must be max-abs|"), reduce);
  x.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--opt: shared keys go to the methods that take them, NAME.KEY to one, layer per method", async () => {
  const none = { all: {}, byPlugin: {} };
  const perLayer = requestsWithOptions(
    [{ method: "grad-cam" }, { method: "c-eb", extrapolator: "gradual" }],
    "features_6",
    {
      all: { raw: true },
      byPlugin: {
        "grad-cam": { layer: "features_19" },
        "contrastive-excitation-backprop": { layer: "features_12", plainAdd: "true" },
        "gradual-extrapolation": { statistics: "batch" },
      },
    },
  );
  assertEquals(perLayer.map((r) => [r.method, r.layer]), [
    ["grad-cam", "features_19"],
    ["c-eb", "features_12"],
  ]);
  assertEquals(perLayer[0].methodOptions, { raw: true });
  assertEquals(perLayer[1].methodOptions, { plainAdd: "true" }); // as given; explain types it
  assertEquals(perLayer[1].extrapolatorOptions, { statistics: "batch" });
  // --layer for every method that names none of its own.
  const both = requestsWithOptions([{ method: "grad-cam" }, { method: "gradient" }], "f", none);
  assertEquals(both.map((r) => r.layer), ["f", "f"]);
  const cases: [() => unknown, string][] = [
    [
      () =>
        requestsWithOptions([{ method: "grad-cam" }], undefined, {
          all: { nonsense: 1 },
          byPlugin: {},
        }),
      "option 'nonsense' is not an option of grad-cam (grad-cam takes raw, inplaceRelu)",
    ],
    [
      () =>
        requestsWithOptions([{ method: "grad-cam" }], undefined, {
          all: { inplaceRelu: "wrong" },
          byPlugin: {},
        }),
      "method 'grad-cam': option 'inplaceRelu' must be none|torchray|pgc, got 'wrong'",
    ],
    [
      () =>
        requestsWithOptions([{ method: "grad-cam", extrapolator: "gradual" }], undefined, {
          all: {},
          byPlugin: { gradual: { statistics: "bogus" } },
        }),
      "extrapolator 'gradual': option 'statistics' must be image|batch, got 'bogus'",
    ],
    [
      () =>
        requestsWithOptions([{ method: "grad-cam", extrapolator: "gradual+" }], undefined, {
          all: {},
          byPlugin: { gradual: { statistics: "batch" } },
        }),
      "--opt gradual.statistics: 'gradual' does not run here (this run uses grad-cam, gradual+)",
    ],
    [
      () =>
        requestsWithOptions([{ method: "grad-cam" }], undefined, {
          all: {},
          byPlugin: { nope: { x: 1 } },
        }),
      "--opt nope.x: no method or extrapolator is named 'nope'",
    ],
    [
      () =>
        requestsWithOptions([{ method: "grad-cam", extrapolator: "gradual" }], undefined, {
          all: {},
          byPlugin: { gradual: { layer: "f" } },
        }),
      "--opt gradual.layer: an extrapolator has no layer",
    ],
  ];
  for (const [f, needle] of cases) {
    const msg = await oneLine(f, UsageError);
    assert(msg.includes(needle), `'${msg}' lacks '${needle}'`);
  }
  const graph = sessionOf(model).graph;
  // The default extrapolator is left off maps already at input resolution, and said so.
  const notes: string[] = [];
  const reqs = requestsWithOptions(
    [
      { method: "gradient", extrapolator: "gradual+", defaultExtrapolator: true },
      { method: "gradient" },
      { method: "grad-cam", extrapolator: "gradual+", defaultExtrapolator: true },
      { method: "guided-backprop", extrapolator: "gradual+" },
    ],
    undefined,
    none,
  );
  const kept = withoutDefaultAtInput(graph, reqs, (l) => notes.push(l));
  assertEquals(kept.map((r) => [r.method, r.extrapolator]), [
    ["gradient", undefined],
    ["grad-cam", "gradual+"],
    ["guided-backprop", "gradual+"], // asked for: applied
  ]);
  assertEquals(notes, [
    `gradual: note: gradient gives maps at input resolution ('${graph.inputName}'): the default ` +
    "extrapolator gradual+ is not applied (ask for it with --extrapolate or gradient+gradual+)",
  ]);
  assert(atInputResolution(graph, graph.inputName));
  assert(!atInputResolution(graph, graph.defaultTargetLayer));
  assert(!atInputResolution(graph, undefined));
});
