/**
 * The worker a confined CLI run happens in (see `_confine.ts`): it receives the command
 * line, runs it and posts back the exit status; an `interrupt` message removes the
 * temporary files of writes in progress.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { main } from "./main.ts";
import { removeTempFiles } from "./_output.ts";

self.onmessage = async (ev: MessageEvent<{ argv?: string[]; interrupt?: boolean }>) => {
  if (ev.data.interrupt) {
    removeTempFiles();
    self.postMessage({ cleaned: true });
    return;
  }
  const code = await main(ev.data.argv ?? []);
  self.postMessage({ code });
};
