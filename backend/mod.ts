/**
 * The backend gradual runs on: TensorFlow.js on wasm (SIMD, threads), cpu or WebGPU, set up
 * once by {@linkcode initBackend}, with the kernels tfjs-wasm lacks or gets wrong, and the
 * convolution paths whose speed depends on the backend (Winograd on wasm, opt-in through
 * {@linkcode setWinograd}).
 *
 * This module is the backend's public API (re-exported by the package's `mod.ts`). The core's
 * layer ops run their convolutions through `ops.ts` ({@linkcode setWinograd}'s switch lives
 * there). The backend sits below the core: nothing here imports `core/`. Its private modules are
 * `_wasm_kernels.ts` (the extra wasm kernels), `_winograd.ts` (the Winograd F(4x4, 3x3)
 * convolution) and `_heap.ts` (the wasm heap access both use).
 *
 * @example Start the wasm backend on one thread
 * ```ts
 * import { initBackend } from "./mod.ts";
 * const info = await initBackend({ backend: "wasm", threads: 1 });
 * console.log(info.backend, info.threads, info.simd);
 * ```
 *
 * @module
 */
export * from "./init.ts";
export { getWinograd, setWinograd, type WinogradMode } from "./ops.ts";
