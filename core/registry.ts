/**
 * The plugin registry: register and look up methods and extrapolators by name, list them,
 * and load plugin modules (an ES module whose default export is a plugin or an array of
 * plugins) from a path or URL at run time.
 *
 * @module
 */
import { optionSpecsProblem } from "./options.ts";
import {
  type Extrapolator,
  type Plugin,
  PLUGIN_API_VERSION,
  type SaliencyMethod,
  SUPPORTED_PLUGIN_API_VERSIONS,
} from "./types.ts";

/** Error raised for an unknown name or an invalid plugin. */
export class PluginError extends Error {
  /** Creates the error.
   * @param message one-line description
   */
  constructor(message: string) {
    super(message);
    this.name = "PluginError";
  }
}

function isPlugin(p: unknown): p is Plugin {
  if (!p || typeof p !== "object") return false;
  const o = p as Record<string, unknown>;
  return (o.kind === "method" || o.kind === "extrapolator") && typeof o.name === "string";
}

/**
 * Checks the shape, API version and option declarations of a plugin object; throws
 * {@linkcode PluginError}. Version-1 plugins (no option declarations) are accepted: their
 * options reach them unchecked.
 */
export function validatePlugin(p: unknown, source = "plugin"): Plugin {
  if (!isPlugin(p)) {
    throw new PluginError(
      `${source}: not a plugin (the default export needs kind "method" or "extrapolator" and a name)`,
    );
  }
  if (!SUPPORTED_PLUGIN_API_VERSIONS.includes(p.apiVersion)) {
    throw new PluginError(
      `${source}: plugin '${p.name}' was written for plugin API version ${p.apiVersion}, ` +
        `this is version ${PLUGIN_API_VERSION} (versions ` +
        `${SUPPORTED_PLUGIN_API_VERSIONS.join(", ")} load)`,
    );
  }
  const needs = p.kind === "method" ? ["defaultLayer", "requires", "run"] : ["requires", "refine"];
  for (const f of needs) {
    if (typeof (p as unknown as Record<string, unknown>)[f] !== "function") {
      throw new PluginError(`${source}: plugin '${p.name}' has no ${f}() function`);
    }
  }
  if (p.apiVersion >= 2) {
    const problem = optionSpecsProblem(p);
    if (problem) throw new PluginError(`${source}: plugin '${p.name}': ${problem}`);
  }
  return p;
}

/** A set of named methods and extrapolators. */
export class Registry {
  readonly #methods = new Map<string, SaliencyMethod>();
  readonly #extrapolators = new Map<string, Extrapolator>();
  readonly #aliases = new Map<string, string>();

  /** Adds a plugin (replacing one of the same name). Returns the registry. */
  register(plugin: Plugin): this {
    const p = validatePlugin(plugin);
    const key = `${p.kind}:${p.name}`;
    if (p.kind === "method") this.#methods.set(p.name, p);
    else this.#extrapolators.set(p.name, p);
    for (const a of p.aliases ?? []) this.#aliases.set(`${p.kind}:${a}`, key);
    return this;
  }

  #find<T>(kind: "method" | "extrapolator", name: string, map: Map<string, T>): T {
    const direct = map.get(name);
    if (direct) return direct;
    const alias = this.#aliases.get(`${kind}:${name}`);
    if (alias) return map.get(alias.slice(kind.length + 1))!;
    const known = [...map.keys()].join(", ");
    throw new PluginError(`unknown ${kind} '${name}' (known: ${known || "none"})`);
  }

  /** The method registered under `name` (or an alias). */
  method(name: string): SaliencyMethod {
    return this.#find("method", name, this.#methods);
  }

  /** The extrapolator registered under `name` (or an alias). */
  extrapolator(name: string): Extrapolator {
    return this.#find("extrapolator", name, this.#extrapolators);
  }

  /** All methods, in registration order. */
  methods(): SaliencyMethod[] {
    return [...this.#methods.values()];
  }

  /** All extrapolators, in registration order. */
  extrapolators(): Extrapolator[] {
    return [...this.#extrapolators.values()];
  }

  /**
   * Imports a plugin module from a path or URL and registers its default export (one plugin
   * or an array). Returns the plugins it added.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Registry } from "../mod.ts";
   * const reg = new Registry();
   * const [plugin] = await reg.load("./examples/custom_method.ts"); // relative to the working dir
   * assert.equal(plugin.name, "abs-grad-cam");
   * assert.equal(reg.method("abs-grad-cam"), plugin);
   * ```
   */
  async load(pathOrUrl: string | URL): Promise<Plugin[]> {
    const url = toModuleUrl(pathOrUrl);
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (e) {
      const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
      throw new PluginError(`${pathOrUrl}: cannot load plugin module: ${msg}`);
    }
    const def = mod.default;
    if (def === undefined) throw new PluginError(`${pathOrUrl}: the module has no default export`);
    const list = Array.isArray(def) ? def : [def];
    if (list.length === 0) {
      throw new PluginError(`${pathOrUrl}: the default export is an empty array`);
    }
    const plugins = list.map((p) => validatePlugin(p, String(pathOrUrl)));
    for (const p of plugins) this.register(p);
    return plugins;
  }
}

/** Turns a file path (relative to the working directory) or URL into an importable URL. */
export function toModuleUrl(pathOrUrl: string | URL): string {
  if (pathOrUrl instanceof URL) return pathOrUrl.href;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl)) return pathOrUrl;
  // deno-lint-ignore no-explicit-any
  const cwd = (globalThis as any).Deno?.cwd?.() ?? "";
  const abs = pathOrUrl.startsWith("/") ? pathOrUrl : `${cwd}/${pathOrUrl}`;
  return new URL(`file://${abs.split("/").map(encodeURIComponent).join("/")}`).href;
}

/** The registry the toolkit's built-in plugins register into (imported by `mod.ts`). */
export const registry: Registry = new Registry();
