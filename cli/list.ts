/**
 * `gradual list`: the registered methods and extrapolators (with `--plugin` ones) and
 * their options, the
 * built-in models, and with `--model` the model's layers with their output shapes, marking
 * the default target layer, the resolution-reducing layers and the classifier layer.
 *
 * @module
 */
import { initBackend } from "../backend/mod.ts";
import type { ModelGraph } from "../core/graph.ts";
import { tf } from "../core/tensor.ts";
import { BUILTIN_MODELS } from "../models/builtin.ts";
import { boolFlag, parseFlags, stringFlag } from "./_args.ts";
import { loadPlugins } from "./_common.ts";
import { UsageError } from "./_errors.ts";
import { loadModel, parseInputSize, resolveModelSpec } from "./_model.ts";
import { pluginLines } from "./_plugin_options.ts";

/** Help of `gradual list`. */
export const LIST_HELP =
  `gradual list: methods, extrapolators, built-in models, and a model's layers

Usage: gradual list [--model M] [--plugin P]...

Options:
  -m, --model M     also list this model's layers (built-in name or model.json path):
                    output shapes; "target" = default target layer, "reduces" = lowers the
                    resolution (used by gradual extrapolation), "classifier" = last layer
                    with a kernel
      --labels FILE class names to count against the model
      --input-size S  N or HxW, for models whose input size is open
      --plugin P    load a plugin module first (repeatable)
      --backend B   cpu (default here) or wasm
  -h, --help        this help

Examples:
  gradual list
  gradual list --model shapes-vgg
  gradual list --model my/model.json --plugin ./my_method.ts
`;

const FLAGS = {
  model: { type: "string", short: "m" },
  labels: { type: "string" },
  "input-size": { type: "string" },
  plugin: { type: "string", multiple: true },
  backend: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => "  " + r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd());
}

function shape(s: readonly (number | null)[]): string {
  return `[${s.map((v) => (v === null ? "N" : String(v))).join(", ")}]`;
}

/** The layer table of a model graph, one string per line. */
export function layerTable(g: ModelGraph): string[] {
  const rows: string[][] = [["#", "layer", "class", "output shape", "notes"]];
  rows.push(["0", g.inputName, "InputLayer", shape(g.inputShape), "input"]);
  g.nodes.forEach((n, i) => {
    const notes: string[] = [];
    if (n.name === g.defaultTargetLayer) notes.push("target (default)");
    if (n.reducesResolution) notes.push("reduces");
    if (n.name === g.classifierLayer) notes.push("classifier");
    if (n.name === g.scoreName) notes.push(g.scoreIsPreSoftmax ? "scores (pre-softmax)" : "scores");
    if (n.name === g.outputName) notes.push("output");
    rows.push([String(i + 1), n.name, n.className, shape(n.outputShape), notes.join(", ")]);
  });
  return table(rows);
}

/** Runs `gradual list`; returns the exit status. */
export async function runList(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseFlags(argv, FLAGS);
  if (boolFlag(flags, "help")) {
    console.log([LIST_HELP, ...pluginLines()].join("\n"));
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(`list takes no arguments, got '${positionals[0]}'`);
  }
  const backend = stringFlag(flags, "backend", "cpu");
  if (backend !== "wasm" && backend !== "cpu") {
    throw new UsageError(`--backend must be wasm or cpu, got '${backend}'`);
  }
  await loadPlugins(flags);
  const lines: string[] = pluginLines();
  lines.push("", "Built-in models:");
  lines.push(...table(Object.values(BUILTIN_MODELS).map((b) => [b.name, b.description])));
  const modelArg = stringFlag(flags, "model");
  if (modelArg !== undefined) {
    tf.enableProdMode();
    await initBackend({ backend: backend as "wasm" | "cpu", threads: 1 });
    const m = await loadModel(resolveModelSpec(modelArg, stringFlag(flags, "labels")), {
      inputSize: parseInputSize(stringFlag(flags, "input-size")),
    });
    const g = m.session.graph;
    m.dispose();
    lines.push(
      "",
      `Model ${m.spec.display}: input ${shape(g.inputShape)}, ${m.numClasses} classes` +
        (m.labels ? " (labelled)" : ""),
    );
    lines.push(...layerTable(g));
    if (g.scoreNote) lines.push(`  ${g.scoreNote}`);
    if (!g.defaultTargetLayer) {
      lines.push("  (no layer with a spatial output: CAM methods cannot run)");
    }
    m.warnings.forEach((w) => console.error(w));
  }
  console.log(lines.join("\n"));
  return 0;
}
