/**
 * The per-pair results file (`--results FILE`, JSON Lines), which makes a run resumable.
 *
 * Line 1 is a header with the settings that determine the numbers (model, dataset, input
 * size, preprocessing, rows, steps, tolerance, regions, subset, curve limit); every further
 * line is one {@linkcode PairRecord}, appended (one write per group of pairs) as soon as
 * the group is scored. `--resume` reads the file back, checks that the header matches the
 * current settings, skips the pairs already there and appends the rest; a final line cut
 * short by a crash is ignored (and completed by a newline before appending).
 *
 * @module
 */
import { DatasetError } from "./errors.ts";

/** Scores of one row for one pair: pointing, pointing (first), energy, deletion, insertion, ms. */
export type RowScores = [number, number, number, number | null, number | null, number];

/** One evaluated (image, class) pair. */
export interface PairRecord {
  /** The image key. */
  image: string;
  /** The dataset category. */
  category: string;
  /** The model class that was explained. */
  class: number;
  /** Scores per row (same order as the header's `rows`). */
  scores: RowScores[];
}

/** The settings line of a results file. */
export interface ResultsHeader {
  /** Format marker and version. */
  gradualEvalResults: 1;
  /** Everything that must match to resume (compared as JSON). */
  settings: Record<string, unknown>;
}

/** An open results file. */
export interface ResultsFile {
  /** Pairs already in the file (after `--resume`), by pair key. */
  readonly done: Map<string, PairRecord>;
  /** Appends records (one write). */
  append(records: readonly PairRecord[]): Promise<void>;
  /** Closes the file. */
  close(): void;
}

const enc = new TextEncoder();

/**
 * Opens a results file: creates it with the header, or with `resume` reads what is there.
 * Without `resume` an existing non-empty file is an error (nothing is overwritten).
 *
 * @example
 * ```ts
 * import { openResults } from "./results.ts";
 * // const r = await openResults("voc-gradcam.jsonl", { model: "vgg16" }, true);
 * // console.log(r.done.size, "pairs done");
 * ```
 *
 * @param file path
 * @param settings the run's settings (see the module documentation)
 * @param resume continue an existing file
 * @param keyOf pair key of a record
 * @returns the open file
 * @throws {DatasetError} for a malformed file, different settings, or an existing file
 *   without `resume`
 */
export async function openResults(
  file: string,
  settings: Record<string, unknown>,
  resume: boolean,
  keyOf: (r: PairRecord) => string,
): Promise<ResultsFile> {
  const done = new Map<string, PairRecord>();
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new DatasetError(file, `cannot read (${(e as Error).name})`);
    }
  }
  if (text.trim() !== "" && !resume) {
    throw new DatasetError(
      file,
      "the results file exists; pass --resume to continue it, or remove it",
    );
  }
  const wanted = JSON.stringify(settings);
  let needNewline = false;
  let fresh = true;
  let cutAt = -1; // character offset of a final line cut short
  if (text.trim() !== "") {
    fresh = false;
    const lines = text.split("\n");
    const complete = text.endsWith("\n");
    needNewline = !complete;
    let header: ResultsHeader | undefined;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === "") continue;
      const last = i === lines.length - 1 && !complete;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        if (last) { // cut short by an interrupted run
          cutAt = text.length - line.length;
          continue;
        }
        throw new DatasetError(file, `line ${i + 1}: not valid JSON`);
      }
      if (!header) {
        const h = v as ResultsHeader;
        if (!h || h.gradualEvalResults !== 1) {
          throw new DatasetError(file, "line 1: not a gradual eval results file");
        }
        if (JSON.stringify(h.settings) !== wanted) {
          const diff = Object.keys(settings).filter((k) =>
            JSON.stringify(h.settings?.[k]) !== JSON.stringify(settings[k])
          );
          throw new DatasetError(
            file,
            `made with different settings (${diff.join(", ")}); use another results file`,
          );
        }
        header = h;
        continue;
      }
      const r = v as PairRecord;
      if (
        !r || typeof r.image !== "string" || typeof r.category !== "string" ||
        !Number.isInteger(r.class) || !Array.isArray(r.scores)
      ) {
        if (last) {
          cutAt = text.length - line.length;
          continue;
        }
        throw new DatasetError(file, `line ${i + 1}: not a pair record`);
      }
      done.set(keyOf(r), r);
    }
    if (!header) { // only a header cut short: start again
      fresh = true;
      cutAt = 0;
    }
  }
  if (cutAt >= 0) {
    await Deno.truncate(file, enc.encode(text.slice(0, cutAt)).length);
    needNewline = false;
  }
  let fh: Deno.FsFile;
  try {
    fh = await Deno.open(file, { write: true, create: true, append: true });
  } catch (e) {
    throw new DatasetError(file, `cannot write (${(e as Error).name})`);
  }
  const write = async (s: string): Promise<void> => {
    const bytes = enc.encode(s);
    let off = 0;
    while (off < bytes.length) off += await fh.write(bytes.subarray(off));
  };
  if (fresh) {
    const header: ResultsHeader = { gradualEvalResults: 1, settings };
    await write(JSON.stringify(header) + "\n");
  } else if (needNewline) await write("\n");
  return {
    done,
    async append(records: readonly PairRecord[]): Promise<void> {
      if (records.length === 0) return;
      await write(records.map((r) => JSON.stringify(r)).join("\n") + "\n");
      await fh.sync().catch(() => {});
    },
    close(): void {
      try {
        fh.close();
      } catch {
        // already closed
      }
    },
  };
}
