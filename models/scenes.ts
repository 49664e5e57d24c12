/**
 * Procedural scene generator for the built-in "shapes" models.
 *
 * Every scene is a cluttered, textured background with one to three small distractor objects
 * and exactly one labelled target object drawn last (so it is always fully visible). The class
 * of an object is identified by its SHAPE together with its TEXTURE; colours are random, so
 * colour alone never identifies a class. Everything is deterministic from an integer seed and
 * uses only plain TypeScript (no Deno or DOM APIs), so it runs in Deno and in browsers alike.
 *
 * @module
 */

/** Names of the ten object classes, indexed by label. */
export const CLASS_NAMES: readonly string[] = Object.freeze([
  "disk",
  "ring",
  "triangle",
  "square",
  "star",
  "cross",
  "crescent",
  "heart",
  "hexagon",
  "ellipse",
]);

/** Short description of each class' shape and texture, indexed by label. */
export const CLASS_DESCRIPTIONS: readonly string[] = Object.freeze([
  "disk with a radial gradient (bright centre to dark rim or vice versa)",
  "thick ring, solid colour",
  "equilateral triangle with stripes parallel to one side",
  "square with a checkerboard texture",
  "five-pointed star, solid colour",
  "plus-shaped cross with diagonal stripes",
  "crescent with a dotted texture",
  "heart with a linear gradient along its axis",
  "hexagon with concentric rings",
  "elongated ellipse with stripes across its long axis",
]);

/** Options for {@link generateScene} and {@link generateBatch}. */
export interface SceneOptions {
  /** Side of the square image in pixels (default 128). */
  size?: number;
  /** Force the target class (0..9); by default it is `seed mod 10`. */
  label?: number;
  /** Number of distractor objects (default: 1..3 chosen by the seed; 0..6 allowed). */
  distractors?: number;
}

/** One generated scene. */
export interface Scene {
  /** RGB pixels, row-major HWC, values in [0, 1]; length `height * width * 3`. */
  image: Float32Array;
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Class index of the target object (index into {@link CLASS_NAMES}). */
  label: number;
  /** Class name of the target object. */
  className: string;
  /** Target mask, row-major `height * width`, 1 where the pixel belongs to the target. */
  mask: Uint8Array;
  /** Tight box around the mask: `[x0, y0, x1, y1]`, x0/y0 inclusive, x1/y1 exclusive. */
  box: [number, number, number, number];
  /** The seed the scene was made from. */
  seed: number;
}

/** A batch of consecutive-seed scenes packed into one NHWC buffer. */
export interface SceneBatch {
  /** Pixels of all scenes, `n * size * size * 3`, NHWC, values in [0, 1]. */
  images: Float32Array;
  /** Target label of each scene. */
  labels: Int32Array;
  /** Target masks, `n * size * size`. */
  masks: Uint8Array;
  /** Boxes `[x0, y0, x1, y1]` (x1/y1 exclusive) of each scene. */
  boxes: [number, number, number, number][];
  /** Seeds used, `startSeed .. startSeed + n - 1`. */
  seeds: number[];
  /** Number of scenes. */
  n: number;
  /** Image side in pixels. */
  size: number;
}

/** Deterministic 32-bit PRNG (mulberry32 recurrence) returning floats in [0, 1). */
export type Rng = () => number;

/**
 * Create a deterministic PRNG from an integer seed. The seed is first scrambled with an
 * integer hash so that neighbouring seeds give unrelated streams.
 */
export function makeRng(seed: number): Rng {
  let h = (seed | 0) ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  let state = (h ^ (h >>> 16)) >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rgb = [number, number, number];

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

function randInt(rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}

function hsv(h: number, s: number, v: number): Rgb {
  const hh = ((h % 1) + 1) % 1 * 6;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (i) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

function luma(c: Rgb): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

// ---------------------------------------------------------------------------------------------
// Shapes: point-in-shape tests in the object's local frame, where the object fits the unit disk.

type ShapeTest = (u: number, v: number) => boolean;

function regularPolygon(n: number, radius: number, phase: number): number[] {
  const pts: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = phase + (2 * Math.PI * i) / n;
    pts.push(radius * Math.cos(a), radius * Math.sin(a));
  }
  return pts;
}

function starPolygon(points: number, outer: number, inner: number): number[] {
  const pts: number[] = [];
  for (let i = 0; i < 2 * points; i++) {
    const a = -Math.PI / 2 + (Math.PI * i) / points;
    const r = i % 2 === 0 ? outer : inner;
    pts.push(r * Math.cos(a), r * Math.sin(a));
  }
  return pts;
}

/** Even-odd ray casting test against a closed polygon given as flat [x0, y0, x1, y1, ...]. */
function insidePolygon(pts: number[], x: number, y: number): boolean {
  let inside = false;
  const n = pts.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = pts[2 * i], yi = pts[2 * i + 1];
    const xj = pts[2 * j], yj = pts[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

const TRIANGLE = regularPolygon(3, 1, -Math.PI / 2);
const STAR = starPolygon(5, 1, 0.42);
const HEXAGON = regularPolygon(6, 0.95, 0);

const SHAPES: readonly ShapeTest[] = [
  // disk
  (u, v) => u * u + v * v <= 0.9,
  // ring
  (u, v) => {
    const r2 = u * u + v * v;
    return r2 <= 0.95 && r2 >= 0.3;
  },
  // triangle
  (u, v) => insidePolygon(TRIANGLE, u, v),
  // square
  (u, v) => Math.abs(u) <= 0.72 && Math.abs(v) <= 0.72,
  // star
  (u, v) => insidePolygon(STAR, u, v),
  // cross
  (u, v) => {
    const au = Math.abs(u), av = Math.abs(v);
    return (au <= 0.3 && av <= 0.92) || (av <= 0.3 && au <= 0.92);
  },
  // crescent
  (u, v) => u * u + v * v <= 0.92 && (u - 0.48) * (u - 0.48) + v * v > 0.55,
  // heart (implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y pointing up)
  (u, v) => {
    const x = u * 1.2;
    const y = -v * 1.2 + 0.12;
    const a = x * x + y * y - 1;
    return a * a * a - x * x * y * y * y <= 0;
  },
  // hexagon
  (u, v) => insidePolygon(HEXAGON, u, v),
  // ellipse (long axis along u)
  (u, v) => u * u + (v * v) / 0.2 <= 0.95,
];

// Textures: mixing weight in [0, 1] between the object's two colours, in the local frame.
type Texture = (u: number, v: number) => number;

function fract(x: number): number {
  return x - Math.floor(x);
}

const TEXTURES: readonly Texture[] = [
  // disk: radial gradient
  (u, v) => Math.min(1, Math.sqrt(u * u + v * v) / 0.95),
  // ring: solid
  () => 0,
  // triangle: stripes parallel to the base (constant v)
  (_u, v) => (fract((v + 1) * 2.75) < 0.5 ? 0 : 1),
  // square: checkerboard (4 x 4 cells)
  (u, v) => ((Math.floor((u + 1) * 2.78) + Math.floor((v + 1) * 2.78)) & 1),
  // star: solid
  () => 0,
  // cross: diagonal stripes
  (u, v) => (fract((u + v + 4) * 2.2) < 0.5 ? 0 : 1),
  // crescent: dots on a grid
  (u, v) => {
    const fu = fract((u + 1) * 3.2) - 0.5;
    const fv = fract((v + 1) * 3.2) - 0.5;
    return fu * fu + fv * fv < 0.09 ? 1 : 0;
  },
  // heart: linear gradient top to bottom
  (_u, v) => Math.min(1, Math.max(0, (v + 0.9) / 1.8)),
  // hexagon: concentric rings
  (u, v) => (fract(Math.sqrt(u * u + v * v) * 3.3) < 0.5 ? 0 : 1),
  // ellipse: stripes across the long axis
  (u, _v) => (fract((u + 1) * 3.5) < 0.5 ? 0 : 1),
];

interface ObjectSpec {
  cls: number;
  cx: number;
  cy: number;
  /** Radius in pixels of the unit disk in the local frame. */
  r: number;
  angle: number;
  c0: Rgb;
  c1: Rgb;
}

/** Two colours with clearly different brightness, random hues. */
function objectColours(rng: Rng): [Rgb, Rgb] {
  for (;;) {
    const a = hsv(rng(), uniform(rng, 0.3, 1), uniform(rng, 0.15, 1));
    const b = hsv(rng(), uniform(rng, 0.2, 1), uniform(rng, 0.15, 1));
    if (Math.abs(luma(a) - luma(b)) >= 0.3) return rng() < 0.5 ? [a, b] : [b, a];
  }
}

/**
 * Colours for the target that stand out from the background under it: both texture colours
 * differ in brightness from the background's mean (over the target's disc) by at least 0.18,
 * so the target's outline is always visible (best of 100 tries).
 */
function contrastingColours(rng: Rng, img: Float32Array, size: number, o: ObjectSpec): [Rgb, Rgb] {
  let sum = 0, n = 0;
  for (let y = Math.floor(o.cy - o.r); y < o.cy + o.r; y++) {
    for (let x = Math.floor(o.cx - o.r); x < o.cx + o.r; x++) {
      if (x < 0 || y < 0 || x >= size || y >= size) continue;
      if ((x + 0.5 - o.cx) ** 2 + (y + 0.5 - o.cy) ** 2 > o.r * o.r) continue;
      const i = (y * size + x) * 3;
      sum += luma([img[i], img[i + 1], img[i + 2]]);
      n++;
    }
  }
  const bg = n > 0 ? sum / n : 0.5;
  let best: [Rgb, Rgb] = objectColours(rng);
  let bestScore = -1;
  for (let k = 0; k < 100; k++) {
    const cand = k === 0 ? best : objectColours(rng);
    const score = Math.min(Math.abs(luma(cand[0]) - bg), Math.abs(luma(cand[1]) - bg));
    if (score > bestScore) {
      best = cand;
      bestScore = score;
    }
    if (score >= 0.18) break;
  }
  return best;
}

// 2 x 2 supersampling offsets inside a pixel.
const SUB = [0.25, 0.75];

/**
 * Rasterise one object onto the image (alpha-blended by coverage). When `mask` is given, it
 * is set to 1 where the pixel centre lies inside the shape and 0 where an earlier object was
 * marked but is now covered (not used: the target is drawn last).
 */
function drawObject(
  img: Float32Array,
  size: number,
  o: ObjectSpec,
  mask: Uint8Array | null,
): void {
  const shape = SHAPES[o.cls];
  const tex = TEXTURES[o.cls];
  const cos = Math.cos(o.angle), sin = Math.sin(o.angle);
  const inv = 1 / o.r;
  const x0 = Math.max(0, Math.floor(o.cx - o.r - 1));
  const x1 = Math.min(size, Math.ceil(o.cx + o.r + 1));
  const y0 = Math.max(0, Math.floor(o.cy - o.r - 1));
  const y1 = Math.min(size, Math.ceil(o.cy + o.r + 1));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      let cover = 0, tsum = 0;
      for (const sy of SUB) {
        for (const sx of SUB) {
          const dx = (x + sx - o.cx) * inv, dy = (y + sy - o.cy) * inv;
          // Rotate into the object's local frame.
          const u = cos * dx + sin * dy;
          const v = -sin * dx + cos * dy;
          if (shape(u, v)) {
            cover++;
            tsum += tex(u, v);
          }
        }
      }
      if (mask !== null) {
        const dx = (x + 0.5 - o.cx) * inv, dy = (y + 0.5 - o.cy) * inv;
        if (shape(cos * dx + sin * dy, -sin * dx + cos * dy)) mask[y * size + x] = 1;
      }
      if (cover === 0) continue;
      const alpha = cover / 4;
      const t = tsum / cover;
      const i = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const col = o.c0[c] * (1 - t) + o.c1[c] * t;
        img[i + c] = img[i + c] * (1 - alpha) + col * alpha;
      }
    }
  }
}

/** Smooth value noise: a random coarse grid, bilinearly upsampled. */
function valueNoise(rng: Rng, size: number, cells: number): Float32Array {
  const g = cells + 1;
  const grid = new Float32Array(g * g);
  for (let i = 0; i < grid.length; i++) grid[i] = rng();
  const out = new Float32Array(size * size);
  const scale = cells / size;
  for (let y = 0; y < size; y++) {
    const gy = y * scale;
    const iy = Math.floor(gy), fy = gy - iy;
    const sy = fy * fy * (3 - 2 * fy);
    for (let x = 0; x < size; x++) {
      const gx = x * scale;
      const ix = Math.floor(gx), fx = gx - ix;
      const sx = fx * fx * (3 - 2 * fx);
      const a = grid[iy * g + ix], b = grid[iy * g + ix + 1];
      const c = grid[(iy + 1) * g + ix], d = grid[(iy + 1) * g + ix + 1];
      out[y * size + x] = (a * (1 - sx) + b * sx) * (1 - sy) + (c * (1 - sx) + d * sx) * sy;
    }
  }
  return out;
}

/** Draw the cluttered background: gradient, value noise, soft blobs, lines, pixel noise. */
function drawBackground(rng: Rng, img: Float32Array, size: number): void {
  const ca = hsv(rng(), uniform(rng, 0, 0.5), uniform(rng, 0.2, 0.9));
  const cb = hsv(rng(), uniform(rng, 0, 0.5), uniform(rng, 0.2, 0.9));
  const ga = rng() * 2 * Math.PI;
  const gdx = Math.cos(ga) / size, gdy = Math.sin(ga) / size;
  const noise = valueNoise(rng, size, 2 + randInt(rng, 7));
  const noiseAmp = uniform(rng, 0.05, 0.25);
  const nc = hsv(rng(), uniform(rng, 0, 0.5), 1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + (x - size / 2) * gdx + (y - size / 2) * gdy));
      const n = (noise[y * size + x] - 0.5) * noiseAmp;
      const i = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) img[i + c] = ca[c] * (1 - t) + cb[c] * t + n * nc[c];
    }
  }
  // Soft blobs.
  const blobs = 1 + randInt(rng, 4);
  for (let b = 0; b < blobs; b++) {
    const bx = rng() * size, by = rng() * size;
    const br = uniform(rng, 0.08, 0.3) * size;
    const col = hsv(rng(), uniform(rng, 0, 0.8), uniform(rng, 0.1, 1));
    const strength = uniform(rng, 0.3, 0.8);
    const lo = (v: number): number => Math.max(0, Math.floor(v - 2.5 * br));
    const hi = (v: number): number => Math.min(size, Math.ceil(v + 2.5 * br));
    for (let y = lo(by); y < hi(by); y++) {
      for (let x = lo(bx); x < hi(bx); x++) {
        const d2 = ((x - bx) ** 2 + (y - by) ** 2) / (br * br);
        const a = strength * Math.exp(-d2);
        const i = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) img[i + c] = img[i + c] * (1 - a) + col[c] * a;
      }
    }
  }
  // Straight lines of random width.
  const lines = 1 + randInt(rng, 4);
  for (let l = 0; l < lines; l++) {
    const px = rng() * size, py = rng() * size;
    const la = rng() * Math.PI;
    const nx = -Math.sin(la), ny = Math.cos(la);
    const half = uniform(rng, 0.4, 1.2);
    const col = hsv(rng(), uniform(rng, 0, 1), uniform(rng, 0.1, 1));
    const a = uniform(rng, 0.3, 0.7);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const d = Math.abs((x + 0.5 - px) * nx + (y + 0.5 - py) * ny);
        if (d > half + 0.5) continue;
        const w = a * Math.min(1, half + 0.5 - d);
        const i = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) img[i + c] = img[i + c] * (1 - w) + col[c] * w;
      }
    }
  }
  // Fine pixel noise.
  const amp = uniform(rng, 0.01, 0.06);
  for (let i = 0; i < img.length; i++) img[i] += (rng() - 0.5) * 2 * amp;
}

function checkSize(size: number): number {
  if (!Number.isInteger(size) || size < 32 || size > 1024) {
    throw new RangeError(`scene size must be an integer in [32, 1024], got ${size}`);
  }
  return size;
}

/**
 * Generate one scene deterministically from an integer seed.
 *
 * The target's class is `seed mod 10` unless `opts.label` forces it; its diameter is 32-60 %
 * of the image side (the object's bounding circle), it is rotated arbitrarily and placed
 * fully inside the image. One to three distractors of other classes, 10-20 % of the side and
 * never larger than half the target, are drawn before it (they may be partly covered by
 * it or cut by the border); the target is drawn last, so the mask is the whole target.
 *
 * @param seed any 32-bit integer
 * @param opts image size, forced label, distractor count
 * @returns the scene with its image, label, mask and box
 */
export function generateScene(seed: number, opts: SceneOptions = {}): Scene {
  if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
  const size = checkSize(opts.size ?? 128);
  const nClasses = CLASS_NAMES.length;
  const label = opts.label ?? (((seed % nClasses) + nClasses) % nClasses);
  if (!Number.isInteger(label) || label < 0 || label >= nClasses) {
    throw new RangeError(`label must be an integer in [0, ${nClasses - 1}], got ${label}`);
  }
  const rng = makeRng(seed);
  const image = new Float32Array(size * size * 3);
  drawBackground(rng, image, size);

  // Target geometry first (so distractor sizes can depend on it).
  const tr = uniform(rng, 0.16, 0.3) * size;
  const target: ObjectSpec = {
    cls: label,
    r: tr,
    cx: uniform(rng, tr + 1, size - tr - 1),
    cy: uniform(rng, tr + 1, size - tr - 1),
    angle: rng() * 2 * Math.PI,
    c0: [0, 0, 0],
    c1: [0, 0, 0],
  };
  [target.c0, target.c1] = contrastingColours(rng, image, size, target);

  const nd = opts.distractors ?? 1 + randInt(rng, 3);
  if (!Number.isInteger(nd) || nd < 0 || nd > 6) {
    throw new RangeError(`distractors must be an integer in [0, 6], got ${nd}`);
  }
  for (let d = 0; d < nd; d++) {
    let cls = randInt(rng, nClasses - 1);
    if (cls >= label) cls++;
    const r = Math.min(uniform(rng, 0.05, 0.1) * size, 0.5 * tr);
    const [c0, c1] = objectColours(rng);
    const o: ObjectSpec = {
      cls,
      r,
      cx: uniform(rng, 0, size),
      cy: uniform(rng, 0, size),
      angle: rng() * 2 * Math.PI,
      c0,
      c1,
    };
    drawObject(image, size, o, null);
  }

  const mask = new Uint8Array(size * size);
  drawObject(image, size, target, mask);
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    image[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }

  let bx0 = size, by0 = size, bx1 = 0, by1 = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (mask[y * size + x]) {
        if (x < bx0) bx0 = x;
        if (x + 1 > bx1) bx1 = x + 1;
        if (y < by0) by0 = y;
        if (y + 1 > by1) by1 = y + 1;
      }
    }
  }
  return {
    image,
    width: size,
    height: size,
    label,
    className: CLASS_NAMES[label],
    mask,
    box: [bx0, by0, bx1, by1],
    seed,
  };
}

/**
 * Generate `n` scenes from consecutive seeds `startSeed .. startSeed + n - 1` into one NHWC
 * buffer (ready for `tf.tensor4d(images, [n, size, size, 3])`).
 *
 * @param startSeed first seed
 * @param n number of scenes
 * @param opts options passed to {@link generateScene} for every scene
 * @returns packed images, labels, masks, boxes and seeds
 */
export function generateBatch(startSeed: number, n: number, opts: SceneOptions = {}): SceneBatch {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a natural number, got ${n}`);
  const size = checkSize(opts.size ?? 128);
  const px = size * size;
  const images = new Float32Array(n * px * 3);
  const labels = new Int32Array(n);
  const masks = new Uint8Array(n * px);
  const boxes: [number, number, number, number][] = [];
  const seeds: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = generateScene(startSeed + i, opts);
    images.set(s.image, i * px * 3);
    masks.set(s.mask, i * px);
    labels[i] = s.label;
    boxes.push(s.box);
    seeds.push(s.seed);
  }
  return { images, labels, masks, boxes, seeds, n, size };
}
