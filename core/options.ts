/**
 * Plugin options: checking a plugin's declarations ({@linkcode OptionSpecs}), validating the
 * options given to it once, before any image is read, and describing them for listings.
 *
 * {@linkcode validateOptions} turns what a user gave (`--opt key=value` text or library
 * values) into the typed, defaulted options a plugin's `run` / `refine` receives. Every
 * problem is one {@linkcode OptionError} line naming the plugin and the option and listing
 * what is allowed.
 *
 * @example
 * ```ts
 * import { gradCam, validateOptions } from "../mod.ts";
 * const opts = validateOptions(gradCam, { raw: "true" }); // { raw: true, inplaceRelu: "none" }
 * ```
 *
 * @module
 */
import { checkLayer, type ModelGraph } from "./graph.ts";
import { type Registry, registry as defaultRegistry } from "./registry.ts";
import type {
  Extrapolator,
  OptionSpec,
  OptionSpecs,
  Plugin,
  PluginOptions,
  SaliencyMethod,
} from "./types.ts";

/** A bad plugin option (unknown key, bad value, an option of another plugin). */
export class OptionError extends Error {
  /** Creates the error.
   * @param message one-line description
   */
  constructor(message: string) {
    super(message);
    this.name = "OptionError";
  }
}

/** What validation may check besides the declarations. */
export interface OptionContext {
  /** The model graph: `layer` options must name one of its layers. */
  readonly graph?: ModelGraph;
}

const TYPES = new Set(["boolean", "integer", "number", "string", "layer", "value", "options"]);
const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/** The declarations a plugin follows, or undefined for a version-1 plugin (unchecked). */
export function optionSpecsOf(plugin: Plugin): OptionSpecs | undefined {
  return plugin.apiVersion < 2 ? undefined : plugin.options ?? {};
}

/** The allowed values of one option in words, e.g. `none|torchray|pgc`, `integer >= 1`. */
export function allowedText(spec: OptionSpec): string {
  if (spec.type === "boolean") return "true|false";
  if (spec.type === "string") {
    return spec.values?.length ? spec.values.join("|") : spec.accepts ?? "text";
  }
  if (spec.type === "layer") return "a layer name";
  if (spec.type === "options") return "options of another method";
  if (spec.type === "value") return spec.accepts ?? "a value";
  const bounds: string[] = [];
  if (spec.above !== undefined) bounds.push(`> ${spec.above}`);
  if (spec.min !== undefined) bounds.push(`>= ${spec.min}`);
  if (spec.max !== undefined) bounds.push(`<= ${spec.max}`);
  const num = [spec.type, ...bounds].join(" ");
  return spec.values?.length ? `${num} or ${spec.values.join("|")}` : num;
}

function shown(v: unknown): string {
  if (typeof v === "string") return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(shown).join(", ")}]`;
  if (v !== null && typeof v === "object") return "an object";
  return String(v);
}

/**
 * A plugin's options as table rows `[name, allowed values, default, doc]`, from its
 * declarations; a version-1 plugin gets one row saying its options are not declared.
 */
export function describeOptions(plugin: Plugin): string[][] {
  const specs = optionSpecsOf(plugin);
  if (specs === undefined) return [["(options not declared: plugin API version 1)"]];
  return Object.entries(specs).map(([name, s]) => [
    name,
    allowedText(s),
    s.default === undefined ? "" : `default ${String(s.default)}`,
    s.doc,
  ]);
}

/** The names a plugin takes, for messages: `raw, inplaceRelu` or `no options`. */
function takes(plugin: Plugin): string {
  const specs = optionSpecsOf(plugin) ?? {};
  const names = Object.keys(specs);
  return names.length
    ? `${plugin.name} takes ${names.join(", ")}`
    : `${plugin.name} takes no options`;
}

/**
 * Checks a plugin's declarations (the registry does, at registration): known types, a doc
 * line each, no `layer` option and defaults that pass their own declaration. Returns the
 * first problem in words, or undefined when they are fine.
 */
export function optionSpecsProblem(plugin: Plugin): string | undefined {
  const specs = plugin.options;
  if (specs === undefined) return undefined;
  if (specs === null || typeof specs !== "object" || Array.isArray(specs)) {
    return "options must be an object of option declarations";
  }
  for (const [name, s] of Object.entries(specs)) {
    if (!s || typeof s !== "object" || !TYPES.has(s.type)) {
      return `option '${name}' needs a type (one of ${[...TYPES].join(", ")})`;
    }
    if (typeof s.doc !== "string" || s.doc.trim() === "") {
      return `option '${name}' needs a one-line doc`;
    }
    if (name === "layer") return "'layer' cannot be an option (it is the request's layer)";
    if (s.type === "options" && typeof s.of !== "function") {
      return `option '${name}' of type options needs of()`;
    }
    if (s.default !== undefined && s.type !== "options") {
      try {
        parseValue(plugin.name, name, s, s.default, {});
      } catch (e) {
        return `the default of option '${name}' is invalid (${(e as Error).message})`;
      }
    }
  }
  const rest = plugin.kind === "method" ? plugin.forwardOthersTo : undefined;
  if (rest !== undefined && specs[rest]?.type !== "options") {
    return `forwardOthersTo '${rest}' is not an option of type options`;
  }
  return undefined;
}

function bad(who: string, name: string, spec: OptionSpec, v: unknown, why?: string): OptionError {
  return new OptionError(
    `${who}: option '${name}' must be ${why ?? allowedText(spec)}, got ${shown(v)}`,
  );
}

function parseNumber(who: string, name: string, s: OptionSpec, v: unknown): number | string {
  if (typeof v === "string" && s.values?.includes(v)) return v;
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw bad(who, name, s, v);
  if (s.type === "integer" && !Number.isInteger(n)) throw bad(who, name, s, v);
  if (s.min !== undefined && n < s.min) throw bad(who, name, s, v);
  if (s.max !== undefined && n > s.max) throw bad(who, name, s, v);
  if (s.above !== undefined && !(n > s.above)) throw bad(who, name, s, v);
  return n;
}

function parseValue(
  who: string,
  name: string,
  s: OptionSpec,
  v: unknown,
  ctx: OptionContext,
): unknown {
  let out: unknown;
  switch (s.type) {
    case "boolean": {
      if (typeof v === "boolean") out = v;
      else if (v === 1 || v === 0) out = v === 1;
      else if (typeof v === "string" && TRUE.has(v.toLowerCase())) out = true;
      else if (typeof v === "string" && FALSE.has(v.toLowerCase())) out = false;
      else throw bad(who, name, s, v);
      break;
    }
    case "integer":
    case "number":
      out = parseNumber(who, name, s, v);
      break;
    case "string":
      if (typeof v !== "string" || (s.values?.length && !s.values.includes(v))) {
        throw bad(who, name, s, v);
      }
      out = v;
      break;
    case "layer":
      if (typeof v !== "string" || v === "") throw bad(who, name, s, v);
      if (ctx.graph) {
        try {
          checkLayer(ctx.graph, v);
        } catch (e) {
          throw new OptionError(`${who}: option '${name}': ${(e as Error).message}`);
        }
      }
      out = v;
      break;
    default:
      out = v;
  }
  const problem = s.check?.(out);
  if (problem !== undefined) throw bad(who, name, s, v, problem);
  return out;
}

/**
 * Validates the options given to a plugin against its declarations and returns them typed,
 * with every default filled in. A version-1 plugin (no declarations) gets its options as
 * given. Throws an {@linkcode OptionError} (one line) for an unknown key, a bad value or
 * `layer` (the request's layer, not an option).
 *
 * Validation is idempotent: validating validated options gives the same options.
 */
export function validateOptions(
  plugin: Plugin,
  given: PluginOptions | undefined,
  ctx: OptionContext = {},
): PluginOptions {
  const specs = optionSpecsOf(plugin);
  const raw = given ?? {};
  if (specs === undefined) return raw;
  const who = `${plugin.kind} '${plugin.name}'`;
  const restKey = plugin.kind === "method" ? plugin.forwardOthersTo : undefined;
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (Object.hasOwn(specs, key)) continue;
    if (key === "layer") {
      throw new OptionError(
        `${who}: 'layer' is not an option but the request's layer ` +
          `(explain's { layer }, --layer, or --opt ${plugin.name}.layer=NAME)`,
      );
    }
    if (restKey === undefined) {
      throw new OptionError(`${who}: unknown option '${key}' (${takes(plugin)})`);
    }
    rest[key] = raw[key];
  }
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    let v = raw[name];
    if (name === restKey && Object.keys(rest).length > 0) {
      v = { ...rest, ...(v && typeof v === "object" ? v as PluginOptions : {}) };
    }
    if (s.type === "options") {
      if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v))) {
        throw bad(who, name, s, v, "an object of options");
      }
      let target: Plugin;
      try {
        target = s.of!(raw);
      } catch (e) {
        throw new OptionError(`${who}: ${(e as Error).message.split("\n")[0]}`);
      }
      out[name] = validateOptions(target, (v ?? {}) as PluginOptions, ctx);
      continue;
    }
    if (v === undefined || v === null) {
      out[name] = s.default;
      continue;
    }
    out[name] = parseValue(who, name, s, v, ctx);
  }
  return out;
}

/**
 * Whether a plugin takes option `key` (a version-1 plugin takes any; a plugin that forwards
 * undeclared options takes what the plugin it forwards to takes, given `options`).
 */
export function takesOption(plugin: Plugin, key: string, options: PluginOptions = {}): boolean {
  const specs = optionSpecsOf(plugin);
  if (specs === undefined) return true;
  if (Object.hasOwn(specs, key)) return true;
  const restKey = plugin.kind === "method" ? plugin.forwardOthersTo : undefined;
  if (restKey === undefined) return false;
  try {
    return takesOption(specs[restKey].of!(options), key);
  } catch {
    return false;
  }
}

/**
 * Splits options meant for several plugins at once (`--opt key=value` without a plugin
 * name) into what each plugin takes; a key no plugin takes is an {@linkcode OptionError}
 * naming who does take it (`others`: the plugins to search, e.g. the registry's).
 */
export function shareOptions(
  shared: PluginOptions,
  plugins: readonly Plugin[],
  others: readonly Plugin[] = [],
): PluginOptions[] {
  const out: Record<string, unknown>[] = plugins.map(() => ({}));
  for (const [key, value] of Object.entries(shared)) {
    let taken = false;
    plugins.forEach((p, i) => {
      if (takesOption(p, key, shared)) {
        out[i][key] = value;
        taken = true;
      }
    });
    if (taken) continue;
    const names = [...new Set(plugins.map((p) => p.name))];
    const owners = others.filter((o) => optionSpecsOf(o)?.[key] !== undefined).map((o) => o.name);
    const whose = owners.length ? `; it is an option of ${owners.join(", ")}` : "";
    throw new OptionError(
      `option '${key}' is not an option of ${names.join(", ")} ` +
        `(${plugins.map(takes).filter((t, i, a) => a.indexOf(t) === i).join("; ")})${whose}`,
    );
  }
  return out;
}

/** A request's plugins and options, as {@linkcode validateRequests} takes them. */
export interface OptionsRequest {
  /** Method name or object (default `grad-cam`). */
  readonly method?: string | SaliencyMethod;
  /** Extrapolator name or object; `"none"` or absent for none. */
  readonly extrapolator?: string | Extrapolator;
  /** Method options. */
  readonly methodOptions?: PluginOptions;
  /** Extrapolator options. */
  readonly extrapolatorOptions?: PluginOptions;
}

/** The plugins a request names, looked up in `reg`. */
export function resolvePlugins(
  req: OptionsRequest,
  reg: Registry = defaultRegistry,
): { method: SaliencyMethod; extrapolator?: Extrapolator } {
  const method = typeof req.method === "object" ? req.method : reg.method(req.method ?? "grad-cam");
  const ex = req.extrapolator;
  const extrapolator = ex === undefined || ex === "none"
    ? undefined
    : typeof ex === "object"
    ? ex
    : reg.extrapolator(ex);
  return { method, extrapolator };
}

/**
 * Validates the options of every request at once (before any image is read): each
 * request's method and extrapolator are looked up and their options checked against their
 * declarations ({@linkcode validateOptions}). Returns the requests with typed, defaulted
 * options; throws the first problem as one {@linkcode OptionError} line (an unknown name as
 * the registry's `PluginError`). `explain` / `explainMany` call it too.
 *
 * @example
 * ```ts
 * import { validateRequests } from "../mod.ts";
 * const [r] = validateRequests([{ method: "grad-cam", methodOptions: { raw: true } }]);
 * // r.methodOptions: { raw: true, inplaceRelu: "none" }
 * ```
 */
export function validateRequests<R extends OptionsRequest>(
  requests: readonly R[],
  opts: OptionContext & { readonly registry?: Registry } = {},
): R[] {
  return requests.map((r) => {
    const { method, extrapolator } = resolvePlugins(r, opts.registry);
    return {
      ...r,
      methodOptions: validateOptions(method, r.methodOptions, opts),
      extrapolatorOptions: extrapolator
        ? validateOptions(extrapolator, r.extrapolatorOptions, opts)
        : r.extrapolatorOptions,
    };
  });
}
