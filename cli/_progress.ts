/**
 * Progress reporting on stderr: a redrawn bar when stderr is a terminal and there is more
 * than one image, nothing per image in a pipe, and a one-line summary at the end.
 * `--quiet` silences everything except errors.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Where progress goes (stderr by default; tests pass their own). */
export interface ProgressSink {
  /** Writes text as is. */
  write(text: string): void;
  /** Whether the sink is an interactive terminal. */
  readonly isTerminal: boolean;
}

/** The process's stderr as a {@linkcode ProgressSink}. */
export function stderrSink(): ProgressSink {
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch {
    tty = false;
  }
  return { write: (t) => Deno.stderr.writeSync(encoder.encode(t)), isTerminal: tty };
}

/** Formats seconds as `12.3 s` or `4 min 05 s`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, "0")} s`;
}

/** Counts, timing and the live bar of one run. */
export class Progress {
  readonly #sink: ProgressSink;
  readonly #quiet: boolean;
  readonly #start = performance.now();
  #total = 0;
  #done = 0;
  #failed = 0;
  #bar = false;
  #label = "";

  /**
   * Creates the reporter.
   *
   * @param opts `quiet` silences the bar and summary; `sink` defaults to stderr.
   */
  constructor(opts: { quiet?: boolean; sink?: ProgressSink } = {}) {
    this.#quiet = opts.quiet ?? false;
    this.#sink = opts.sink ?? stderrSink();
  }

  /** Starts counting `total` items (the bar shows only for more than one on a terminal). */
  start(total: number): void {
    this.#total = total;
    this.#bar = !this.#quiet && this.#sink.isTerminal && total > 1;
    this.#draw();
  }

  /** Whether `--quiet` is on (no notes, bar or summary). */
  get quiet(): boolean {
    return this.#quiet;
  }

  /** Number of items that failed so far. */
  get failed(): number {
    return this.#failed;
  }

  /** Number of items finished (ok or failed). */
  get done(): number {
    return this.#done;
  }

  /** Marks one item finished; `ok` false counts it as failed. */
  tick(label: string, ok = true): void {
    this.#done++;
    if (!ok) this.#failed++;
    this.#label = label;
    this.#draw();
  }

  /** Prints a line (error or warning) without garbling the bar. */
  line(text: string): void {
    if (this.#bar) this.#sink.write("\r\x1b[2K");
    this.#sink.write(`${text}\n`);
    this.#draw();
  }

  #draw(): void {
    if (!this.#bar) return;
    const width = 28;
    const filled = this.#total ? Math.round((width * this.#done) / this.#total) : 0;
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    const name = this.#label.length > 40 ? `...${this.#label.slice(-37)}` : this.#label;
    const fail = this.#failed ? `, ${this.#failed} failed` : "";
    this.#sink.write(`\r\x1b[2K[${bar}] ${this.#done}/${this.#total}${fail} ${name}`);
  }

  /**
   * Clears the bar and prints the summary: items, failures, skipped, `notes` (e.g. "3
   * unsupported files in folders skipped"), time, output folder.
   */
  finish(what: string, outDir?: string, skipped = 0, notes: readonly string[] = []): void {
    if (this.#bar) this.#sink.write("\r\x1b[2K");
    this.#bar = false;
    if (this.#quiet) return;
    const n = this.#done;
    const time = formatDuration(performance.now() - this.#start);
    const where = outDir !== undefined ? `, output in ${outDir}` : "";
    const skip = (skipped ? `, ${skipped} skipped (outputs exist)` : "") +
      notes.map((t) => `, ${t}`).join("");
    this.#sink.write(
      `gradual: ${n} ${what}${
        n === 1 ? "" : "s"
      }, ${this.#failed} failed${skip}, ${time}${where}\n`,
    );
  }
}
