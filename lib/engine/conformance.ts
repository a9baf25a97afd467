/**
 * The conformance cases: each builds its inputs from the spec's seeded tensors and runs one
 * kernel, so two implementations can compare result digests. Shared by `atoma conform` and the
 * tests. Inputs: A = seeded([m,k], seed, 0), B = seeded([k,n], seed, 1), x = seeded(shape, seed, 0),
 * w = seeded([n], seed, 1).
 */
import { native } from './native.js';
import { fail } from './errors.js';
import * as ops from './ops.js';
import { Tensor, seeded } from './tensor.js';

export type CaseArgs = Record<string, string | boolean | undefined>;

interface ConformCase {
  usage: string;
  run(a: CaseArgs): Promise<Tensor>;
}

function int(a: CaseArgs, name: string, fallback?: number): number {
  const v = a[name];
  if (v === undefined || v === true || v === false) {
    if (fallback !== undefined) return fallback;
    fail('ERR_USAGE', `missing --${name}`);
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) fail('ERR_USAGE', `--${name} must be a non-negative integer, got '${v}'`);
  return n;
}

function num(a: CaseArgs, name: string, fallback: number): number {
  const v = a[name];
  if (v === undefined || typeof v === 'boolean') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) fail('ERR_USAGE', `--${name} must be a number, got '${v}'`);
  return n;
}

function seedOf(a: CaseArgs): bigint {
  const v = a.seed;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) fail('ERR_USAGE', '--seed must be a non-negative integer');
  const s = BigInt(v);
  if (s >= 1n << 64n) fail('ERR_USAGE', '--seed must fit in 64 bits');
  return s;
}

function rowsN(a: CaseArgs): [number, number] {
  return [int(a, 'rows', 1), int(a, 'n')];
}

/** x scaled by --scale (default 1), for functions whose interesting range is wider than [-1, 1). */
function scaled(shape: number[], seed: bigint, scale: number): Tensor<'f32'> {
  const x = seeded(shape, seed, 0);
  if (scale !== 1) for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] * scale);
  return x;
}

function positions(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

const unaryCase = (op: ops.UnaryOp): ConformCase => ({
  usage: `--rows R --n N --seed S [--scale X]   y = ${op}(x * X)`,
  run: async (a) => ops.unary(op, scaled(rowsN(a), seedOf(a), num(a, 'scale', 1))),
});

export const CASES: Record<string, ConformCase> = {
  seeded: {
    usage: '--shape R,C,... --seed S [--stream T]   the seeded tensor itself',
    run: async (a) => {
      const shape = String(a.shape ?? '').split(',').filter((s) => s !== '').map((s) => Number(s));
      if (shape.length === 0 || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail('ERR_USAGE', '--shape must be a comma-separated list of sizes');
      return seeded(shape, seedOf(a), int(a, 'stream', 0));
    },
  },
  gemm: {
    usage: '--m M --k K --n N --seed S [--nk] [--bias]   C = A B (--nk: A W^T, W = seeded([n,k], seed, 1)); bias = seeded([n], seed, 2)',
    run: async (a) => {
      const [m, k, n, seed] = [int(a, 'm'), int(a, 'k'), int(a, 'n'), seedOf(a)];
      const nk = a.nk === true;
      const A = seeded([m, k], seed, 0);
      const B = nk ? seeded([n, k], seed, 1) : seeded([k, n], seed, 1);
      return ops.matmul(A, B, { transposeB: nk, bias: a.bias === true ? seeded([n], seed, 2) : undefined });
    },
  },
  sum: {
    usage: '--n N --seed S   shape [1]: the 32-lane sum of x',
    run: async (a) => Tensor.f32([1], [ops.sum(seeded([int(a, 'n')], seedOf(a), 0))]),
  },
  rmsnorm: {
    usage: '--rows R --n N --seed S [--eps E]   eps 1e-5 by default',
    run: async (a) => {
      const [rows, n] = rowsN(a);
      const seed = seedOf(a);
      return ops.rmsnorm(seeded([rows, n], seed, 0), seeded([n], seed, 1), num(a, 'eps', 1e-5));
    },
  },
  softmax: { usage: '--rows R --n N --seed S [--scale X]', run: async (a) => ops.softmax(scaled(rowsN(a), seedOf(a), num(a, 'scale', 1))) },
  add: {
    usage: '--rows R --n N --seed S   x + seeded([rows,n], seed, 1)',
    run: async (a) => ops.add(seeded(rowsN(a), seedOf(a), 0), seeded(rowsN(a), seedOf(a), 1)),
  },
  mul: {
    usage: '--rows R --n N --seed S   x * seeded([rows,n], seed, 1)',
    run: async (a) => ops.mul(seeded(rowsN(a), seedOf(a), 0), seeded(rowsN(a), seedOf(a), 1)),
  },
  exp: unaryCase('exp'),
  log: unaryCase('log'),
  tanh: unaryCase('tanh'),
  sin: unaryCase('sin'),
  cos: unaryCase('cos'),
  silu: unaryCase('silu'),
  gelu: unaryCase('gelu'),
  rope: {
    usage: '--tokens T --heads H --dim D --seed S [--theta 10000] [--rot D] [--neox] [--start P]   positions P..P+T-1',
    run: async (a) => {
      const [t, h, d] = [int(a, 'tokens'), int(a, 'heads'), int(a, 'dim')];
      const start = int(a, 'start', 0);
      const pos = positions(t).map((p) => p + start);
      return ops.rope(seeded([t, h, d], seedOf(a), 0), pos, { theta: num(a, 'theta', 10000), rotDims: int(a, 'rot', d), neox: a.neox === true });
    },
  },
  attention: {
    usage: '--tokens T --heads H --kv-heads G --dim D --seed S   q = seeded([T,H,D], seed, 0), k, v = streams 1, 2; causal',
    run: async (a) => {
      const [t, h, g, d, seed] = [int(a, 'tokens'), int(a, 'heads'), int(a, 'kv-heads'), int(a, 'dim'), seedOf(a)];
      return ops.attention(seeded([t, h, d], seed, 0), seeded([t, g, d], seed, 1), seeded([t, g, d], seed, 2), positions(t));
    },
  },
  embedding: {
    usage: '--vocab V --dim D --n N --seed S   ids[i] = (Philox word(seed, stream 1, i) >> 8) mod V',
    run: async (a) => {
      const [vocab, dim, n, seed] = [int(a, 'vocab'), int(a, 'dim'), int(a, 'n'), seedOf(a)];
      if (vocab === 0) fail('ERR_USAGE', '--vocab must be at least 1');
      const ids = new Int32Array(n);
      const u = new Float32Array(n);
      native.seededFill(u, seed, 1, 0);
      // (u + 1) / 2 is the 24-bit uniform exactly; scaling by 2^24 recovers the integer.
      for (let i = 0; i < n; i++) ids[i] = (((u[i] + 1) / 2) * 16777216) % vocab;
      return ops.embedding(seeded([vocab, dim], seed, 0), ids);
    },
  },
  argmax: { usage: '--rows R --n N --seed S   i32 [rows]', run: async (a) => ops.argmax(seeded(rowsN(a), seedOf(a), 0)) },
};

export async function runCase(op: string, args: CaseArgs): Promise<Tensor> {
  const c = CASES[op];
  if (!c) fail('ERR_USAGE', `unknown conformance op '${op}' (one of: ${Object.keys(CASES).join(', ')})`);
  return c.run(args);
}
