/**
 * What the image commands (`explain`, `compare`) share on top of the runner: their common
 * flags, finding the inputs (with `--shard`), `--skip-existing`, the batch loop with progress
 * and the summary line. Each supplies its own flags, methods, skip test and per-image
 * outputs ({@linkcode ImageCommandSpec}).
 *
 * @module
 */
import type { Explanation } from "../core/explain.ts";
import { boolFlag, type FlagSpec, type FlagValues } from "./_args.ts";
import { runBatches } from "./_batch.ts";
import { COMMON_FLAGS, type CommonSettings, commonSettings, preprocessFor } from "./_common.ts";
import { UsageError } from "./_errors.ts";
import { applyShard, discover, type Discovery, skippedNotes } from "./_files.ts";
import type { LoadedInput } from "./_inputs.ts";
import { listNames, prepareOutDir, reportDiscovery } from "./_output.ts";
import type { Command, RunContext, Selection } from "./_runner.ts";

/** An image command's settings: its own, the common ones and its inputs. */
export interface ImageSettings<S> {
  /** The command's own settings. */
  readonly own: S;
  /** The common flags' settings. */
  readonly common: CommonSettings;
  /** The inputs of this shard, sorted. */
  readonly files: readonly string[];
  /** What input discovery found (problems and skipped files are reported in the summary). */
  readonly found: Discovery;
}

/** What an image command's hooks get. */
export type ImageContext<S> = RunContext<ImageSettings<S>>;

/** What differs between the image commands. */
export interface ImageCommandSpec<S> {
  /** The command's word (`explain`), for its usage messages. */
  readonly name: string;
  /** What `--help` prints. */
  readonly help: string;
  /** Its own flags (the common ones are added). */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Reads its own flags (usage errors, before any work). */
  settings(flags: FlagValues, common: CommonSettings): S;
  /** File extensions taken from folders and globs (default: the image formats). */
  extensions?(common: CommonSettings): readonly string[];
  /** What to run, once the plugins are loaded (see {@linkcode Command.select}). */
  select(own: S, warn: (line: string) => void): Omit<Selection, "target">;
  /**
   * For `--skip-existing`: a test of whether every output of a file exists, given the
   * names in the output folder.
   */
  done(ctx: ImageContext<S>, names: ReadonlySet<string>): (file: string) => boolean;
  /** Writes one image's outputs; `results[i]` holds request i's explanations of it. */
  handle(ctx: ImageContext<S>, input: LoadedInput, results: Explanation[][]): Promise<void>;
}

/**
 * The runner's command for an image command: it takes images, folders or globs, runs every
 * request on them in batches, writes the command's outputs and prints the summary.
 *
 * @param spec what the command supplies
 * @returns the command, for `runCommand`
 */
export function imageCommand<S>(spec: ImageCommandSpec<S>): Command<ImageSettings<S>> {
  return {
    help: spec.help,
    flags: { ...COMMON_FLAGS, ...spec.flags },
    async prepare(flags, positionals) {
      if (positionals.length === 0) {
        throw new UsageError(
          `${spec.name} needs images, folders or globs (see 'gradual ${spec.name} --help')`,
        );
      }
      const common = commonSettings(flags);
      const own = spec.settings(flags, common);
      const found = await discover(positionals, spec.extensions?.(common), {
        exclude: common.out,
      });
      const files = applyShard(found.files, common.shard);
      if (!reportDiscovery(found, files, common.quiet)) return 1;
      return { own, common, files, found };
    },
    select(s, warn) {
      return { ...spec.select(s.own, warn), target: s.common.target };
    },
    async run(ctx) {
      const { common, files, found } = ctx.settings;
      await prepareOutDir(common.out);
      let todo = files;
      if (boolFlag(ctx.flags, "skip-existing")) {
        const done = spec.done(ctx, await listNames(common.out));
        todo = files.filter((f) => !done(f));
      }
      const progress = ctx.progress;
      progress.start(todo.length + found.problems.length);
      for (const p of found.problems) {
        progress.line(`gradual: ${p.file}: ${p.problem}`);
        progress.tick(p.file, false);
      }
      await runBatches({
        model: ctx.model,
        requests: ctx.requests,
        target: ctx.target,
        preprocess: preprocessFor(common, ctx.model),
        batch: common.batch,
        maxPixels: common.maxPixels,
        progress,
        handle: (x, results) => spec.handle(ctx, x, results),
      }, todo);
      progress.finish("image", common.out, files.length - todo.length, skippedNotes(found));
      return progress.failed > 0 ? 1 : 0;
    },
  };
}
