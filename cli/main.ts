/**
 * The `gradual` command line: `explain`, `compare` and `list`.
 *
 * ```sh
 * deno run -A cli/main.ts explain photos/ --out maps
 * deno run -A cli/main.ts compare cat.png
 * deno run -A cli/main.ts list --model shapes-vgg
 * ```
 *
 * Errors are one line (`gradual: <file>: <problem>`); exit status 0 on success, 1 when
 * anything failed, 2 for usage errors. `GRADUAL_DEBUG=1` adds stack traces. This entry point runs
 * with the permissions it was given; `cli/confined.ts` (what `deno task cli` runs) runs the
 * same commands confined to the files of each run.
 *
 * @module
 */
import "../plugins/mod.ts";
import { exitProcess } from "../backend/mod.ts";
import denoJson from "../deno.json" with { type: "json" };
import { runCompare } from "./compare.ts";
import { EXIT_USAGE, exitCodeOf, reportError } from "./_errors.ts";
import { runExplain } from "./explain.ts";
import { runList } from "./list.ts";
import { evalCommand } from "./eval.ts";
import { removeTempFiles } from "./_output.ts";

/** The version from deno.json. */
export const VERSION: string = denoJson.version;

/** Top-level help. */
export const MAIN_HELP = `gradual ${VERSION}: what does a CNN image classifier look at?
Grad-CAM, excitation backprop and gradual extrapolation on TensorFlow.js.

Usage: gradual <command> [options]

Commands:
  explain <inputs...>  saliency maps (overlays, heatmaps, .npy, JSON, grids) for images,
                       folders or globs
  compare <inputs...>  the paper's comparison figure per image
  list                 methods, extrapolators, built-in models; a model's layers
  eval                 explanation quality on held-out generated scenes (pointing game,
                       energy, deletion/insertion AUC with bootstrap CIs)

Options:
  -h, --help           help (also 'gradual <command> --help')
  -V, --version        print the version

Examples:
  gradual explain photos/ --method grad-cam --extrapolate gradual,none --out maps
  gradual compare cat.png --model shapes-vgg
  gradual list --model path/to/model.json

Exit status: 0 ok, 1 some input or output failed, 2 usage error.
Set GRADUAL_DEBUG=1 for stack traces.
`;

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  explain: runExplain,
  compare: runCompare,
  list: runList,
  eval: evalCommand,
};

/** Runs the CLI on `argv` and returns the exit status (never throws). */
export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    if (cmd === "help" && rest[0] && COMMANDS[rest[0]]) return await main([rest[0], "--help"]);
    console.log(MAIN_HELP);
    return cmd === undefined ? EXIT_USAGE : 0;
  }
  if (cmd === "-V" || cmd === "--version" || cmd === "version") {
    console.log(`gradual ${VERSION}`);
    return 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    console.error(
      `gradual: unknown command '${cmd}' (explain, compare, list, eval; see 'gradual --help')`,
    );
    return EXIT_USAGE;
  }
  try {
    return await run(rest);
  } catch (e) {
    reportError(e);
    return exitCodeOf(e);
  }
}

if (import.meta.main) {
  const interrupt = (): void => {
    removeTempFiles();
    exitProcess(130);
  };
  try {
    Deno.addSignalListener("SIGINT", interrupt);
  } catch {
    // signals unsupported here (e.g. Windows without console): nothing to clean up then
  }
  const code = await main(Deno.args);
  exitProcess(code);
}
