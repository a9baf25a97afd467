/**
 * Products and lookups against stored weights (f32 / f16 / bf16 / q8_0 bytes, read in place from
 * the model file). The canonical value of a stored weight is its exact f32 widening
 * (docs/canonical-arithmetic.md, "Quantized weights"); products run natively through
 * gemmWeights, which widens on the fly and gives the bytes of "widen, then the f32 gemm".
 */
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { native, type NativeAddon } from '../engine/native.js';
import type { Weight, WeightFormat } from './types.js';
import { BLOCK_TYPES, isBlockFormat } from './gguf/blocks.js';

/** The layouts the product kernels read: the stored formats, and q8_0 / f32 repacked for decode. */
export type MatrixFormat = WeightFormat | 'q8_0x128' | 'f32x16';

/**
 * A matrix as the products take it: a stored Weight, or the decode layout of one (packForDecode).
 * The format never changes a product's bytes, only its speed.
 */
export interface MatrixWeight {
  name: string;
  format: MatrixFormat;
  shape: number[];
  bytes: Uint8Array;
}

type WeightAddon = NativeAddon & {
  gemmWeights(a: Float32Array, w: Uint8Array, format: MatrixFormat, c: Float32Array, m: number, n: number, k: number, bias: Float32Array | null, async: false): void;
  gemmWeightsSwiglu(a: Float32Array, m: number, k: number, wGate: Uint8Array, formatGate: MatrixFormat, wUp: Uint8Array, formatUp: MatrixFormat,
    n: number, gate: Float32Array, up: Float32Array, act: Float32Array): void;
  gemmWeightsMany(a: Float32Array, m: number, k: number, ...groups: (Uint8Array | MatrixFormat | Float32Array | number | null)[]): void;
  packQ8_0x128?(w: Uint8Array, n: number, k: number): Uint8Array;
  packF32x16?(w: Uint8Array, n: number, k: number): Uint8Array;
};
const addon = native as WeightAddon;

/** Rows per product up to which the decode layout has its fused kernel (the addon's limit). */
export const DECODE_MAX_ROWS = 8;

/**
 * Whether q8_0 and f32 matrices are best read repacked (q8_0x128, f32x16: packForDecode, or a
 * model's sidecar, packed-weights.ts): true on the CPU's AVX-512 path, whose fused kernels make
 * decode (up to DECODE_MAX_ROWS rows) faster, while larger products (prefill) widen the panels
 * as fast as the stored rows. Elsewhere the packed layouts still give the same bytes, through a
 * slower path, so callers keep the stored ones.
 */
export function decodeLayoutPreferred(): boolean {
  if (typeof addon.packQ8_0x128 !== 'function') return false;
  const i = native.info();
  return i.isa === 'avx512' && i.device === 'cpu';
}

/**
 * A q8_0 matrix [N, K] repacked into the decode layout q8_0x128 (same scales and int8 values,
 * 128-row panels, each k's rows side by side; see native/cpu/gemm_weights.h), or null for any
 * other format. The copy is the weight's size again, in memory of its own (LlamaModel keeps its
 * packed matrices in a memory-mapped sidecar file instead: packed-weights.ts).
 *
 * @example
 * const wq = packForDecode(weights.get('blk.0.attn_q.weight')) ?? weights.get('blk.0.attn_q.weight');
 */
export function packForDecode(w: Weight): MatrixWeight | null {
  if (w.format !== 'q8_0' || w.shape.length !== 2 || typeof addon.packQ8_0x128 !== 'function') return null;
  const [N, K] = w.shape;
  return { name: w.name, format: 'q8_0x128', shape: [N, K], bytes: addon.packQ8_0x128(w.bytes, N, K) };
}

/**
 * y[M, N] = x[M, K] x W^T (+ bias) for a stored weight W of shape [N, K].
 *
 * @example
 * const q = linear(h, tokens, weights.get('blk.0.attn_q.weight'));
 */
export function linear(x: Float32Array, rows: number, w: MatrixWeight, bias?: Float32Array | null, out?: Float32Array): Float32Array {
  if (w.shape.length !== 2) fail('ERR_MODEL_SHAPE', `${w.name}: a matrix weight needs 2 dimensions, got [${w.shape.join(', ')}]`);
  const [N, K] = w.shape;
  if (x.length !== rows * K) fail('ERR_SHAPE', `${w.name}: input has ${x.length} values, expected ${rows} x ${K}`);
  const y = out ?? new Float32Array(rows * N);
  addon.gemmWeights(x, w.bytes, w.format, y, rows, N, K, bias ?? null, false);
  return y;
}

/** Products per native call (the binding's limit). */
const MANY_MAX = 16;

/**
 * Several products of the same input rows (a layer's Q, K, V; gate and up): outs[i] = x W_i^T
 * (+ biases[i]), each with the bytes linear() would give it, in one native call and one
 * thread-pool dispatch -- at decode these products are latency-bound, not bandwidth-bound.
 *
 * @example
 * const [q, k, v] = linearMany(h, 1, [w.q, w.k, w.v], [w.qBias, w.kBias, w.vBias]);
 */
export function linearMany(x: Float32Array, rows: number, ws: readonly MatrixWeight[], biases: readonly (Float32Array | null)[] = [], outs: readonly Float32Array[] = []): Float32Array[] {
  if (ws.length === 0) return [];
  if (ws.length > MANY_MAX) {
    return [...linearMany(x, rows, ws.slice(0, MANY_MAX), biases.slice(0, MANY_MAX), outs.slice(0, MANY_MAX)),
      ...linearMany(x, rows, ws.slice(MANY_MAX), biases.slice(MANY_MAX), outs.slice(MANY_MAX))];
  }
  const K = ws[0].shape[1];
  const args: (Uint8Array | MatrixFormat | Float32Array | number | null)[] = [];
  const ys: Float32Array[] = [];
  ws.forEach((w, i) => {
    if (w.shape.length !== 2) fail('ERR_MODEL_SHAPE', `${w.name}: a matrix weight needs 2 dimensions, got [${w.shape.join(', ')}]`);
    if (w.shape[1] !== K) fail('ERR_MODEL_SHAPE', `${w.name}: ${w.shape[1]} inputs per row, the other weights have ${K}`);
    const y = outs[i] ?? new Float32Array(rows * w.shape[0]);
    ys.push(y);
    args.push(w.bytes, w.format, y, w.shape[0], biases[i] ?? null);
  });
  if (x.length !== rows * K) fail('ERR_SHAPE', `${ws[0].name}: input has ${x.length} values, expected ${rows} x ${K}`);
  addon.gemmWeightsMany(x, rows, K, ...args);
  return ys;
}

/**
 * The SwiGLU gate: silu(x Wgate^T) * (x Wup^T), [rows, N] -- the bytes of linear, linear, unary
 * silu, binary mul, in one native call (each thread applies the silu to its own columns).
 * `gate` and `up` receive the two products (scratch the caller may reuse).
 *
 * @example
 * const act = swiglu(h, 1, w.gate, w.up);
 */
export function swiglu(x: Float32Array, rows: number, gate: MatrixWeight, up: MatrixWeight,
  bufs: { gate?: Float32Array; up?: Float32Array; act?: Float32Array } = {}): Float32Array {
  for (const w of [gate, up]) if (w.shape.length !== 2) fail('ERR_MODEL_SHAPE', `${w.name}: a matrix weight needs 2 dimensions, got [${w.shape.join(', ')}]`);
  const [N, K] = gate.shape;
  if (up.shape[0] !== N || up.shape[1] !== K) fail('ERR_MODEL_SHAPE', `${up.name}: shape [${up.shape.join(', ')}] differs from ${gate.name} [${gate.shape.join(', ')}]`);
  if (x.length !== rows * K) fail('ERR_SHAPE', `${gate.name}: input has ${x.length} values, expected ${rows} x ${K}`);
  const g = bufs.gate ?? new Float32Array(rows * N), u = bufs.up ?? new Float32Array(rows * N);
  const act = bufs.act ?? new Float32Array(rows * N);
  addon.gemmWeightsSwiglu(x, rows, K, gate.bytes, gate.format, up.bytes, up.format, N, g, u, act);
  return act;
}

/** The exact f32 widening of an IEEE half (NaNs keep their payload, made quiet). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1024 + m) * 2 ** (e - 25);
}

const Q8_BLOCK = 32, Q8_BYTES = 34;

/** Bytes of one row of `k` weights in `format`. */
export function rowBytes(format: WeightFormat, k: number): number {
  switch (format) {
    case 'f32': return 4 * k;
    case 'f16': case 'bf16': return 2 * k;
    case 'q8_0':
      if (k % Q8_BLOCK !== 0) fail('ERR_MODEL_SHAPE', `q8_0 rows need a multiple of 32 values, got ${k}`);
      return (k / Q8_BLOCK) * Q8_BYTES;
    default:
      if (isBlockFormat(format)) {
        const t = BLOCK_TYPES[format];
        if (k % t.weights !== 0) fail('ERR_MODEL_SHAPE', `${format} rows need a multiple of ${t.weights} values, got ${k}`);
        return (k / t.weights) * t.bytes;
      }
      return fail('ERR_MODEL_FORMAT', `unknown weight format ${brief(format)}`);
  }
}

/** Widens rows [first, first + count) of a stored [R, K] (or [K]) weight into f32, exactly. */
export function widenRows(w: Weight, first: number, count: number, out?: Float32Array): Float32Array {
  const k = w.shape[w.shape.length - 1];
  const rows = w.shape.length === 1 ? 1 : w.shape[0];
  if (first < 0 || first + count > rows) fail('ERR_RANGE', `${w.name}: rows ${first}..${first + count} outside 0..${rows}`);
  const rb = rowBytes(w.format, k);
  const y = out ?? new Float32Array(count * k);
  const dv = new DataView(w.bytes.buffer, w.bytes.byteOffset + first * rb, count * rb);
  for (let r = 0; r < count; r++) {
    const base = r * rb, o = r * k;
    switch (w.format) {
      case 'f32':
        for (let i = 0; i < k; i++) y[o + i] = dv.getFloat32(base + 4 * i, true);
        break;
      case 'f16':
        for (let i = 0; i < k; i++) y[o + i] = halfToFloat(dv.getUint16(base + 2 * i, true));
        break;
      case 'bf16': {
        const u = new Uint32Array(1), f = new Float32Array(u.buffer);
        for (let i = 0; i < k; i++) {
          u[0] = dv.getUint16(base + 2 * i, true) << 16;
          y[o + i] = f[0];
        }
        break;
      }
      case 'q8_0':
        for (let b = 0; b < k / Q8_BLOCK; b++) {
          const d = halfToFloat(dv.getUint16(base + b * Q8_BYTES, true));
          // d has 11 significant bits and q 8: the product is exact in f32.
          for (let i = 0; i < Q8_BLOCK; i++) y[o + b * Q8_BLOCK + i] = d * dv.getInt8(base + b * Q8_BYTES + 2 + i);
        }
        break;
      default: {
        const t = BLOCK_TYPES[w.format];
        const bytes = new Uint8Array(w.bytes.buffer, w.bytes.byteOffset + first * rb, count * rb);
        for (let b = 0; b < k / t.weights; b++) t.decode(bytes, base + b * t.bytes, y, o + b * t.weights);
      }
    }
  }
  return y;
}

/** A whole 1-D weight (norm scales, biases) as f32. */
export function widenVector(w: Weight): Float32Array {
  if (w.shape.length !== 1) fail('ERR_MODEL_SHAPE', `${w.name}: expected a vector, got [${w.shape.join(', ')}]`);
  return widenRows(w, 0, 1);
}
