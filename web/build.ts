/**
 * Builds the playground into `web/dist/` (git-ignored; rebuilt by `deno task serve` and by
 * the browser test): `deno bundle --platform browser` of `web/app.ts` and `web/worker.ts`
 * (tfjs and the toolkit bundled in, nothing loaded from a CDN), plus the three
 * tfjs-backend-wasm binaries copied from `node_modules/`.
 *
 * Usage: `deno run --allow-read --allow-write --allow-run --allow-env web/build.ts [--minify]`
 *
 * @module
 */

/** Options of {@linkcode build}. */
export interface BuildOptions {
  /** Minify the bundles (default false). */
  minify?: boolean;
  /** Print nothing (default false). */
  quiet?: boolean;
}

/** What {@linkcode build} produced. */
export interface BuildResult {
  /** Absolute path of `web/dist`. */
  dir: string;
  /** Files written, relative to `dir`. */
  files: string[];
  /** Build time, ms. */
  ms: number;
}

/** The repository root. */
export const REPO_ROOT: URL = new URL("../", import.meta.url);

/** The tfjs-backend-wasm binaries the page may load (plain, SIMD, threaded SIMD). */
export const WASM_FILES: readonly string[] = Object.freeze([
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
]);

/**
 * Bundles the page and its worker and copies the wasm binaries into `web/dist/`.
 *
 * @param opts minify / quiet
 * @returns the output folder, its files and the build time
 * @throws Error with deno bundle's output when bundling fails, or when the wasm binaries
 *   are not in `node_modules/` (run any `deno task` once to install the npm packages)
 */
export async function build(opts: BuildOptions = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const root = decodeURIComponent(REPO_ROOT.pathname);
  const dist = `${root}web/dist`;
  await Deno.mkdir(dist, { recursive: true });
  const args = [
    "bundle",
    "--quiet",
    "--platform",
    "browser",
    "--format",
    "esm",
    "--sourcemap",
    "linked",
    "--outdir",
    "web/dist",
  ];
  if (opts.minify) args.push("--minify");
  args.push("web/app.ts", "web/worker.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`deno bundle failed:\n${text}`);
  }
  const wasmDir = `${root}node_modules/@tensorflow/tfjs-backend-wasm/dist`;
  for (const f of WASM_FILES) {
    try {
      await Deno.copyFile(`${wasmDir}/${f}`, `${dist}/${f}`);
    } catch (e) {
      throw new Error(
        `cannot copy ${f} from ${wasmDir} (${(e as Error).message}); ` +
          "run `deno install` in the repository root first",
      );
    }
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(dist)) if (e.isFile) files.push(e.name);
  files.sort();
  const ms = performance.now() - t0;
  if (!opts.quiet) console.log(`built web/dist (${files.join(", ")}) in ${ms.toFixed(0)} ms`);
  return { dir: dist, files, ms };
}

if (import.meta.main) {
  await build({ minify: Deno.args.includes("--minify") });
}
