/**
 * The titled comparison figure (input | one overlay per explanation) used by `compare`
 * and by `explain --format grid`. Panels are made from a copy of the original shrunk to
 * the panel height first, so a huge photo never needs full-size overlays here.
 *
 * @module
 */
import type { Explanation } from "../core/explain.ts";
import { resizeRgba8, type Rgba8Image } from "../io/mod.ts";
import { figure, type FigurePanel, overlay } from "../render/compose.ts";

const PRETTY: Record<string, string> = {
  "grad-cam": "Grad-CAM",
  "grad-cam++": "Grad-CAM++",
  "grad-cam-plus-plus": "Grad-CAM++",
  "c-eb": "c-EB",
  "eb": "EB",
  "excitation-backprop": "EB",
  "contrastive-excitation-backprop": "c-EB",
};

/** A method's display name: `Grad-CAM`, `Gradual Grad-CAM`, `foo+bar` for others. */
export function displayName(method: string, extrapolator?: string): string {
  const m = PRETTY[method] ?? method;
  if (!extrapolator) return m;
  return extrapolator === "gradual" ? `Gradual ${m}` : `${m}+${extrapolator}`;
}

/** The class part of a title: its name, or `class N`. */
export function className(e: Explanation): string {
  if (e.classIndex < 0) return "custom score";
  return e.className ?? `class ${e.classIndex}`;
}

/** `Grad-CAM for fox`. */
export function panelTitle(e: Explanation): string {
  return `${displayName(e.method, e.extrapolator)} for ${className(e)}`;
}

/** Options of {@linkcode explanationFigure}. */
export interface FigureSettings {
  /** Colormap. */
  readonly colormap: string;
  /** Overlay alpha. */
  readonly alpha: number;
  /** Panel height in pixels. */
  readonly panelHeight: number;
}

/** `input | overlay(e) for each e`, titled, one row. */
export function explanationFigure(
  original: Rgba8Image,
  explanations: readonly Explanation[],
  s: FigureSettings,
): Rgba8Image {
  const ph = s.panelHeight;
  const pw = Math.max(1, Math.round((original.width * ph) / original.height));
  const base = original.height > ph ? resizeRgba8(original, pw, ph, { antialias: true }) : original;
  const panels: FigurePanel[] = [{ image: base, title: "input" }];
  for (const e of explanations) {
    panels.push({
      image: overlay(base, e.map, e.width, e.height, s.colormap, s.alpha),
      title: panelTitle(e),
    });
  }
  return figure(panels, { panelHeight: ph });
}
