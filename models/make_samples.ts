/**
 * Writes the sample scenes in `models/samples/`: 8 PNG images (128x128 RGB) made by the scene
 * generator from fixed seeds, their target masks (`*_mask.png`, white = target) and
 * `samples.json` (file, mask file, seed, label, class name, box).
 *
 * Usage: `deno task samples`.
 *
 * @module
 */

import { encodePng } from "../io/mod.ts";
import { generateScene, type Scene } from "./scenes.ts";

/** Seeds of the sample scenes (seed mod 10 is the class, so these are classes 0..7). */
export const SAMPLE_SEEDS: readonly number[] = Object.freeze([
  3_000_000,
  3_000_001,
  3_000_002,
  3_000_003,
  3_000_004,
  3_000_005,
  3_000_006,
  3_000_007,
]);

/** One entry of `samples.json`. */
export interface SampleInfo {
  /** PNG file name (in `models/samples/`). */
  file: string;
  /** PNG file name of the target mask. */
  maskFile: string;
  /** Generator seed. */
  seed: number;
  /** Target class index. */
  label: number;
  /** Target class name. */
  className: string;
  /** Target box `[x0, y0, x1, y1]`, x1/y1 exclusive. */
  box: [number, number, number, number];
}

/**
 * Encode a scene's image as PNG bytes.
 *
 * @param scene a generated scene
 * @returns the PNG file contents
 */
export async function sceneToPng(scene: Scene): Promise<Uint8Array> {
  const rgba = new Uint8Array(scene.width * scene.height * 4);
  for (let p = 0; p < scene.width * scene.height; p++) {
    for (let k = 0; k < 3; k++) rgba[p * 4 + k] = Math.round(scene.image[p * 3 + k] * 255);
    rgba[p * 4 + 3] = 255;
  }
  return await encodePng(scene.width, scene.height, rgba);
}

/**
 * Encode a scene's target mask as a black/white PNG.
 *
 * @param scene a generated scene
 * @returns the PNG file contents
 */
export async function maskToPng(scene: Scene): Promise<Uint8Array> {
  const rgba = new Uint8Array(scene.width * scene.height * 4);
  for (let p = 0; p < scene.width * scene.height; p++) {
    const v = scene.mask[p] ? 255 : 0;
    rgba.fill(v, p * 4, p * 4 + 3);
    rgba[p * 4 + 3] = 255;
  }
  return await encodePng(scene.width, scene.height, rgba);
}

/**
 * Generate the sample scenes and write them into `dir`.
 *
 * @param dir output folder (created if missing)
 * @returns the entries written to `samples.json`
 */
export async function makeSamples(dir: string): Promise<SampleInfo[]> {
  await Deno.mkdir(dir, { recursive: true });
  const out: SampleInfo[] = [];
  for (const seed of SAMPLE_SEEDS) {
    const s = generateScene(seed, { size: 128 });
    const base = `${s.className}_${seed}`;
    await Deno.writeFile(`${dir}/${base}.png`, await sceneToPng(s));
    await Deno.writeFile(`${dir}/${base}_mask.png`, await maskToPng(s));
    out.push({
      file: `${base}.png`,
      maskFile: `${base}_mask.png`,
      seed,
      label: s.label,
      className: s.className,
      box: s.box,
    });
  }
  await Deno.writeTextFile(`${dir}/samples.json`, JSON.stringify(out, null, 2) + "\n");
  return out;
}

if (import.meta.main) {
  const dir = new URL("./samples", import.meta.url).pathname;
  const list = await makeSamples(dir);
  console.log(`wrote ${list.length} samples to ${dir}`);
}
