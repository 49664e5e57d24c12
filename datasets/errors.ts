/**
 * The error every dataset reader throws: one line naming the file (and, inside it, the
 * entry) and what is wrong, e.g.
 * `instances.json: annotations[12] (id 345): bbox must be [x, y, width, height]`.
 *
 * @module
 */

/** A problem with one dataset file (annotation file, image, mask, mapping file). */
export class DatasetError extends Error {
  /** The file concerned. */
  readonly file: string;
  /** What is wrong, one line, without the file name. */
  readonly problem: string;
  /**
   * Creates the error; its message is `<file>: <problem>`.
   *
   * @param file the file concerned
   * @param problem one-line description (which entry, what is wrong)
   */
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "DatasetError";
    this.file = file;
    this.problem = problem;
  }
}
