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

/** Checks x [tokens, heads, headDim], its positions, rotDims, theta and frequency divisors for RoPE. */
export function ropePlan(x: Shape, positions: Int32Array | readonly number[], opts: { theta?: number; rotDims?: number; freqDivisors?: Float32Array | readonly number[] | null }) {
  if (x.length !== 3) fail('ERR_SHAPE', `rope: x must be [tokens, heads, headDim], got [${x.join(', ')}]`);
  const [tokens, heads, headDim] = x;
  const pos = int32Array(positions, 'positions');
  if (pos.length !== tokens) fail('ERR_SHAPE', `rope: ${tokens} tokens but ${pos.length} positions`);
  const rot = opts.rotDims ?? headDim;
  if (!Number.isInteger(rot) || rot < 0 || rot > headDim || rot % 2 !== 0) fail('ERR_SHAPE', `rope: rotDims must be an even integer in 0..${headDim}`);
  const theta = opts.theta ?? 10000;
  if (!(theta > 0) || !Number.isFinite(theta)) fail('ERR_RANGE', 'rope: theta must be a positive finite number');
  let div: Float32Array | null = null;
  if (opts.freqDivisors !== undefined && opts.freqDivisors !== null) {
    const d = opts.freqDivisors;
    if (!(d instanceof Float32Array) && !Array.isArray(d)) fail('ERR_TYPE', 'rope: freqDivisors must be a Float32Array or an array of numbers');
    if (d.length !== rot / 2) fail('ERR_SHAPE', `rope: freqDivisors needs ${rot / 2} values (one per rotated pair), got ${d.length}`);
    // The kernel checks each value (finite, >= 1) and names the first bad one.
    div = d instanceof Float32Array ? d : Float32Array.from(d);
  }
  return { tokens, heads, headDim, rot, theta, pos, div };
}

/** Checks q [T, H, D], k and v [S, G, D] and the query positions for causal GQA attention. */
export function attentionShape(q: Shape, k: Shape, v: Shape, positions: Int32Array | readonly number[]) {
  for (const [s, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const)
    if (s.length !== 3) fail('ERR_SHAPE', `attention: ${name} must be [tokens, heads, headDim], got [${s.join(', ')}]`);
  const [nQ, nHeads, headDim] = q;
  const [nKv, nKvHeads, kDim] = k;
  if (!sameShape(k, v)) fail('ERR_SHAPE', `attention: k [${k.join(', ')}] and v [${v.join(', ')}] differ`);
  if (kDim !== headDim) fail('ERR_SHAPE', `attention: q head size ${headDim} but k head size ${kDim}`);
  if (nKvHeads === 0 || nHeads % nKvHeads !== 0) fail('ERR_SHAPE', `attention: ${nHeads} query heads are not a multiple of ${nKvHeads} key/value heads`);
  const pos = int32Array(positions, 'positions');
  if (pos.length !== nQ) fail('ERR_SHAPE', `attention: ${nQ} queries but ${pos.length} positions`);
  for (let i = 0; i < pos.length; i++)
    if (pos[i] < 0 || pos[i] >= nKv) fail('ERR_RANGE', `attention: query ${i} is at position ${pos[i]}, outside the ${nKv} cached keys`);
  return { nQ, nHeads, headDim, nKv, nKvHeads, pos };
}
