/**
 * Constant folding for the ONNX front end: the shape arithmetic exporters write around ops
 * whose parameters are computed (PyTorch's `F.pad` exports its pads as `ConstantOfShape`,
 * `Concat`, `Reshape`, `Slice`, `Transpose` and `Cast` of constants). When every input of
 * such a node is a constant, its output is computed here, in ONNX layout, and the node
 * becomes a constant.
 *
 * @module
 */
import {
  type AttrValue,
  type Constant,
  num,
  type TensorProto,
  tensorValues,
} from "./onnx_model.ts";

/** The ops {@linkcode foldConstant} evaluates. */
export const FOLDABLE: ReadonlySet<string> = new Set([
  "ConstantOfShape",
  "Concat",
  "Reshape",
  "Slice",
  "Transpose",
  "Cast",
  "Unsqueeze",
  "Squeeze",
  "Gather",
]);

/** `TensorProto.DataType` codes of integer types (their values stay integers). */
const INT_TYPES = new Set([2, 3, 4, 5, 6, 7, 9, 12, 13]);

const strides = (dims: readonly number[]): number[] => {
  const s = new Array<number>(dims.length).fill(1);
  for (let k = dims.length - 2; k >= 0; k--) s[k] = s[k + 1] * dims[k + 1];
  return s;
};

/** A constant's values gathered at `index(i)` for each output position `i` of `dims`. */
function gather(
  c: Constant,
  dims: number[],
  index: (outIdx: number[]) => number,
): Constant {
  const count = dims.reduce((a, b) => a * b, 1);
  const data = c.data instanceof Int32Array ? new Int32Array(count) : new Float32Array(count);
  const st = strides(dims);
  for (let o = 0; o < count; o++) {
    const idx = dims.map((_, k) => Math.floor(o / st[k]) % dims[k]);
    data[o] = c.data[index(idx)];
  }
  return { dims, data };
}

/**
 * The value of a node whose inputs are all constants (`inputs[i]` undefined for an omitted
 * optional input); throws an error without prefix for values it cannot compute.
 */
export function foldConstant(
  opType: string,
  a: Record<string, AttrValue>,
  inputs: readonly (Constant | undefined)[],
): Constant {
  const [x] = inputs;
  const ints = (c: Constant | undefined): number[] => (c ? Array.from(c.data) : []);
  switch (opType) {
    case "ConstantOfShape": {
      const dims = ints(x);
      const v = a.value ? tensorValues(a.value as TensorProto, "ConstantOfShape") : undefined;
      const count = dims.reduce((p, q) => p * q, 1);
      const data = v?.data instanceof Int32Array ? new Int32Array(count) : new Float32Array(count);
      data.fill(v ? v.data[0] : 0);
      return { dims, data };
    }
    case "Concat": {
      const parts = inputs.filter((c): c is Constant => c !== undefined);
      const rank = parts[0].dims.length;
      const axis = (num(a.axis) + rank) % rank;
      const dims = [...parts[0].dims];
      dims[axis] = parts.reduce((s, c) => s + c.dims[axis], 0);
      const outer = dims.slice(0, axis).reduce((p, q) => p * q, 1);
      const Out = parts.some((c) => c.data instanceof Float32Array) ? Float32Array : Int32Array;
      const data = new Out(dims.reduce((p, q) => p * q, 1));
      let off = 0;
      for (let o = 0; o < outer; o++) {
        for (const c of parts) {
          const n = c.data.length / outer;
          data.set(c.data.subarray(o * n, (o + 1) * n), off);
          off += n;
        }
      }
      return { dims, data };
    }
    case "Reshape": {
      const want = ints(inputs[1]).map((d, i) => (d === 0 ? x!.dims[i] : d));
      const known = want.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
      return { dims: want.map((d) => (d === -1 ? x!.data.length / known : d)), data: x!.data };
    }
    case "Unsqueeze":
    case "Squeeze": {
      const axesIn = a.axes as number[] | undefined ?? ints(inputs[1]);
      const rank = x!.dims.length + (opType === "Unsqueeze" ? axesIn.length : 0);
      const axes = axesIn.map((v) => (v < 0 ? v + rank : v));
      let dims: number[];
      if (opType === "Unsqueeze") {
        dims = [];
        for (let k = 0, j = 0; k < rank; k++) dims.push(axes.includes(k) ? 1 : x!.dims[j++]);
      } else {
        dims = x!.dims.filter((d, k) => (axes.length ? !axes.includes(k) : d !== 1));
      }
      return { dims, data: x!.data };
    }
    case "Transpose": {
      const rank = x!.dims.length;
      const perm = (a.perm as number[] | undefined) ?? [...Array(rank).keys()].reverse();
      const st = strides(x!.dims);
      return gather(
        x!,
        perm.map((p) => x!.dims[p]),
        (idx) => idx.reduce((s, v, k) => s + v * st[perm[k]], 0),
      );
    }
    case "Slice": {
      const rank = x!.dims.length;
      const starts = ints(inputs[1]), ends = ints(inputs[2]);
      const axes = inputs[3] ? ints(inputs[3]) : starts.map((_, i) => i);
      const steps = inputs[4] ? ints(inputs[4]) : starts.map(() => 1);
      const begin = new Array<number>(rank).fill(0);
      const step = new Array<number>(rank).fill(1);
      const dims = [...x!.dims];
      axes.forEach((ax0, i) => {
        const ax = ax0 < 0 ? ax0 + rank : ax0;
        const d = x!.dims[ax];
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        const s = steps[i];
        const norm = (v: number) => (v < 0 ? v + d : v);
        const b = s > 0 ? clamp(norm(starts[i]), 0, d) : clamp(norm(starts[i]), -1, d - 1);
        const e = s > 0 ? clamp(norm(ends[i]), 0, d) : clamp(norm(ends[i]), -1, d - 1);
        begin[ax] = b;
        step[ax] = s;
        dims[ax] = Math.max(0, Math.ceil((e - b) / s));
      });
      const st = strides(x!.dims);
      return gather(
        x!,
        dims,
        (idx) => idx.reduce((s, v, k) => s + (begin[k] + v * step[k]) * st[k], 0),
      );
    }
    case "Gather": {
      const rank = x!.dims.length;
      const axis = (num(a.axis ?? 0) + rank) % rank;
      const ind = inputs[1]!;
      const dims = [...x!.dims.slice(0, axis), ...ind.dims, ...x!.dims.slice(axis + 1)];
      const st = strides(x!.dims);
      const r = ind.dims.length;
      const ist = strides(ind.dims);
      return gather(x!, dims, (idx) => {
        const at = idx.slice(axis, axis + r).reduce((s, v, k) => s + v * ist[k], 0);
        let i = ind.data[at];
        if (i < 0) i += x!.dims[axis];
        const src = [...idx.slice(0, axis), i, ...idx.slice(axis + r)];
        return src.reduce((s, v, k) => s + v * st[k], 0);
      });
    }
    case "Cast": {
      const toInt = INT_TYPES.has(num(a.to));
      const data = toInt ? Int32Array.from(x!.data, Math.trunc) : Float32Array.from(x!.data);
      return { dims: x!.dims, data };
    }
    default:
      throw new Error(`op '${opType}' cannot be evaluated on constants`);
  }
}
