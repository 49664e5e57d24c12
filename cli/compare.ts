/**
 * `gradual compare`: the paper's comparison figure for each image (input | Grad-CAM |
 * Gradual Grad-CAM | c-EB | Gradual c-EB by default), every method from ONE forward pass
 * per batch.
 *
 * @module
 */
import { join } from "node:path";
import { encodePng } from "../io/mod.ts";
import { listFlag, numberFlag } from "./_args.ts";
import { COMMON_HELP, registered, splitSpec } from "./_common.ts";
import { FileError, UsageError } from "./_errors.ts";
import { explanationFigure } from "./_figure.ts";
import { imageCommand } from "./_image_command.ts";
import { originalOf } from "./_inputs.ts";
import { nonFiniteProblem, outputStem, writeFileAtomic } from "./_output.ts";
import { runCommand } from "./_runner.ts";

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

/** `compare`'s own settings. */
interface CompareSettings {
  /** Panel height in pixels (`--panel-height`). */
  readonly panelHeight: number;
  /** Method specs (`--methods`). */
  readonly specs: string[];
}

/** `gradual compare` for the runner. */
const COMPARE = imageCommand<CompareSettings>({
  name: "compare",
  help: COMPARE_HELP,
  flags: FLAGS,
  settings: (flags) => ({
    panelHeight: numberFlag(flags, "panel-height", 224, { min: 16, max: 4096, integer: true }),
    specs: listFlag(flags, "methods"),
  }),
  select(own, warn) {
    const specs = own.specs.length ? own.specs : DEFAULT_COMPARE_METHODS.split(",");
    const methods = availableMethods(specs, warn);
    if (methods.length === 0) throw new UsageError("none of the --methods is registered");
    return { methods, extrapolators: ["none"] };
  },
  done: (_ctx, names) => (f) => names.has(`${outputStem(f)}.compare.png`),
  async handle(ctx, x, results) {
    const failures = results.flat().map(nonFiniteProblem).filter((p) => p !== undefined);
    if (failures.length > 0) throw new FileError(x.file, `${failures.join("; ")}; no figure`);
    const { own, common } = ctx.settings;
    const fig = explanationFigure(await originalOf(x), results.flat(), {
      colormap: common.colormap,
      alpha: common.alpha,
      panelHeight: own.panelHeight,
    });
    const path = join(common.out, `${outputStem(x.file)}.compare.png`);
    await writeFileAtomic(path, await encodePng(fig.width, fig.height, fig.data));
  },
});

/** Runs `gradual compare`; returns the exit status. */
export function runCompare(argv: readonly string[]): Promise<number> {
  return runCommand(COMPARE, argv);
}
