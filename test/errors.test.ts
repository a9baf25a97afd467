/** Bad input gets an AtomaError with a code, and the process keeps running. */
import { describe, expect, it } from 'vitest';
import { native } from '../lib/engine/native.js';
import { AtomaError, Tensor, attention, configure, embedding, matmul, matmulSync, rmsnorm, rope, seeded, softmax, argmax } from '../lib/index.js';
import { runCli } from './helpers.js';

const code = (c: string) => expect.objectContaining({ name: 'AtomaError', code: c });

describe('typed errors from the library', () => {
  it('shape mismatches', async () => {
    await expect(matmul(seeded([2, 3], 1n), seeded([4, 5], 1n))).rejects.toThrow(code('ERR_SHAPE'));
    expect(() => matmulSync(seeded([2, 3], 1n), seeded([3, 5], 1n), { bias: seeded([4], 1n) })).toThrow(code('ERR_SHAPE'));
    expect(() => matmulSync(seeded([2, 3], 1n), seeded([3, 5], 1n), { out: Tensor.zeros([5, 2]) })).toThrow(code('ERR_SHAPE'));
    const a = seeded([4, 4], 1n);
    expect(() => matmulSync(a, seeded([4, 4], 1n), { out: a })).toThrow(code('ERR_ALIAS'));
    expect(() => rmsnorm(seeded([2, 8], 1n), seeded([7], 1n))).toThrow(code('ERR_SHAPE'));
    expect(() => new Tensor('f32', [2, 2], new Float32Array(5))).toThrow(code('ERR_SHAPE'));
    expect(() => Tensor.zeros([2, -1])).toThrow(code('ERR_SHAPE'));
    expect(() => rope(seeded([2, 1, 8], 1n), [0])).toThrow(code('ERR_SHAPE'));
    await expect(attention(seeded([1, 3, 8], 1n), seeded([2, 2, 8], 1n), seeded([2, 2, 8], 1n), [0])).rejects.toThrow(code('ERR_SHAPE'));
  });

  it('wrong and unknown dtypes', async () => {
    const ints = Tensor.zeros([2, 2], 'i32');
    await expect(matmul(ints as never, seeded([2, 2], 1n))).rejects.toThrow(code('ERR_DTYPE'));
    expect(() => new Tensor('f32', [2], new Int32Array(2) as never)).toThrow(code('ERR_DTYPE'));
    expect(() => Tensor.zeros([2], 'f64' as never)).toThrow(code('ERR_DTYPE'));
    expect(() => softmax(Tensor.zeros([2], 'bf16') as never)).toThrow(code('ERR_DTYPE'));
  });

  it('size overflow', () => {
    expect(() => Tensor.zeros([1 << 20, 1 << 20, 1 << 20])).toThrow(code('ERR_SIZE'));
    expect(() => native.gemm(new Float32Array(4), new Float32Array(4), new Float32Array(4), 2 ** 40, 2 ** 40, 2 ** 40, false, null, false)).toThrow(code('ERR_SIZE'));
  });

  it('freed (disposed) and detached buffers', async () => {
    const a = seeded([2, 2], 1n);
    a.dispose();
    await expect(matmul(a, seeded([2, 2], 1n))).rejects.toThrow(code('ERR_DISPOSED'));
    const b = seeded([2, 2], 1n);
    structuredClone(b.data.buffer, { transfer: [b.data.buffer] });
    expect(() => softmax(b)).toThrow(code('ERR_DETACHED'));
    const raw = new Float32Array(4);
    structuredClone(raw.buffer, { transfer: [raw.buffer] });
    expect(() => native.softmax(raw, new Float32Array(4), 2, 2)).toThrow(code('ERR_DETACHED'));
  });

  it('the native layer checks what JavaScript hands it', () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => native.gemm(f(6), f(6), f(3), 2, 2, 3, false, null, false)).toThrow(code('ERR_SHAPE'));
    expect(() => native.gemm(new Int32Array(6) as never, f(6), f(4), 2, 2, 3, false, null, false)).toThrow(code('ERR_DTYPE'));
    const shared = f(16);
    expect(() => native.gemm(shared, f(16), shared, 4, 4, 4, false, null, false)).toThrow(code('ERR_ALIAS'));
    expect(() => native.gemm(f(4), f(4), f(4), -1 as never, 2, 2, false, null, false)).toThrow(code('ERR_SHAPE'));
    expect(() => native.gemm(f(4), f(4), f(4), 1.5, 2, 2, false, null, false)).toThrow(code('ERR_SHAPE'));
    expect(() => native.unary(99, f(2), f(2))).toThrow(code('ERR_RANGE'));
    expect(() => native.tensorDigest(9, [1], f(1))).toThrow(code('ERR_DTYPE'));
    expect(() => native.tensorDigest(1, [3], f(2))).toThrow(code('ERR_SHAPE'));
  });

  it('out-of-range indices', async () => {
    await expect(attention(seeded([1, 2, 8], 1n), seeded([3, 1, 8], 1n), seeded([3, 1, 8], 1n), [3])).rejects.toThrow(code('ERR_RANGE'));
    expect(() => embedding(seeded([10, 4], 1n), [2, 10])).toThrow(code('ERR_RANGE'));
    expect(() => embedding(seeded([10, 4], 1n), [-1])).toThrow(code('ERR_RANGE'));
    expect(() => rope(seeded([1, 1, 8], 1n), [2 ** 24 + 1])).toThrow(code('ERR_RANGE'));
    expect(() => rope(seeded([1, 1, 8], 1n), [-3])).toThrow(code('ERR_RANGE'));
    expect(() => argmax(Tensor.zeros([3, 0]))).toThrow(code('ERR_SHAPE'));
  });

  it('ISA and thread configuration', () => {
    expect(() => configure({ isa: 'sse9' as never })).toThrow(code('ERR_UNKNOWN_ISA'));
    expect(() => configure({ threads: 0 })).toThrow(code('ERR_BAD_THREADS'));
    expect(() => configure({ threads: 2.5 })).toThrow(code('ERR_BAD_THREADS'));
  });

  it('errors are AtomaError instances, and the process still computes afterwards', async () => {
    try {
      matmulSync(seeded([2, 3], 1n), seeded([4, 5], 1n));
    } catch (e) {
      expect(e).toBeInstanceOf(AtomaError);
    }
    expect((await matmul(seeded([2, 3], 1n), seeded([3, 5], 1n))).shape).toEqual([2, 5]);
  });
});

describe('typed errors at the command line', () => {
  it('an unknown ISA is a clear error, not a crash', () => {
    const r = runCli(['info', '--json'], { ATOMA_ISA: 'sse9' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('unknown ISA');
    expect(r.stderr).toContain('ERR_UNKNOWN_ISA');
  });
  it('bad ATOMA_THREADS is a clear error', () => {
    const r = runCli(['info'], { ATOMA_THREADS: 'lots' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ATOMA_THREADS');
  });
  it('usage errors exit 2', () => {
    expect(runCli(['conform', 'gemm', '--m', 'x', '--k', '1', '--n', '1', '--seed', '1']).status).toBe(2);
    expect(runCli(['conform', 'nope']).status).toBe(2);
    expect(runCli(['frobnicate']).status).toBe(2);
  });
});
