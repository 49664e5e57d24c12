/**
 * Winograd F(4x4, 3x3) convolution for the wasm backend.
 *
 * A 3x3, stride-1, `same` convolution computes each 4x4 block of outputs from a 6x6 input
 * tile. In the Winograd domain that is 36 independent matrix products
 * `V_k [tiles, Cin] x U_k [Cin, Cout]` instead of 9 per output pixel, so 4x fewer
 * multiply-adds (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
 *
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
 *
 * On tfjs-wasm every heavy step runs in XNNPACK matrix products (threaded): the input
 * transform `kron(Bᵀ, Bᵀ) [36, 36] x D [36, tiles*Cin]`, the 36 products with the cached
 * transformed kernels, and the output transform `kron(Aᵀ, Aᵀ) [16, 36] x M [36, tiles*Cout]`.
 * The data movement around them (gathering the overlapping 6x6 tiles, splitting rows,
 * scattering 4x4 blocks back to NHWC) is three small kernels here that copy contiguous
 * channel runs inside the wasm heap.
 *
 * Results differ from the direct convolution by rounding only: about 1e-5 of the output's
 * largest magnitude in float32.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { HeapBackend } from "./_heap.ts";

type Tensor = tf.Tensor;
type Tensor2D = tf.Tensor2D;
type Tensor4D = tf.Tensor4D;

const BT = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
const G = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];

/** kron(a, a) of an r x c matrix: [(i*r+j), (k*c+l)] = a[i][k] * a[j][l]. */
function kron(a: number[][]): number[][] {
  const r = a.length, c = a[0].length;
  const out: number[][] = [];
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      const row: number[] = [];
      for (let k = 0; k < c; k++) for (let l = 0; l < c; l++) row.push(a[i][k] * a[j][l]);
      out.push(row);
    }
  }
  return out;
}

const KRON_BT = kron(BT); // [36, 36]
const KRON_G = kron(G); // [36, 9]
const KRON_AT = kron(AT); // [16, 36]

interface Transforms {
  /** kron(Bᵀ, Bᵀ) [36, 36]: input tiles to the Winograd domain. */
  b: Tensor2D;
  /** kron(Aᵀ, Aᵀ) [16, 36]: back to 4x4 output blocks. */
  a: Tensor2D;
}

let cached: Transforms | null = null;

function transforms(): Transforms {
  if (cached == null || cached.b.isDisposed) {
    cached = {
      b: tf.keep(tf.tensor2d(KRON_BT)),
      a: tf.keep(tf.tensor2d(KRON_AT)),
    };
  }
  return cached;
}

/**
 * Which convolutions the path may take (the public `WinogradMode` less `"off"`, which never
 * asks): `"auto"` only kernels of 128x256 to 256x256 channels, `"all"` every one it pays for.
 */
export type WinogradScope = "auto" | "all";

/** Kernels whose transforms are cached, for the budget. */
const onPath = new Set<Tensor>();
const BUDGET_BYTES = 2 ** 30;

/** Bytes a kernel's cached transform keeps: 4x its bytes for the 36 transformed kernels, as
 * much again for XNNPACK's packed copies. */
function cost(kernel: Tensor): number {
  return 8 * 4 * kernel.size;
}

/** Whether `kernel` may keep a cached transform: already does, or fits the budget. */
function admit(kernel: Tensor): boolean {
  if (onPath.has(kernel)) return true;
  let used = 0;
  for (const k of onPath) {
    if (k.isDisposed) onPath.delete(k);
    else used += cost(k);
  }
  if (used + cost(kernel) > BUDGET_BYTES) return false;
  onPath.add(kernel);
  return true;
}

/**
 * Whether a convolution takes the Winograd path: wasm backend, float32, 3x3 kernel, stride 1,
 * dilation 1, `same` padding, no gradient tape recording, at least 4x4 pixels, channels wide
 * enough that the matrix products outweigh the transforms (`Cin*Cout/(Cin+Cout) >= 48`; on
 * VGG16, 64->64 at 224x224 gains nothing, 128->128 at 112x112 1.5x, 256->256 at 56x56 2.3x,
 * 512->512 at 28x28 2.8x on one thread), and the channels of `scope` and the memory budget
 * (cached transforms total at most 1 GiB). A `true` answer admits the kernel to the budget:
 * call it only for a convolution about to run.
 */
export function winogradApplies(
  x: Tensor,
  kernel: Tensor,
  strides: readonly [number, number],
  padding: string,
  dilations: readonly [number, number],
  scope: WinogradScope,
): boolean {
  if (tf.getBackend() !== "wasm") return false;
  // Under tf.grad / tf.grads the direct op, whose gradient tfjs knows (the path's kernels have none).
  if (tf.engine().state.gradientDepth > 0) return false;
  if (x.rank !== 4 || x.dtype !== "float32" || kernel.rank !== 4) return false;
  const [kh, kw, ci, co] = kernel.shape;
  if (kh !== 3 || kw !== 3 || padding !== "same") return false;
  if (strides[0] !== 1 || strides[1] !== 1 || dilations[0] !== 1 || dilations[1] !== 1) {
    return false;
  }
  if (scope === "auto" && (ci * co > 256 * 256 || ci * co < 128 * 256)) return false;
  const [, h, w] = x.shape;
  return h >= 4 && w >= 4 && (ci * co) / (ci + co) >= 48 && admit(kernel);
}

/** Number of transformed kernels per 3x3 kernel (one per point of the 6x6 tile). */
export const WINOGRAD_POINTS = 36;

/** Transformed kernel `k` of a 3x3 HWIO kernel: `(G g Gᵀ)_k`, shape [Cin, Cout]. */
export function winogradKernel(kernel: Tensor, k: number): Tensor2D {
  const [, , ci = 0, co = 0] = kernel.shape;
  return tf.tidy(() => {
    const g = kernel.reshape([9, ci * co]) as Tensor2D;
    return tf.matMul(tf.tensor2d([KRON_G[k]]), g).reshape([ci, co]) as Tensor2D;
  });
}

/**
 * `tf.conv2d(x, kernel, 1, "same")` for a 3x3 kernel by Winograd F(4x4, 3x3), given the
 * kernel's {@link WINOGRAD_POINTS} transformed kernels `u` (see {@link winogradKernel}).
 * Call only when {@link winogradApplies} says so.
 */
export function winogradConv2d(x: Tensor4D, u: Tensor2D[]): Tensor4D {
  const { b, a } = transforms();
  // Intermediates are freed as soon as they are used: the wasm heap keeps its high-water mark.
  return tf.tidy(() => winograd(x, u, b, a));
}

function winograd(x: Tensor4D, u: Tensor2D[], b: Tensor2D, a: Tensor2D): Tensor4D {
  const [n, h, w, ci] = x.shape;
  const co = u[0].shape[1];
  const tiles = n * Math.ceil(h / 4) * Math.ceil(w / 4);
  const engine = tf.engine();
  const d = engine.runKernel(GATHER, { x }) as Tensor2D; // [36, tiles*Cin]
  const vAll = tf.matMul(b, d);
  d.dispose();
  const v = engine.runKernel(ROWS, { x: vAll }, { cols: ci }) as Tensor2D[]; // 36 x [tiles, Cin]
  vAll.dispose();
  const products = v.map((vk, k) => {
    const p = tf.matMul(vk, u[k]);
    vk.dispose();
    return p;
  });
  const m = tf.concat(products, 0);
  tf.dispose(products);
  const y = tf.matMul(a, m.reshape([36, tiles * co]) as Tensor2D); // [16, tiles*Cout]
  m.dispose();
  const out = engine.runKernel(SCATTER, { x: y }, { shape: [n, h, w, co] }) as Tensor4D;
  y.dispose();
  return out;
}

const GATHER = "GradualWinogradGather";
const ROWS = "GradualWinogradRows";
const SCATTER = "GradualWinogradScatter";

/** The whole wasm heap as float32 and the element offset of a tensor in it. */
function heapAt(backend: HeapBackend, info: tf.TensorInfo): [Float32Array, number] {
  const v = backend.typedArrayFromHeap(info) as Float32Array;
  return [new Float32Array(v.buffer), v.byteOffset / 4];
}

type KernelArgs = {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
};

/**
 * x [N, H, W, C] -> D [36, tiles*C]: row (i*6+j) holds, for every 4x4 output tile, the
 * channel vector at offset (i-1, j-1) from the tile's corner (0 outside the image).
 */
function gather({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const be = backend as HeapBackend;
  const x = inputs.x as tf.TensorInfo;
  const [n, h, w, c] = x.shape;
  const th = Math.ceil(h / 4), tw = Math.ceil(w / 4);
  const tiles = n * th * tw;
  heapAt(be, x); // moves x to this backend first, should it live elsewhere (may grow the heap)
  const out = be.makeOutput([36, tiles * c], "float32");
  // Views only after the allocation above (a heap grow detaches old views).
  const [heap, xOff] = heapAt(be, x);
  const [, dOff] = heapAt(be, out);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      let d = dOff + (i * 6 + j) * tiles * c;
      for (let b = 0; b < n; b++) {
        for (let ty = 0; ty < th; ty++) {
          const r = 4 * ty + i - 1;
          const rowIn = r >= 0 && r < h;
          for (let tx = 0; tx < tw; tx++, d += c) {
            const col = 4 * tx + j - 1;
            if (rowIn && col >= 0 && col < w) {
              const s = xOff + ((b * h + r) * w + col) * c;
              heap.copyWithin(d, s, s + c);
            } else {
              heap.fill(0, d, d + c);
            }
          }
        }
      }
    }
  }
  return out;
}

/** x [R, L] -> R tensors [L / cols, cols] (row k of x, reshaped). */
function rows({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] {
  const be = backend as HeapBackend;
  const x = inputs.x as tf.TensorInfo;
  const cols = (attrs as unknown as { cols: number }).cols;
  const [r, len] = x.shape;
  heapAt(be, x); // see gather()
  const outs = Array.from({ length: r }, () => be.makeOutput([len / cols, cols], "float32"));
  const [heap, xOff] = heapAt(be, x);
  outs.forEach((o, k) => heap.copyWithin(heapAt(be, o)[1], xOff + k * len, xOff + (k + 1) * len));
  return outs;
}

/** Y [16, tiles*C] -> [N, H, W, C]: row (a*4+b) is the output at offset (a, b) in each tile. */
function scatter({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const be = backend as HeapBackend;
  const y = inputs.x as tf.TensorInfo;
  const [n, h, w, c] = (attrs as unknown as { shape: number[] }).shape;
  const th = Math.ceil(h / 4), tw = Math.ceil(w / 4);
  heapAt(be, y); // see gather()
  const out = be.makeOutput([n, h, w, c], "float32");
  const [heap, yOff] = heapAt(be, y);
  const [, oOff] = heapAt(be, out);
  for (let a = 0; a < 4; a++) {
    for (let bb = 0; bb < 4; bb++) {
      let s = yOff + (a * 4 + bb) * n * th * tw * c;
      for (let b = 0; b < n; b++) {
        for (let ty = 0; ty < th; ty++) {
          const r = 4 * ty + a;
          for (let tx = 0; tx < tw; tx++, s += c) {
            const col = 4 * tx + bb;
            if (r < h && col < w) heap.copyWithin(oOff + ((b * h + r) * w + col) * c, s, s + c);
          }
        }
      }
    }
  }
  return out;
}

/** The Winograd data-movement kernels, for registration on the wasm backend. */
export const WINOGRAD_KERNELS: Array<[string, tf.KernelFunc]> = [
  [GATHER, gather as unknown as tf.KernelFunc],
  [ROWS, rows as unknown as tf.KernelFunc],
  [SCATTER, scatter as unknown as tf.KernelFunc],
];
