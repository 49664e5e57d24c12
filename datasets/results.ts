/**
 * The per-pair results file (`--results FILE`, JSON Lines), which makes a run resumable.
 *
 * Line 1 is a header (`{"gradualEvalResults": 2, "settings": {...}}`) with the settings
 * that determine the numbers (model, dataset, input size, preprocessing, rows, layers,
 * steps, tolerance, energy map, insertion start, regions, subset, curve limit, shard);
 * every further line is one {@linkcode PairRecord}, appended (one write per group of pairs)
 * as soon as the group is scored, e.g.
 *
 * ```json
 * {"index":0,"image":"img/s0.png","category":"disk","class":0,"scores":{"grad-cam+none":
 *   {"pointing":1,"pointingFirst":1,"energy":0.61,"deletion":0.12,"insertion":0.83,"ms":21.5,
 *   "layer":"block5_conv3"}}}
 * ```
 *
 * `scores` has one entry per row of the header's `rows` (`method+extrapolator`, the
 * centre baseline as `centre-baseline+none`); `deletion` / `insertion` are `null` past the
 * curve limit; `index` is the pair's position in the whole run, so that the files of
 * several shards can be merged into the order of one run. `--resume` reads the file back, checks that the header matches the
 * current settings, skips the pairs already there and appends the rest; a final line cut
 * short by a crash is ignored (and completed by a newline before appending).
 *
 * @module
 */
import type { SampleRowScores } from "../metrics/evaluate.ts";
import { DatasetError } from "./errors.ts";

/** Scores of one row for one pair (the same fields as eval's per-sample scores). */
export type RowScores = SampleRowScores;

/** Version of the results format written by this module. */
export const RESULTS_FORMAT = 2;

/** One evaluated (image, class) pair. */
export interface PairRecord {
  /** Position of the pair in the whole run (all shards). */
  index: number;
  /** The image key. */
  image: string;
  /** The dataset category. */
  category: string;
  /** The model class that was explained. */
  class: number;
  /** Scores per row, by row name (`method+extrapolator`, as in the header's `rows`). */
  scores: Record<string, RowScores>;
}

/** The settings line of a results file. */
export interface ResultsHeader {
  /** Format marker and version ({@linkcode RESULTS_FORMAT}). */
  gradualEvalResults: number;
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

/** Throws unless `h` is the header of a results file this version reads. */
function checkHeader(h: ResultsHeader | null, file: string): void {
  if (!h || typeof h.gradualEvalResults !== "number" || typeof h.settings !== "object") {
    throw new DatasetError(file, "line 1: not a gradual eval results file");
  }
  if (h.gradualEvalResults !== RESULTS_FORMAT) {
    throw new DatasetError(
      file,
      `results format ${h.gradualEvalResults}, this gradual reads format ${RESULTS_FORMAT}; ` +
        "start a new results file",
    );
  }
}

/** Whether `r` has the shape of a {@linkcode PairRecord}. */
function isRecord(r: PairRecord | null): boolean {
  return !!r && Number.isInteger(r.index) && typeof r.image === "string" &&
    typeof r.category === "string" && Number.isInteger(r.class) &&
    typeof r.scores === "object" && r.scores !== null && !Array.isArray(r.scores);
}

/** A results file read back whole (for merging shards). */
export interface ResultsContent {
  /** The header's settings. */
  settings: Record<string, unknown>;
  /** The records, in file order. */
  records: PairRecord[];
}

/**
 * Reads a whole results file (header and records; a final line cut short is an error
 * here, since a file to merge should be complete).
 *
 * @param file path
 * @returns the settings and records
 * @throws {DatasetError} for a missing or malformed file
 */
export async function readResults(file: string): Promise<ResultsContent> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new DatasetError(
      file,
      e instanceof Deno.errors.NotFound ? "no such file" : `cannot read (${(e as Error).name})`,
    );
  }
  const lines = text.split("\n");
  let settings: Record<string, unknown> | undefined;
  const records: PairRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(lines[i]);
    } catch {
      throw new DatasetError(file, `line ${i + 1}: not valid JSON (an unfinished run?)`);
    }
    if (settings === undefined) {
      checkHeader(v as ResultsHeader, file);
      settings = (v as ResultsHeader).settings;
      continue;
    }
    if (!isRecord(v as PairRecord)) {
      throw new DatasetError(file, `line ${i + 1}: not a pair record`);
    }
    records.push(v as PairRecord);
  }
  if (settings === undefined) throw new DatasetError(file, "empty: no header line");
  return { settings, records };
}

/**
 * Opens a results file: creates it with the header, or with `resume` reads what is there.
 * Without `resume` an existing non-empty file is an error (nothing is overwritten).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openResults, type PairRecord } from "./results.ts";
 * const file = `${await Deno.makeTempDir()}/run.jsonl`;
 * const keyOf = (r: PairRecord): string => `${r.image} ${r.category}`;
 * const out = await openResults(file, { model: "shapes-vgg" }, false, keyOf); // a new file
 * await out.append([{ index: 0, image: "a.png", category: "dog", class: 3, scores: {} }]);
 * out.close();
 * const r = await openResults(file, { model: "shapes-vgg" }, true, keyOf); // resume it
 * assert.deepEqual([...r.done.keys()], ["a.png dog"]); // one pair done
 * r.close();
 * await Deno.remove(file);
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
        checkHeader(h, file);
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
      if (!isRecord(r)) {
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
    const header: ResultsHeader = { gradualEvalResults: RESULTS_FORMAT, settings };
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
