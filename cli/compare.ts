/**
 * `gradual compare`: the paper's comparison figure for each image (input | Grad-CAM |
 * Gradual Grad-CAM | c-EB | Gradual c-EB by default), every method from ONE forward pass
 * per batch.
 *
 * @module
 */
import { join } from "node:path";
import { encodePng } from "../io/mod.ts";
import { boolFlag, listFlag, numberFlag, parseFlags, stringFlag } from "./_args.ts";
import { runBatches } from "./_batch.ts";
import {
  buildRequests,
  COMMON_FLAGS,
  COMMON_HELP,
  commonSettings,
  loadPlugins,
  openModel,
  parseOptions,
  preprocessFor,
  registered,
  splitSpec,
  startBackend,
} from "./_common.ts";
import { UsageError } from "./_errors.ts";
import { explanationFigure } from "./_figure.ts";
import { applyShard, discover, parseShard, skippedNotes } from "./_files.ts";
import { originalOf } from "./_inputs.ts";
import { parseTarget, validateRun } from "./_model.ts";
import {
  listNames,
  nonFiniteProblem,
  outputStem,
  prepareOutDir,
  reportDiscovery,
  writeFileAtomic,
} from "./_output.ts";
import { FileError } from "./_errors.ts";
import { Progress } from "./_progress.ts";

/** The paper's figure columns. */
export const DEFAULT_COMPARE_METHODS = "grad-cam,grad-cam+gradual,c-eb,c-eb+gradual";

/** Help of `gradual compare`. */
export const COMPARE_HELP = `gradual compare: one comparison figure per image

Usage: gradual compare [options] <images|folders|globs...>

Writes <image>_<path hash>.compare.png: the input, then one overlay per method, each
titled "METHOD for CLASS". All methods come from one forward pass per batch.

Options:
      --methods LIST   comma list of METHOD or METHOD+EXTRAPOLATOR
                       (default ${DEFAULT_COMPARE_METHODS});
                       methods not registered are skipped with a warning
      --panel-height N panel height in pixels (default 224)
${COMMON_HELP}

Examples:
  gradual compare photos/*.jpg --out figures
  gradual compare cat.png --methods grad-cam,grad-cam+gradual --target 3
  gradual compare cat.png --plugin ./my_method.ts --methods grad-cam,my-method+gradual
`;

const FLAGS = {
  ...COMMON_FLAGS,
  methods: { type: "string", multiple: true },
  "panel-height": { type: "string" },
} as const;

/** The method specs that can run now; warns about (and drops) unregistered ones. */
function availableMethods(specs: readonly string[], warn: (s: string) => void): string[] {
  return specs.filter((spec) => {
    const [m, e] = splitSpec(spec);
    if (!registered("method", m)) {
      warn(`gradual: warning: method '${m}' is not registered; skipping '${spec}'`);
      return false;
    }
    if (e !== undefined && e !== "none" && !registered("extrapolator", e)) {
      warn(`gradual: warning: extrapolator '${e}' is not registered; skipping '${spec}'`);
      return false;
    }
    return true;
  });
}

/** Runs `gradual compare`; returns the exit status. */
export async function runCompare(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseFlags(argv, FLAGS);
  if (boolFlag(flags, "help")) {
    console.log(COMPARE_HELP);
    return 0;
  }
  if (positionals.length === 0) {
    throw new UsageError("compare needs images, folders or globs (see 'gradual compare --help')");
  }
  const common = commonSettings(flags);
  const panelHeight = numberFlag(flags, "panel-height", 224, { min: 16, max: 4096, integer: true });
  const shardSpec = stringFlag(flags, "shard");
  const shard = shardSpec === undefined ? undefined : parseShard(shardSpec);
  const target = parseTarget(stringFlag(flags, "target"));
  const specs = listFlag(flags, "methods");
  const found = await discover(positionals, undefined, { exclude: common.out });
  const files = applyShard(found.files, shard);
  if (!reportDiscovery(found, files, common.quiet)) return 1;

  await loadPlugins(flags);
  const methods = availableMethods(
    specs.length ? specs : DEFAULT_COMPARE_METHODS.split(","),
    (w) => {
      if (!common.quiet) console.error(w);
    },
  );
  if (methods.length === 0) throw new UsageError("none of the --methods is registered");
  const requests = buildRequests(
    methods,
    ["none"],
    stringFlag(flags, "layer"),
    parseOptions(flags),
  );
  await startBackend(flags);
  const model = await openModel(flags, common.quiet);
  try {
    validateRun(model, requests, target);
    await prepareOutDir(common.out);

    let todo = files;
    if (boolFlag(flags, "skip-existing")) {
      const names = await listNames(common.out);
      todo = files.filter((f) => !names.has(`${outputStem(f)}.compare.png`));
    }
    const progress = new Progress({ quiet: common.quiet });
    progress.start(todo.length + found.problems.length);
    for (const p of found.problems) {
      progress.line(`gradual: ${p.file}: ${p.problem}`);
      progress.tick(p.file, false);
    }
    await runBatches({
      model,
      requests,
      target,
      preprocess: preprocessFor(common, model),
      batch: common.batch,
      maxPixels: common.maxPixels,
      progress,
      handle: async (x, results) => {
        const failures = results.flat().map(nonFiniteProblem).filter((p) => p !== undefined);
        if (failures.length > 0) throw new FileError(x.file, `${failures.join("; ")}; no figure`);
        const fig = explanationFigure(await originalOf(x), results.flat(), {
          colormap: common.colormap,
          alpha: common.alpha,
          panelHeight,
        });
        const path = join(common.out, `${outputStem(x.file)}.compare.png`);
        await writeFileAtomic(path, await encodePng(fig.width, fig.height, fig.data));
      },
    }, todo);
    progress.finish("image", common.out, files.length - todo.length, skippedNotes(found));
    return progress.failed > 0 ? 1 : 0;
  } finally {
    model.dispose();
  }
}
