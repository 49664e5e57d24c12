/**
 * The one skeleton of the model-running commands (`explain`, `compare`, `eval`): parse the
 * flags, let the command read its own, load the plugins, resolve the requests (method and
 * extrapolator names only once the plugins are registered, so a plugin may be named
 * `grad-norm++`), start the backend, load the model, check the requests against it before
 * any image is read, then hand the command its work and dispose of the model.
 *
 * A command supplies only what differs: its flags and help, its settings, which methods it
 * runs, and its work and summary ({@linkcode Command}).
 *
 * @module
 */
import type { ExplainRequest } from "../core/explain.ts";
import { type CliRequest, pluginLines, withoutDefaultAtInput } from "./_plugin_options.ts";
import type { TargetSpec } from "../core/targets.ts";
import { boolFlag, type FlagSpec, type FlagValues, parseFlags, stringFlag } from "./_args.ts";
import {
  backendFlags,
  buildRequests,
  loadPlugins,
  openModel,
  parseOptions,
  startBackend,
} from "./_common.ts";
import { type LoadedModel, validateRun } from "./_model.ts";
import { Progress } from "./_progress.ts";

/** What a command runs: method specs, the extrapolators of specs without one, the target. */
export interface Selection {
  /** Method specs, `METHOD` or `METHOD+EXTRAPOLATOR`. */
  readonly methods: readonly string[];
  /** Extrapolators each spec without one gets (`none` for none). */
  readonly extrapolators: readonly string[];
  /**
   * Whether `extrapolators` is the command's default rather than asked for: it is then left
   * off maps already at input resolution, with a note.
   */
  readonly defaultExtrapolators?: boolean;
  /** The classes to explain, checked against the model's labels before any image is read. */
  readonly target: TargetSpec;
}

/** What a command's work gets from the runner. */
export interface RunContext<S> {
  /** The parsed flags. */
  readonly flags: FlagValues;
  /** The command's settings (from {@linkcode Command.prepare}). */
  readonly settings: S;
  /** The loaded model (disposed by the runner afterwards). */
  readonly model: LoadedModel;
  /** The resolved requests, checked against the model. */
  readonly requests: readonly ExplainRequest[];
  /** The target, checked against the model. */
  readonly target: TargetSpec;
  /** Progress and failure counting (quiet with `--quiet`). */
  readonly progress: Progress;
}

/** One model-running command: what differs between `explain`, `compare` and `eval`. */
export interface Command<S extends object> {
  /** What `--help` prints. */
  readonly help: string;
  /**
   * Every flag the command takes. The runner reads `--help`, `--quiet`, `--plugin`,
   * `--layer`, `--opt`, `--backend`, `--threads`, `--winograd`, `--model`, `--labels`,
   * `--input-size` and `--allow-outside-paths`; those a command does not take stay unset.
   */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /**
   * Whether every model gets all cores (at most 8) without `--threads`; when false, the
   * built-in models get one thread (see `startBackend`).
   */
  readonly allCores?: boolean;
  /**
   * Reads the command's own flags and arguments (usage errors, before any work) and finds
   * its inputs. Returns the settings, or the exit status when the command ends here
   * (nothing to do, or a mode that needs no model).
   */
  prepare(flags: FlagValues, positionals: readonly string[]): Promise<S | number>;
  /**
   * What to run; called once the plugins are loaded, so names may be plugins'. May warn
   * through `warn` (silent with `--quiet`) or throw usage errors.
   */
  select(settings: S, warn: (line: string) => void): Selection;
  /** The command's work and summary; returns the exit status. */
  run(ctx: RunContext<S>): Promise<number>;
}

/**
 * The requests of a selection: `--layer` and `--opt` applied (`--opt [NAME.]layer=L` is the
 * request's layer), each spec split into method and extrapolator, every option validated
 * (usage errors, before the model or any image is read). Call it only once the plugins are
 * loaded: a spec is split where both sides are registered names.
 *
 * @param flags the parsed flags (`--layer`, `--opt`)
 * @param selection the method specs and extrapolators
 * @returns one request per method and extrapolator
 */
export function resolveRequests(
  flags: FlagValues,
  selection: Pick<Selection, "methods" | "extrapolators" | "defaultExtrapolators">,
): CliRequest[] {
  return buildRequests(
    selection.methods,
    selection.extrapolators,
    stringFlag(flags, "layer"),
    parseOptions(flags),
    selection.defaultExtrapolators,
  );
}

/**
 * Runs `cmd` on its arguments (without the command's word): help, settings, plugins,
 * requests, backend, model, checks, then the command's work. Usage and file errors are
 * thrown as `UsageError` / `FileError` for the dispatcher in `cli/main.ts` to report.
 *
 * @param cmd the command
 * @param argv the arguments after the command's word
 * @returns the exit status
 */
export async function runCommand<S extends object>(
  cmd: Command<S>,
  argv: readonly string[],
): Promise<number> {
  const { flags, positionals } = parseFlags(argv, cmd.flags);
  if (boolFlag(flags, "help")) {
    await loadPlugins(flags);
    console.log([cmd.help, ...pluginLines()].join("\n"));
    return 0;
  }
  backendFlags(flags);
  const settings = await cmd.prepare(flags, positionals);
  if (typeof settings === "number") return settings;
  const quiet = boolFlag(flags, "quiet");

  await loadPlugins(flags);
  const selection = cmd.select(settings, (line) => {
    if (!quiet) console.error(line);
  });
  const asked = resolveRequests(flags, selection);
  await startBackend(flags, cmd.allCores);
  const model = await openModel(flags, quiet);
  try {
    validateRun(model, asked, selection.target);
    const requests = withoutDefaultAtInput(model.session.graph, asked, (line) => {
      if (!quiet) console.error(line);
    });
    const progress = new Progress({ quiet });
    return await cmd.run({
      flags,
      settings,
      model,
      requests,
      target: selection.target,
      progress,
    });
  } finally {
    model.dispose();
  }
}
