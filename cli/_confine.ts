/**
 * Confinement of a CLI run: the command (and so every plugin it loads) runs in a worker
 * whose Deno permissions are narrowed to what this run needs, derived from its command line.
 *
 * The worker may read: the project's own folder (code, built-in models, the npm packages'
 * WebAssembly files), the inputs named on the command line (a folder: all of it; a glob:
 * the folder before its first pattern), the model's folder, the labels file, each local
 * plugin's folder, the output folder and, for `eval`, the dataset's folder and files. It may
 * write only the output folder (and `eval`'s `--results` file). It may read the environment
 * variables `GRADUAL_DEBUG` and `IMAGESCRIPT_WASM_SIMD` only, has no network, no
 * subprocesses, no FFI, no system information, and may import remote modules only from the
 * hosts of the `--plugin` URLs given, and only when the process itself was granted them
 * (`deno run --allow-import=HOST`). Each of these is also capped by what the process itself
 * was granted (a worker cannot get more). With `--allow-outside-paths` the read permission is
 * the process's own.
 *
 * Worker permissions need Deno's `--unstable-worker-options` (without it, Deno ends the
 * process when the worker is created, so `cli/confined.ts` is a separate entry point and
 * `cli/main.ts` runs unconfined, with the permissions it was given).
 *
 * @module
 */
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The permissions a confined run gets. */
export interface Confinement {
  /** Paths it may read (each with everything below it), or "inherit" for the process's own. */
  readonly read: string[] | "inherit";
  /** Paths it may write. */
  readonly write: string[];
  /** Environment variables it may read. */
  readonly env: string[];
  /** Hosts it may import remote modules from. */
  readonly import: string[];
}

/** Environment variables the toolkit reads. */
const ENV_VARS = ["GRADUAL_DEBUG", "IMAGESCRIPT_WASM_SIMD"];

/** Flags whose value is a path the run reads (a file; its folder for models and plugins). */
const READ_FILE_FLAGS = ["labels", "class-map", "difficult-list"];

const GLOB_CHARS = /[*?[{]/;

/** All values of `--name VALUE` / `--name=VALUE` (and `-x VALUE` for `short`) in `argv`. */
export function flagValues(argv: readonly string[], name: string, short?: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a === `--${name}` || (short !== undefined && a === `-${short}`)) {
      if (i + 1 < argv.length) out.push(argv[++i]);
    } else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  }
  return out;
}

/** Arguments that are not flags or flag values (inputs), given the boolean flags. */
function positionals(argv: readonly string[]): string[] {
  const booleans = new Set([
    "--skip-existing",
    "--quiet",
    "-q",
    "--help",
    "-h",
    "--json",
    "--resume",
    "--allow-outside-paths",
  ]);
  const out: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("-") && a.length > 1) {
      if (!booleans.has(a) && !a.includes("=")) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The folder a glob pattern searches (the part before its first pattern segment). */
function globBase(pattern: string): string {
  const parts = pattern.split("/");
  const first = parts.findIndex((p) => GLOB_CHARS.test(p));
  if (first < 0) return pattern;
  return parts.slice(0, first).join("/") || (pattern.startsWith("/") ? "/" : ".");
}

function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) || s.startsWith("jsr:") || s.startsWith("npm:");
}

/** Folders of the npm packages whose files are read at run time (WebAssembly binaries). */
function packageFolders(): string[] {
  const out: string[] = [];
  const req = createRequire(import.meta.url);
  for (const p of ["imagescript/wasm/node/jpeg.js", "@tensorflow/tfjs-backend-wasm"]) {
    try {
      out.push(dirname(dirname(req.resolve(p))));
    } catch {
      // not installed: nothing to read there
    }
  }
  return out;
}

/** The permissions a run with command line `argv` needs (see the module documentation). */
export function confinementFor(argv: readonly string[], root: string): Confinement {
  const read = new Set<string>([root, ...packageFolders()]);
  const write = new Set<string>();
  const imports = new Set<string>();
  const cmd = argv[0];
  for (const p of positionals(argv)) read.add(resolve(globBase(p)));
  for (const m of flagValues(argv, "model", "m")) {
    if (!isUrl(m) && (m.includes("/") || m.endsWith(".json"))) read.add(resolve(dirname(m)));
  }
  for (const f of READ_FILE_FLAGS) for (const v of flagValues(argv, f)) read.add(resolve(v));
  for (const p of flagValues(argv, "plugin")) {
    if (/^https?:\/\//i.test(p)) imports.add(new URL(p).host);
    else if (p.startsWith("file:")) read.add(dirname(fileURLToPath(p)));
    else if (!isUrl(p)) read.add(resolve(dirname(p)));
  }
  if (cmd === "explain" || cmd === "compare") {
    const out = resolve(flagValues(argv, "out", "o").at(-1) ?? "gradual-out");
    read.add(out);
    write.add(out);
  }
  if (cmd === "eval") {
    for (const d of flagValues(argv, "dataset")) {
      read.add(resolve(d));
      read.add(resolve(dirname(d)));
    }
    for (const d of flagValues(argv, "images")) read.add(resolve(d));
    for (const r of flagValues(argv, "results")) {
      read.add(resolve(r));
      write.add(resolve(r));
    }
  }
  const outside = argv.includes("--allow-outside-paths");
  return {
    read: outside ? "inherit" : [...read],
    write: [...write],
    env: ENV_VARS,
    import: [...imports],
  };
}

/** The subset of `c` the process itself holds (a worker cannot be given more). */
function heldBy(c: Confinement): Deno.PermissionOptionsObject {
  const granted = (d: Deno.PermissionDescriptor): boolean => {
    try {
      return Deno.permissions.querySync(d).state === "granted";
    } catch {
      return false;
    }
  };
  const read = c.read === "inherit"
    ? "inherit"
    : c.read.filter((path) => granted({ name: "read", path }));
  const write = c.write.filter((path) => granted({ name: "write", path }));
  const env = c.env.filter((variable) => granted({ name: "env", variable }));
  const hosts = c.import.filter((host) =>
    granted({ name: "import", host } as unknown as Deno.PermissionDescriptor)
  );
  return {
    read: read === "inherit" ? "inherit" : read.length ? read : false,
    write: write.length ? write : false,
    env: env.length ? env : false,
    net: false,
    run: false,
    ffi: false,
    sys: false,
    import: hosts.length ? hosts : false,
  } as Deno.PermissionOptionsObject;
}

/**
 * Runs the CLI on `argv` in a worker confined to {@linkcode confinementFor}'s permissions
 * and returns its exit status, or `undefined` when worker permissions are refused.
 * `onStart` gets a function that asks the worker to remove its temporary files (Ctrl-C).
 */
export async function confinedRun(
  argv: readonly string[],
  root: string,
  onStart?: (interrupt: () => Promise<void>) => void,
): Promise<number | undefined> {
  let worker: Worker;
  try {
    worker = new Worker(new URL("./_worker.ts", import.meta.url), {
      type: "module",
      deno: { permissions: heldBy(confinementFor(argv, root)) },
    } as WorkerOptions);
  } catch (e) {
    if (e instanceof Error && /unstable-worker-options|Unstable API/i.test(e.message)) {
      return undefined;
    }
    throw e;
  }
  return await new Promise<number>((done) => {
    let cleaned: (() => void) | undefined;
    worker.onmessage = (ev: MessageEvent<{ code?: number; cleaned?: boolean }>) => {
      if (ev.data.cleaned) {
        cleaned?.();
        return;
      }
      worker.terminate();
      done(ev.data.code ?? 1);
    };
    worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      console.error(`gradual: ${ev.message.split("\n")[0]}`);
      worker.terminate();
      done(1);
    };
    onStart?.(() =>
      new Promise<void>((ok) => {
        cleaned = ok;
        worker.postMessage({ interrupt: true });
        setTimeout(ok, 1000);
      })
    );
    worker.postMessage({ argv: [...argv] });
  });
}
