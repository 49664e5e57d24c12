/**
 * The command line's side of plugin options: `--opt KEY=VALUE` (for every requested method
 * that declares KEY) and `--opt NAME.KEY=VALUE` (for plugin NAME, by name or alias) given to
 * the requests and validated once, before the model or any image is read; `layer` is the
 * request's layer (`--opt NAME.layer=L` for one method), never an option. Also the plugin
 * listing `gradual list` and every command's `--help` print, from the declarations.
 *
 * @module
 */
import { type ExplainRequest, planRequests } from "../core/explain.ts";
import type { ModelGraph } from "../core/graph.ts";
import {
  describeOptions,
  resolvePlugins,
  shareOptions,
  validateRequests,
} from "../core/options.ts";
import { registry } from "../core/registry.ts";
import type { Plugin, PluginOptions } from "../core/types.ts";
import { problemOf, UsageError } from "./_errors.ts";

/** Plugin options from `--opt`, as `parseOptions` reads them. */
export interface OptionFlags {
  /** `KEY=VALUE`: for every requested method that declares KEY. */
  readonly all: Readonly<Record<string, unknown>>;
  /** `NAME.KEY=VALUE`: for plugin NAME only. */
  readonly byPlugin: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** One request before options: a method and an optional extrapolator, by name. */
export interface RequestNames {
  /** Method name (or alias). */
  readonly method: string;
  /** Extrapolator name (or alias), undefined for none. */
  readonly extrapolator?: string;
  /** Whether the extrapolator is the command's default rather than asked for. */
  readonly defaultExtrapolator?: boolean;
}

/** A request built from the command line. */
export interface CliRequest extends ExplainRequest {
  /** Whether its extrapolator is the command's default rather than asked for. */
  readonly defaultExtrapolator?: boolean;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => "  " + r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd());
}

/**
 * The registered methods and extrapolators with their options (from the plugins'
 * declarations), one string per line: each plugin's name, aliases and description, then
 * one indented row per option (allowed values, default, doc).
 */
export function pluginLines(): string[] {
  const names = (p: Plugin): string =>
    p.aliases?.length ? `${p.name} (${p.aliases.join(", ")})` : p.name;
  const section = (plugins: readonly Plugin[]): string[] => {
    const out: string[] = [];
    for (const p of plugins) {
      out.push(`  ${names(p)}: ${p.description}`);
      const rows = describeOptions(p);
      if (rows.length) out.push(...table(rows).map((l) => `    ${l}`));
    }
    return out;
  };
  return [
    "Methods (options: --opt KEY=VALUE for every method, --opt NAME.KEY=VALUE for one):",
    ...section(registry.methods()),
    "",
    "Extrapolators (options: --opt NAME.KEY=VALUE):",
    ...section(registry.extrapolators()),
  ];
}

/** The registered plugins named `name` (a method, an extrapolator, or both). */
function pluginsNamed(name: string): Plugin[] {
  const out: Plugin[] = [];
  for (const find of [(n: string) => registry.method(n), (n: string) => registry.extrapolator(n)]) {
    try {
      out.push(find(name));
    } catch {
      // not of this kind
    }
  }
  return out;
}

function usage(e: unknown): never {
  throw new UsageError(problemOf(e));
}

/**
 * Builds the requests' options and layers from `--opt` and `--layer` and validates every
 * option once (before the model or any image is read). `--opt [NAME.]layer=L` sets the
 * request's layer; a shared `KEY` goes to the methods that declare it; `NAME.KEY` to the
 * plugin NAME (by name or alias), which must be one the run uses. Every problem is one
 * {@linkcode UsageError} line naming the option and what is allowed.
 *
 * @param requests the method / extrapolator pairs to run (registered names)
 * @param layer `--layer`, for every method
 * @param opts the parsed `--opt` flags
 * @returns the requests with their layers and options, as given (they passed validation;
 *   `explain` types them; results files record them as given)
 */
export function requestsWithOptions(
  requests: readonly RequestNames[],
  layer: string | undefined,
  opts: OptionFlags,
): CliRequest[] {
  const resolved = requests.map((r) => {
    try {
      return resolvePlugins(r);
    } catch (e) {
      return usage(e);
    }
  });
  const used = new Set<Plugin>();
  for (const r of resolved) {
    used.add(r.method);
    if (r.extrapolator) used.add(r.extrapolator);
  }
  // NAME.KEY: by canonical plugin, NAME one the run uses.
  const own = new Map<Plugin, Record<string, unknown>>();
  for (const [name, kv] of Object.entries(opts.byPlugin)) {
    const named = pluginsNamed(name);
    if (named.length === 0) {
      throw new UsageError(
        `--opt ${name}.${Object.keys(kv)[0]}: no method or extrapolator is named '${name}'`,
      );
    }
    const mine = named.filter((p) => used.has(p));
    if (mine.length === 0) {
      throw new UsageError(
        `--opt ${name}.${Object.keys(kv)[0]}: '${name}' does not run here (this run uses ${
          [...used].map((p) => p.name).join(", ")
        })`,
      );
    }
    for (const p of mine) Object.assign(own.get(p) ?? own.set(p, {}).get(p)!, kv);
  }
  const { layer: sharedLayer, ...shared } = opts.all;
  const methods = [...new Set(resolved.map((r) => r.method))];
  let sharedBy: PluginOptions[];
  try {
    sharedBy = shareOptions(shared, methods, registry.methods());
  } catch (e) {
    return usage(e);
  }
  const out = requests.map((r, i): CliRequest => {
    const { method, extrapolator } = resolved[i];
    const { layer: ownLayer, ...methodOptions } = {
      ...sharedBy[methods.indexOf(method)],
      ...own.get(method),
    };
    const exOpts = extrapolator ? { ...own.get(extrapolator) } : {};
    if (extrapolator && "layer" in exOpts) {
      throw new UsageError(
        `--opt ${extrapolator.name}.layer: an extrapolator has no layer (it works on the method's maps)`,
      );
    }
    const l = ownLayer ?? sharedLayer ?? layer;
    return {
      method: r.method,
      extrapolator: r.extrapolator,
      layer: l === undefined ? undefined : String(l),
      methodOptions,
      extrapolatorOptions: exOpts,
      ...(r.defaultExtrapolator && r.extrapolator ? { defaultExtrapolator: true } : {}),
    };
  });
  try {
    validateRequests(out);
  } catch (e) {
    return usage(e);
  }
  return out;
}

/**
 * Whether a method's maps are already at input resolution on this graph: its layer is the
 * model input or has the input's height and width.
 *
 * @param graph the model graph
 * @param layer the request's layer (after the method's default)
 * @returns true when the maps need no extrapolation to reach the input resolution
 */
export function atInputResolution(graph: ModelGraph, layer: string | undefined): boolean {
  if (layer === undefined) return false;
  if (layer === graph.inputName) return true;
  const node = graph.nodes.find((n) => n.name === layer);
  const [, h, w] = graph.inputShape;
  return node !== undefined && node.outputShape.length === 4 &&
    node.outputShape[1] === h && node.outputShape[2] === w && h !== null;
}

/**
 * Leaves the command's default extrapolator off maps that are already at input resolution
 * (an input-gradient method, a layer at the input's size): it would only reshape them, and
 * silently. Says so through `note` for each such method; a requested extrapolator (`METHOD+E`,
 * `--extrapolate E`) is always applied. Requests that become the same are run once.
 *
 * @param graph the model graph
 * @param requests the requests (options already validated)
 * @param note prints one line (silent with `--quiet`)
 * @returns the requests to run
 */
export function withoutDefaultAtInput(
  graph: ModelGraph,
  requests: readonly CliRequest[],
  note: (line: string) => void,
): CliRequest[] {
  const out: CliRequest[] = [];
  const seen = new Set<string>();
  for (const r of requests) {
    let q = r;
    if (r.defaultExtrapolator) {
      const [plan] = planRequests(graph, [r]);
      if (atInputResolution(graph, plan.layer)) {
        note(
          `gradual: note: ${plan.method.name} gives maps at input resolution ('${plan.layer}'): ` +
            `the default extrapolator ${plan.extrapolator?.name} is not applied ` +
            `(ask for it with --extrapolate or ${plan.method.name}+${plan.extrapolator?.name})`,
        );
        q = { ...r, extrapolator: undefined, extrapolatorOptions: {}, defaultExtrapolator: false };
      }
    }
    const key = JSON.stringify([
      q.method,
      q.extrapolator ?? null,
      q.layer ?? null,
      q.methodOptions,
    ]);
    if (seen.has(key)) continue; // e.g. the method alone, once its default is dropped
    seen.add(key);
    out.push(q);
  }
  return out;
}
