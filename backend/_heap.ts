/**
 * Private: the part of the tfjs wasm backend object that gradual's JavaScript kernels use
 * (`_wasm_kernels.ts`, `_winograd.ts`): making an output and viewing a tensor's bytes in the
 * wasm heap.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** The part of the wasm backend object that the JS kernels use. */
export interface HeapBackend {
  /** Allocates an output tensor in the wasm heap. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A typed-array view of a tensor's data in the wasm heap (moves it there first). */
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/** Whether a kernel's `backend` argument is the wasm backend (has the heap methods). */
export function isHeapBackend(b: unknown): b is HeapBackend {
  const o = b as Record<string, unknown> | null;
  return o != null && typeof o.makeOutput === "function" &&
    typeof o.typedArrayFromHeap === "function";
}
