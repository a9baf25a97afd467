/**
 * The canonical kernels. Each returns a new tensor whose bytes are fixed by the spec
 * (DETERMINISM.md, docs/canonical-arithmetic.md): identical on every ISA path, thread count and
 * batch split. matmul and attention run off the JavaScript thread and return Promises; their
 * *Sync forms block.
 */
import { fail } from './errors.js';
import { native } from './native.js';
import { attentionShape, int32Array, lastDim as lastDimOf, matmulShape, ropePlan, sameShape } from './shapes.js';
import { Tensor } from './tensor.js';

type F32 = Tensor<'f32'>;

function f32(t: unknown, name: string): F32 {
  if (!(t instanceof Tensor)) fail('ERR_TYPE', `${name} must be a Tensor`);
  if (t.dtype !== 'f32') fail('ERR_DTYPE', `${name} must be an f32 tensor, got ${t.dtype}`);
  return t as F32;
}

function lastDim(t: F32, name: string): { rows: number; n: number } {
  return lastDimOf(t.shape, name);
}

export interface MatmulOptions {
  /** B is stored [N, K] (a weight matrix, as in GGUF and safetensors): computes A x B^T. */
  transposeB?: boolean;
  /** Added to every row after the product: bias[N]. */
  bias?: F32;
  /** Writes the result here (shape [..., N], f32) instead of a new tensor: no allocation per call. */
  out?: F32;
}

function matmulPlan(a: F32, b: F32, opts: MatmulOptions) {
  f32(a, 'a');
  f32(b, 'b');
  const nk = opts.transposeB === true;
  if (opts.bias !== undefined) f32(opts.bias, 'bias');
  const { M, N, K, out: shape } = matmulShape(a.shape, b.shape, nk, opts.bias?.shape);
  let out: F32;
  if (opts.out !== undefined) {
    out = f32(opts.out, 'out');
    if (!sameShape(out.shape, shape))
      fail('ERR_SHAPE', `matmul: out must have shape [${shape.join(', ')}], got [${out.shape.join(', ')}]`);
  } else {
    out = Tensor.zeros(shape);
  }
  return { M, N, K, nk, out, bias: opts.bias?.data ?? null };
}

/**
 * C = A x B (or A x B^T with transposeB), K summed in canonical chunks of 256.
 * A may have leading batch dimensions: [..., K] x [K, N] -> [..., N].
 *
 * @example
 * const c = await matmul(seeded([8, 512], 1n), seeded([512, 64], 1n, 1));
 */
export async function matmul(a: F32, b: F32, opts: MatmulOptions = {}): Promise<F32> {
  const p = matmulPlan(a, b, opts);
  await native.gemm(a.data, b.data, p.out.data, p.M, p.N, p.K, p.nk, p.bias, true);
  return p.out;
}

export function matmulSync(a: F32, b: F32, opts: MatmulOptions = {}): F32 {
  const p = matmulPlan(a, b, opts);
  native.gemm(a.data, b.data, p.out.data, p.M, p.N, p.K, p.nk, p.bias, false);
  return p.out;
}

function binary(op: number, a: F32, b: F32, name: string): F32 {
  f32(a, 'a');
  f32(b, 'b');
  const out = Tensor.zeros(a.shape);
  if (sameShape(a.shape, b.shape)) {
    native.binary(op, a.data, b.data, out.data);
    return out;
  }
  const { rows, n } = lastDim(a, 'a');
  if (b.rank === 1 && b.size === n) {
    native.rowsBinary(op, a.data, rows, n, b.data, out.data);
    return out;
  }
  fail('ERR_SHAPE', `${name}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] are neither equal nor a row broadcast`);
}

/** Elementwise a + b; b may also be one row [n] broadcast over a [..., n]. */
export function add(a: F32, b: F32): F32 {
  return binary(0, a, b, 'add');
}

/** Elementwise a * b; b may also be one row [n] broadcast over a [..., n]. */
export function mul(a: F32, b: F32): F32 {
  return binary(1, a, b, 'mul');
}

/** Sum of all elements with the spec's 32-lane order (section 4). */
export function sum(x: F32): number {
  f32(x, 'x');
  const out = new Float32Array(1);
  native.rowSums(x.data, 1, x.size, out);
  return out[0];
}

/** Per-row sums over the last dimension: [..., n] -> [...]. */
export function rowSums(x: F32): F32 {
  const { rows, n } = lastDim(f32(x, 'x'), 'x');
  const out = Tensor.zeros(x.shape.slice(0, -1));
  native.rowSums(x.data, rows, n, out.data);
  return out;
}

/** RMSNorm over the last dimension: y = (x * (1 / sqrt(sumsq / n + eps))) * w. */
export function rmsnorm(x: F32, weight: F32, eps = 1e-5): F32 {
  const { rows, n } = lastDim(f32(x, 'x'), 'x');
  f32(weight, 'weight');
  if (weight.rank !== 1 || weight.size !== n) fail('ERR_SHAPE', `rmsnorm: weight must have shape [${n}], got [${weight.shape.join(', ')}]`);
  if (!Number.isFinite(eps) || eps < 0) fail('ERR_RANGE', 'rmsnorm: eps must be a finite non-negative number');
  const out = Tensor.zeros(x.shape);
  native.rmsnorm(x.data, weight.data, out.data, rows, n, eps);
  return out;
}

/** Softmax over the last dimension, with the canonical exp and 32-lane sum. */
export function softmax(x: F32): F32 {
  const { rows, n } = lastDim(f32(x, 'x'), 'x');
  const out = Tensor.zeros(x.shape);
  native.softmax(x.data, out.data, rows, n);
  return out;
}

const UNARY = { exp: 0, log: 1, tanh: 2, sin: 3, cos: 4, silu: 5, gelu: 6 } as const;
export type UnaryOp = keyof typeof UNARY;

/** Applies a canonical elementwise function (correctly rounded exp, log, tanh, sin, cos; silu; gelu). */
export function unary(op: UnaryOp, x: F32): F32 {
  if (!(op in UNARY)) fail('ERR_RANGE', `unknown elementwise op '${String(op)}'`);
  f32(x, 'x');
  const out = Tensor.zeros(x.shape);
  native.unary(UNARY[op], x.data, out.data);
  return out;
}

export const exp = (x: F32): F32 => unary('exp', x);
export const log = (x: F32): F32 => unary('log', x);
export const tanh = (x: F32): F32 => unary('tanh', x);
export const sin = (x: F32): F32 => unary('sin', x);
export const cos = (x: F32): F32 => unary('cos', x);
export const silu = (x: F32): F32 => unary('silu', x);
/** GELU, tanh approximation, in the op order of docs/canonical-arithmetic.md. */
export const gelu = (x: F32): F32 => unary('gelu', x);

function int32s(values: Int32Array | readonly number[] | Tensor, name: string): Int32Array {
  if (values instanceof Tensor) {
    if (values.dtype !== 'i32' && values.dtype !== 'u32') fail('ERR_DTYPE', `${name} must be an i32 tensor`);
    return values.dtype === 'i32' ? (values.data as Int32Array) : Int32Array.from(values.data as Uint32Array);
  }
  return int32Array(values, name);
}

export interface RopeOptions {
  /** Base of the frequencies (GGUF rope.freq_base); 10000 by default. */
  theta?: number;
  /** How many leading dimensions of each head rotate; all by default. */
  rotDims?: number;
  /** Pairs (i, i + rot/2) as in Hugging Face / NeoX, instead of (2i, 2i + 1) as in GGUF llama. */
  neox?: boolean;
  /** RoPE scaling: rotDims/2 divisors of the inverse frequencies (each finite and >= 1), e.g. all
   *  4 for linear scaling by 4, or a GGUF rope_freqs tensor; none by default. */
  freqDivisors?: Float32Array | readonly number[] | null;
}

/** Rotary position embedding of x [tokens, heads, headDim] at the given positions. */
export function rope(x: F32, positions: Int32Array | readonly number[], opts: RopeOptions = {}): F32 {
  f32(x, 'x');
  const { tokens, heads, headDim, rot, theta, pos, div } = ropePlan(x.shape, positions, opts);
  const out = new Tensor('f32', x.shape, Float32Array.from(x.data));
  native.rope(out.data, tokens, heads, headDim, rot, pos, theta, opts.neox === true, div);
  return out;
}

function attentionPlan(q: F32, k: F32, v: F32, positions: Int32Array | readonly number[]) {
  for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) f32(t, name);
  const { nQ, nHeads, headDim, nKv, nKvHeads, pos } = attentionShape(q.shape, k.shape, v.shape, positions);
  return { nQ, nHeads, headDim, nKv, nKvHeads, pos, out: Tensor.zeros(q.shape) };
}

/**
 * Causal grouped-query attention. q [T, H, D], k and v [S, G, D] (key j at position j), query i
 * sees keys 0..positions[i]. Rows are independent: prefill and decode give the same bytes.
 */
export async function attention(q: F32, k: F32, v: F32, positions: Int32Array | readonly number[]): Promise<F32> {
  const p = attentionPlan(q, k, v, positions);
  await native.attention(q.data, p.nQ, p.nHeads, k.data, v.data, p.nKv, p.nKvHeads, p.headDim, p.pos, p.out.data, true);
  return p.out;
}

export function attentionSync(q: F32, k: F32, v: F32, positions: Int32Array | readonly number[]): F32 {
  const p = attentionPlan(q, k, v, positions);
  native.attention(q.data, p.nQ, p.nHeads, k.data, v.data, p.nKv, p.nKvHeads, p.headDim, p.pos, p.out.data, false);
  return p.out;
}

/** Gathers rows of table [vocab, dim] for each id: [n, dim]. */
export function embedding(table: F32, ids: Int32Array | readonly number[] | Tensor): F32 {
  f32(table, 'table');
  if (table.rank !== 2) fail('ERR_SHAPE', `embedding: table must be [vocab, dim], got [${table.shape.join(', ')}]`);
  const idx = int32s(ids, 'ids');
  const out = Tensor.zeros([idx.length, table.shape[1]]);
  native.embedding(table.data, table.shape[0], table.shape[1], idx, out.data);
  return out;
}

/** Index of the maximum over the last dimension (lowest index on ties; NaN never wins). */
export function argmax(x: F32): Tensor<'i32'> {
  const { rows, n } = lastDim(f32(x, 'x'), 'x');
  if (n === 0) fail('ERR_SHAPE', 'argmax: rows are empty');
  const out = Tensor.zeros(x.shape.slice(0, -1), 'i32');
  native.argmax(x.data, rows, n, out.data);
  return out;
}
