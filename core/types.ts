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

/** Version of the plugin contract; a plugin declares the version it was written for. */
export const PLUGIN_API_VERSION = 1;

/** Free-form options given to a method or extrapolator (from the CLI: `--opt key=value`). */
export type PluginOptions = Readonly<Record<string, unknown>>;

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

/** What a method's `run` receives. */
export interface MethodContext {
  /** The model session (graph facts, executor). */
  readonly session: Session;
  /** The forward pass (already run with the method's and extrapolator's requirements). */
  readonly pass: Pass;
  /** Targets for this round: class per image and the backward seed. */
  readonly targets: TargetRound;
  /** The layer chosen by the user or the method's default (resolved by `requires`). */
  readonly layer: string | undefined;
  /** Method options. */
  readonly options: PluginOptions;
}

/** A saliency method plugin. */
export interface SaliencyMethod {
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
  /** The layer the method works on when the user names none. */
  defaultLayer(graph: ModelGraph, options: PluginOptions): string | undefined;
  /** What the forward pass must record / prepare for gradients. */
  requires(graph: ModelGraph, layer: string | undefined, options: PluginOptions): Requirements;
  /** Computes the maps for one round of targets. */
  run(ctx: MethodContext): SaliencyMaps | Promise<SaliencyMaps>;
}

/** What an extrapolator's `refine` receives. */
export interface ExtrapolatorContext {
  /** The model session. */
  readonly session: Session;
  /** The SAME forward pass the method used. */
  readonly pass: Pass;
  /** Extrapolator options. */
  readonly options: PluginOptions;
}

/** An extrapolator plugin: refines any method's maps (e.g. to input resolution). */
export interface Extrapolator {
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
  /** Activations it needs from the forward pass. */
  requires(graph: ModelGraph, options: PluginOptions): Requirements;
  /** Refines maps (does not dispose its input; returns new maps the caller owns). */
  refine(maps: SaliencyMaps, ctx: ExtrapolatorContext): SaliencyMaps;
}

/** Anything the registry holds. */
export type Plugin = SaliencyMethod | Extrapolator;
