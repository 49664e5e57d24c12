/**
 * Prints the README compatibility table (architecture x method) from a run of the zoo sweep
 * (`deno task zoo:table`), plus each model's default layers and its checks against tfjs.
 *
 * @module
 */
import { initBackend } from "../../backend/mod.ts";
import { ZOO } from "./models.ts";
import { compatibilityTable, type ModelReport, sweepModel } from "./sweep.ts";

await initBackend({ backend: "wasm", threads: 1 });
const reports: ModelReport[] = [];
for (const entry of ZOO) {
  const t0 = performance.now();
  const r = await sweepModel(entry);
  reports.push(r);
  console.error(
    `${entry.name}: ${Math.round(performance.now() - t0)} ms, scores ${
      r.scoreRelErr.toExponential(1)
    }, gradient ${
      r.gradRelErr.toExponential(1)
    }, CAM ${r.defaults.cam}, EB ${r.defaults.eb}; ${r.scoreNote}`,
  );
}
console.log(compatibilityTable(reports));
