/** Shape rules shared by the host ops (ops.ts) and the device ops (device-tensor.ts). */
import { fail } from './errors.js';
import type { Shape } from './tensor.js';

/** [..., n] seen as rows of its last dimension. */
export function lastDim(shape: Shape, name: string): { rows: number; n: number } {
  if (shape.length < 1) fail('ERR_SHAPE', `${name} must have at least one dimension`);
  const n = shape[shape.length - 1];
  const lead = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return { rows: lead, n };
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks A [..., K] x B [K, N] (or B [N, K] with transposeB) and the bias [N]; gives the sizes. */
export function matmulShape(a: Shape, b: Shape, transposeB: boolean, bias?: Shape) {
  if (b.length !== 2) fail('ERR_SHAPE', `b must be a matrix, got shape [${b.join(', ')}]`);
  const { rows: M, n: K } = lastDim(a, 'a');
  const [bK, N] = transposeB ? [b[1], b[0]] : [b[0], b[1]];
  if (bK !== K)
    fail('ERR_SHAPE', `matmul: a is [${a.join(', ')}] but b is [${b.join(', ')}]${transposeB ? ' (transposed)' : ''}: inner dimensions ${K} and ${bK} differ`);
  if (bias !== undefined && (bias.length !== 1 || bias[0] !== N))
    fail('ERR_SHAPE', `bias must have shape [${N}], got [${bias.join(', ')}]`);
  return { M, N, K, out: [...a.slice(0, -1), N] };
}

/** Positions or ids as an Int32Array (an array is checked and copied). */
export function int32Array(values: Int32Array | readonly number[], name: string): Int32Array {
  if (values instanceof Int32Array) return values;
  if (!Array.isArray(values)) fail('ERR_TYPE', `${name} must be an Int32Array or an array of integers`);
  for (const v of values) if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) fail('ERR_RANGE', `${name} holds ${String(v)}, not a 32-bit integer`);
  return Int32Array.from(values);
}
