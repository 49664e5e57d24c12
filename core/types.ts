/**
 * The plugin contract: {@linkcode SaliencyMethod} and {@linkcode Extrapolator}.
 *
 * A method says which layers it needs recorded / differentiated in the forward pass and
 * how it turns them into maps; an extrapolator says which activations it needs from the
 * SAME forward pass and how it refines a map with them. Neither knows about files, the CLI
 * or rendering.
 *
 * Tensor ownership: everything a {@linkcode ForwardPass} returns through `activation()` is
 * owned by the pass (never dispose it); tensors returned by `backward()` and the `maps` a
 * method or extrapolator returns are owned by the caller.
 *
 * @module
 */
import type { ModelGraph } from "./graph.ts";
import type { Pass, Session } from "./session.ts";
import type { TargetRound } from "./targets.ts";
import type { Tensor3D } from "./tensor.ts";

/**
 * Version of the plugin contract; a plugin declares the version it was written for.
 *
 * Version 2 added option declarations ({@linkcode OptionSpecs}): a version-2 plugin's
 * options are validated once, before any image is read, and its `run` / `refine` receive
 * them typed and defaulted. Version-1 plugins (no declarations) still load: their options
 * reach them as given, unchecked.
 */
export const PLUGIN_API_VERSION = 2;

/** Plugin API versions the registry accepts. */
export const SUPPORTED_PLUGIN_API_VERSIONS: readonly number[] = [1, 2];

/**
 * Options given to a method or extrapolator (from the CLI: `--opt key=value`). Validated
 * against the plugin's {@linkcode OptionSpecs} before it runs.
 */
export type PluginOptions = Readonly<Record<string, unknown>>;

/**
 * The type of a declared option:
 * - `boolean`: `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off` as text);
 * - `integer`, `number`: a finite number (or its text), within `min` / `max` / `above`;
 * - `string`: text, one of `values` when given;
 * - `layer`: the name of a layer of the model;
 * - `value`: anything the option's `check` accepts (e.g. a number, an array or a tensor);
 * - `options`: options of another plugin, validated against the plugin `of` returns.
 */
export type OptionType =
  | "boolean"
  | "integer"
  | "number"
  | "string"
  | "layer"
  | "value"
  | "options";

/** The declaration of one plugin option. */
export interface OptionSpec {
  /** Its type. */
  readonly type: OptionType;
  /** One-line description (shown by `gradual list` and `--help`). */
  readonly doc: string;
  /** Value when not given (absent: the option stays `undefined`). */
  readonly default?: unknown;
  /**
   * Allowed values: for `string` the only ones accepted; for `integer` / `number` words
   * accepted besides numbers (e.g. `geometric`).
   */
  readonly values?: readonly string[];
  /** Smallest allowed number (inclusive). */
  readonly min?: number;
  /** Largest allowed number (inclusive). */
  readonly max?: number;
  /** Numbers must be greater than this (exclusive lower bound). */
  readonly above?: number;
  /** What a `value` (or free `string`) option accepts, in words (messages, listings). */
  readonly accepts?: string;
  /** Extra check of a parsed value: a problem in words, or undefined when it is fine. */
  check?(value: unknown): string | undefined;
  /** For `options`: the plugin the nested options belong to, given the raw options. */
  of?(options: PluginOptions): Plugin;
}

/** A plugin's option declarations, by option name. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The words an option declaration allows (its `values`), as a union type. */
export type OptionWords<S> = S extends { readonly values: readonly (infer W)[] } ? W : never;

/** The TypeScript type of a declared option's value after validation. */
export type OptionValue<S extends OptionSpec> = S["type"] extends "boolean" ? boolean
  : S["type"] extends "integer" | "number" ? number | OptionWords<S>
  : S["type"] extends "string" ? ([OptionWords<S>] extends [never] ? string : OptionWords<S>)
  : S["type"] extends "layer" ? string
  : S["type"] extends "options" ? PluginOptions
  : unknown;

/**
 * The validated options a plugin's `run` / `refine` receives for its declarations: every
 * option with a default (and every `options` one) is present; one without may be
 * `undefined`.
 */
export type OptionValues<S extends OptionSpecs> = {
  readonly [K in keyof S]: S[K] extends { readonly default: unknown } | { readonly type: "options" }
    ? OptionValue<S[K]>
    : OptionValue<S[K]> | undefined;
};

/** What a method or extrapolator needs from the forward pass. */
export interface Requirements {
  /** Layer outputs to keep. */
  readonly record?: readonly string[];
  /** Layers whose output gradient will be asked for. */
  readonly gradientsFrom?: readonly string[];
}

/** A batch of saliency maps with its metadata. */
export interface SaliencyMaps {
  /** Maps `[N, h, w]` (owned by whoever received them). */
  readonly maps: Tensor3D;
  /** Method that made them (after extrapolation: `method+extrapolator`). */
  readonly method: string;
  /** Layer the maps live on (or `"input"` once at input resolution). */
  readonly layer: string;
  /** Class per image (-1 for a custom score). */
  readonly classes: readonly number[];
  /** Map resolution `[h, w]`. */
  readonly resolution: readonly [number, number];
  /** Whether the values are already normalised to [0, 1]. */
  readonly normalized?: boolean;
}

/** What a method's `run` receives (`O`: its validated options). */
export interface MethodContext<O extends PluginOptions = PluginOptions> {
  /** The model session (graph facts, executor). */
  readonly session: Session;
  /** The forward pass (already run with the method's and extrapolator's requirements). */
  readonly pass: Pass;
  /** Targets for this round: class per image and the backward seed. */
  readonly targets: TargetRound;
  /** The layer chosen by the user or the method's default (resolved by `requires`). */
  readonly layer: string | undefined;
  /** Method options, validated against its declarations, defaults filled in. */
  readonly options: O;
}

/** A saliency method plugin (`O`: the type of its validated options). */
export interface SaliencyMethod<O extends PluginOptions = PluginOptions> {
  /** Plugin kind. */
  readonly kind: "method";
  /** Plugin contract version this was written for ({@linkcode PLUGIN_API_VERSION}). */
  readonly apiVersion: number;
  /** Registry name, e.g. `grad-cam`. */
  readonly name: string;
  /** Other names it answers to, e.g. `gradcam`. */
  readonly aliases?: readonly string[];
  /** One-line description. */
  readonly description: string;
  /**
   * Whether the method replaces layers' gradients with backward rules (excitation backprop,
   * guided backprop, ...); every model the executor runs supports them.
   */
  readonly usesRules?: boolean;
  /**
   * The options it takes (API version 2; absent: it takes none). The layer is not an
   * option: it is the request's `layer`, which `run` receives as `ctx.layer`.
   */
  readonly options?: OptionSpecs;
  /**
   * The name of one of its `options`-typed options that collects every option it does not
   * declare (e.g. SmoothGrad passes them on to the method it wraps).
   */
  readonly forwardOthersTo?: string;
  /** The layer the method works on when the user names none. */
  defaultLayer(graph: ModelGraph, options: O): string | undefined;
  /** What the forward pass must record / prepare for gradients. */
  requires(graph: ModelGraph, layer: string | undefined, options: O): Requirements;
  /** Computes the maps for one round of targets. */
  run(ctx: MethodContext<O>): SaliencyMaps | Promise<SaliencyMaps>;
}

/** What an extrapolator's `refine` receives (`O`: its validated options). */
export interface ExtrapolatorContext<O extends PluginOptions = PluginOptions> {
  /** The model session. */
  readonly session: Session;
  /** The SAME forward pass the method used. */
  readonly pass: Pass;
  /** Extrapolator options, validated against its declarations, defaults filled in. */
  readonly options: O;
}

/** An extrapolator plugin: refines any method's maps (e.g. to input resolution). */
export interface Extrapolator<O extends PluginOptions = PluginOptions> {
  /** Plugin kind. */
  readonly kind: "extrapolator";
  /** Plugin contract version this was written for. */
  readonly apiVersion: number;
  /** Registry name, e.g. `gradual`. */
  readonly name: string;
  /** Other names. */
  readonly aliases?: readonly string[];
  /** One-line description. */
  readonly description: string;
  /** The options it takes (API version 2; absent: it takes none). */
  readonly options?: OptionSpecs;
  /** Activations it needs from the forward pass. */
  requires(graph: ModelGraph, options: O): Requirements;
  /** Refines maps (does not dispose its input; returns new maps the caller owns). */
  refine(maps: SaliencyMaps, ctx: ExtrapolatorContext<O>): SaliencyMaps;
}

/** Anything the registry holds. */
export type Plugin = SaliencyMethod | Extrapolator;
