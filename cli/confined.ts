/**
 * The `gradual` command line, confined: each command (and every plugin it loads) runs in a
 * worker whose permissions are narrowed to the files of that run (see `_confine.ts`). This
 * is what `deno task cli` runs; it needs Deno's `--unstable-worker-options`.
 *
 * ```sh
 * deno run --unstable-worker-options --frozen --no-remote --allow-read --allow-write \
 *   --allow-env cli/confined.ts explain photos/ --out maps
 * ```
 *
 * @module
 */
import { exitProcess } from "../backend/mod.ts";
import { confinedRun } from "./_confine.ts";

if (import.meta.main) {
  let stop: (() => Promise<void>) | undefined;
  try {
    Deno.addSignalListener("SIGINT", async () => {
      await stop?.(); // the worker removes the temporary files of writes in progress
      exitProcess(130);
    });
  } catch {
    // signals unsupported here (e.g. Windows without console): nothing to clean up then
  }
  const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
  const code = await confinedRun(Deno.args, root, (s) => stop = s);
  if (code === undefined) {
    console.error("gradual: cli/confined.ts needs deno run --unstable-worker-options");
    exitProcess(2);
  }
  exitProcess(code);
}
