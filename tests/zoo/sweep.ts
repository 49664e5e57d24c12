/**
 * The zoo sweep: every registered method x extrapolator (none, `gradual`, `gradual+`) x
 * layer (the method's default, an explicit inner layer) on every zoo model, plus the checks
 * against tfjs itself (scores = `model.predict`, input gradient = `tf.grad` of the model).
 * Shared by `tests/zoo_test.ts` (which asserts) and `tests/zoo/table.ts` (which prints the
 * README compatibility table).
 *
 * @module
 */
import { explainMany, type ExplainRequest, sessionOf } from "../../core/explain.ts";
import { inputLikeNodes } from "../../core/graph.ts";
import { registry } from "../../core/registry.ts";
import type { ModelSession } from "../../core/session.ts";
import { tf } from "../../core/tensor.ts";
import "../../plugins/mod.ts";
import { pyramidLayers } from "../../plugins/gradual_extrapolation.ts";
import { stageFactors } from "../../plugins/gradual_plus.ts";
import { ZOO_CLASSES, type ZooEntry, zooInput } from "./models.ts";

/** Extrapolators of the sweep (`none` = the method's own map). */
export const EXTRAPOLATORS = ["none", "gradual", "gradual+"] as const;

/** Cheap settings for the methods that run many passes. */
const METHOD_OPTIONS: Record<string, Record<string, unknown>> = {
  "integrated-gradients": { steps: 8 },
  "smooth-grad": { samples: 3 },
  "score-cam": { batchSize: 32 },
};

/** One method x extrapolator x layer run. */
export interface Cell {
  /** Method name. */
  method: string;
  /** Extrapolator (`none` for none). */
  extrapolator: string;
  /** `default` or `inner`. */
  layerChoice: "default" | "inner";
  /** The layer the method used. */
  layer?: string;
  /** Whether the map is finite and not constant. */
  ok: boolean;
  /** The error or the defect, when not ok. */
  error?: string;
}

/** The checks of one model against tfjs itself. */
export interface ModelReport {
  /** Zoo entry name. */
  name: string;
  /** max |softmax(executor scores) - model.predict| / max |model.predict|. */
  scoreRelErr: number;
  /** max |executor input gradient - tf.grad| / max |tf.grad| (of the top class probability). */
  gradRelErr: number;
  /** max |guided - plain gradient| over the input map (0 = identical). */
  guidedVsPlain: number;
  /** Layers of the gradual / gradual+ pyramids that are the input or a padding / rescaling of it. */
  inputStages: string[];
  /** numTensors after minus before a second round of every method (caches filled). */
  tensorGrowth: number;
  /** The default CAM, EB layers. */
  defaults: { cam?: string; eb?: string };
  /** How the scores were found. */
  scoreNote?: string;
  /** Every run. */
  cells: Cell[];
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m > 0 ? d / m : d;
}

function sane(map: Float32Array): string | undefined {
  let lo = Infinity, hi = -Infinity;
  for (const v of map) {
    if (!Number.isFinite(v)) return "non-finite map";
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo > 1e-6 ? undefined : "constant map";
}

/** Scores and input-gradient checks against tfjs's own forward pass and `tf.grad`. */
export function checkAgainstTfjs(
  model: tf.LayersModel,
  session: ModelSession,
  x: tf.Tensor4D,
): { scoreRelErr: number; gradRelErr: number } {
  const graph = session.graph;
  const pass = session.forward(x, { gradientsFrom: [graph.inputName] });
  try {
    const ref = tf.tidy(() => (model.predict(x) as tf.Tensor).reshape([x.shape[0], -1]));
    const hasSoftmax = !graph.scoreNote?.includes("no softmax");
    const mine = tf.tidy(() =>
      !hasSoftmax
        ? pass.scores.clone()
        : graph.scoreActivation === "sigmoid"
        ? tf.sigmoid(pass.scores)
        : tf.softmax(pass.scores)
    );
    const scoreRelErr = relErr(mine.dataSync(), ref.dataSync());
    // d p_c / d x for the runner-up class c of image 0 (or d s_c / d x without a softmax):
    // the top class of a saturated softmax has p_c (1 - p_c) ~ 1e-4, whose float32 value
    // carries too few digits for a 1e-5 comparison.
    const row = Array.from(ref.dataSync().slice(0, ref.shape[1] as number));
    const c = row.indexOf([...row].sort((a, b) => b - a)[1]);
    const refGrad = tf.tidy(() =>
      tf.grad((xx: tf.Tensor) => {
        const out = (model.apply(xx, { training: false }) as tf.Tensor).reshape([
          x.shape[0],
          -1,
        ]);
        return out.slice([0, c], [1, 1]).sum();
      })(x)
    );
    const seed = tf.tidy(() => {
      const onehot = tf.oneHot([c], ref.shape[1] as number).cast("float32");
      const pad = x.shape[0] > 1 ? tf.zeros([x.shape[0] - 1, ref.shape[1] as number]) : null;
      const first = hasSoftmax
        ? (() => {
          const p = mine.slice([0, 0], [1, -1]);
          return onehot.sub(p).mul(p.slice([0, c], [1, 1]));
        })()
        : onehot;
      return pad ? tf.concat([first, pad]) : first;
    });
    const [g] = pass.backward(seed, { wrt: [graph.inputName] });
    const gradRelErr = relErr(g.dataSync(), refGrad.dataSync());
    tf.dispose([ref, mine, refGrad, seed, g]);
    return { scoreRelErr, gradRelErr };
  } finally {
    pass.dispose();
  }
}

function requestsFor(method: string, inner: string): (ExplainRequest & { cell: Cell })[] {
  const out: (ExplainRequest & { cell: Cell })[] = [];
  for (const ex of EXTRAPOLATORS) {
    for (const choice of ["default", "inner"] as const) {
      out.push({
        method,
        extrapolator: ex,
        layer: choice === "inner" ? inner : undefined,
        methodOptions: METHOD_OPTIONS[method] ?? {},
        cell: { method, extrapolator: ex, layerChoice: choice, ok: false },
      });
    }
  }
  return out;
}

/** Runs the sweep on one zoo entry (builds, checks, disposes the model). */
export async function sweepModel(entry: ZooEntry): Promise<ModelReport> {
  const model = entry.build();
  const x = tf.tidy(() => zooInput(1).mul(entry.inputScale ?? 1) as tf.Tensor4D);
  const session = sessionOf(model) as ModelSession;
  const graph = session.graph;
  try {
    const { scoreRelErr, gradRelErr } = checkAgainstTfjs(model, session, x);
    const cells: Cell[] = [];
    const methods = registry.methods().map((p) => p.name);
    for (const method of methods) {
      const reqs = requestsFor(method, entry.innerLayer);
      for (const r of reqs) {
        try {
          const [res] = await explainMany(session, x, [r]);
          r.cell.layer = res[0].layer;
          const bad = sane(res[0].map);
          r.cell.ok = bad === undefined;
          if (bad) r.cell.error = bad;
        } catch (e) {
          r.cell.error = (e as Error).message.split("\n")[0];
        }
        cells.push(r.cell);
      }
    }
    const [[guided], [plain]] = await explainMany(session, x, [
      { method: "guided-backprop" },
      { method: "gradient" },
    ], { normalize: "none" });
    let guidedVsPlain = 0;
    guided.map.forEach((v, i) =>
      guidedVsPlain = Math.max(guidedVsPlain, Math.abs(v - plain.map[i]))
    );
    const inputLike = inputLikeNodes(graph);
    const stages = [...stageFactors(graph).map((s) => s.layer), ...pyramidLayers(graph)];
    const ebDefault = registry.method("excitation-backprop").defaultLayer(graph, {});
    const camDefault = registry.method("grad-cam").defaultLayer(graph, {});
    // Flat tensor count: a second round of every method (default layer, gradual+) after the
    // sweep has filled every cache must not add a tensor.
    const before = tf.memory().numTensors;
    await explainMany(
      session,
      x,
      methods.map((method) => ({
        method,
        extrapolator: "gradual+",
        methodOptions: METHOD_OPTIONS[method] ?? {},
      })),
    );
    const tensorGrowth = tf.memory().numTensors - before;
    return {
      name: entry.name,
      scoreRelErr,
      gradRelErr,
      guidedVsPlain,
      inputStages: stages.filter((s) => inputLike.has(s)),
      tensorGrowth,
      defaults: { cam: camDefault, eb: ebDefault },
      scoreNote: graph.scoreNote,
      cells,
    };
  } finally {
    x.dispose();
    model.dispose();
  }
}

/** Number of classes of the zoo models (re-exported for the tests). */
export const CLASSES = ZOO_CLASSES;

/** The README compatibility table (architecture x method) from sweep reports. */
export function compatibilityTable(reports: readonly ModelReport[]): string {
  const methods = [...new Set(reports[0].cells.map((c) => c.method))];
  const lines = [
    `| architecture | ${methods.join(" | ")} |`,
    `| --- | ${methods.map(() => "---").join(" | ")} |`,
  ];
  const notes = new Map<string, number>();
  for (const r of reports) {
    const row = methods.map((m) => {
      const cs = r.cells.filter((c) => c.method === m);
      const good = cs.filter((c) => c.ok).length;
      if (good === cs.length) return "ok";
      const refs = cs.filter((c) => !c.ok).map((c) => {
        const error = (c.error ?? "").replace(/'[^']*'/g, "'…'");
        const key = `${c.method} at the ${c.layerChoice} layer: ${error}`;
        if (!notes.has(key)) notes.set(key, notes.size + 1);
        return `[${notes.get(key)}]`;
      });
      const inputOnly = cs.every((c) =>
        c.ok || (c.layerChoice === "inner" && /works at the model input/.test(c.error ?? ""))
      );
      const tag = inputOnly ? "ok at the input" : `${good}/${cs.length}`;
      return `${tag} ${[...new Set(refs)].join("")}`;
    });
    lines.push(`| ${r.name} | ${row.join(" | ")} |`);
  }
  if (notes.size) {
    lines.push("");
    for (const [k, i] of notes) lines.push(`${i}. ${k}`);
  }
  return lines.join("\n");
}
