/** The native kernels against an independent, bit-exact TypeScript reading of the spec. */
import { describe, expect, it } from 'vitest';
import { Tensor, info, matmulSync, rmsnorm, seeded, sum } from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { acrossConfigurations } from './helpers.js';
import { fmaF32, gemmRef, laneSum, rmsnormRef } from './reference.js';

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

/**
 * Runs fn and says whether it split its work across the thread pool (native poolStats). Small
 * shapes stay on one thread by design (a GEMM below 2^18 multiply-adds, native/cpu/gemm.cc
 * useful_threads; a row kernel below 2^15 element operations per task, rows.cc kTaskWork), so a
 * claim about thread counts needs shapes above those thresholds, checked here, not assumed.
 */
function splitting<T>(fn: () => T): { value: T; split: boolean } {
  const before = native.poolStats().parallelCalls;
  const value = fn();
  return { value, split: native.poolStats().parallelCalls > before };
}

/** Across every configuration: the distinct results, and whether every multi-threaded one split its work. */
async function acrossConfigurationsSplit(fn: () => string) {
  const splits: boolean[] = [];
  const seen = await acrossConfigurations(() => {
    const r = splitting(fn);
    if (info().threads > 1) splits.push(r.split);
    return r.value;
  });
  return { seen, splits };
}

describe('fma emulation sanity', () => {
  it('rounds once', () => {
    const e = 2 ** -23;
    // (1 + e)(1 - e) = 1 - 2^-46 exactly, which rounds to 1.
    expect(fmaF32(1 + e, 1 - e, 0)).toBe(1);
    // With c = -1 the tiny remainder survives: -2^-46 exactly.
    expect(fmaF32(1 + e, 1 - e, -1)).toBe(-(2 ** -46));
    expect(Object.is(fmaF32(-0, 1, 0), 0)).toBe(true);
    expect(Object.is(fmaF32(-0, 1, -0), -0)).toBe(true);
    expect(fmaF32(2 ** -100, 2 ** -60, 0)).toBe(2 ** -149 * Math.round(2 ** -160 / 2 ** -149));
  });
});

describe('GEMM equals the spec bit for bit, on every ISA path and thread count', () => {
  it.each([
    [3, 700, 5, false], [2, 256, 3, true], [4, 257, 17, false], [1, 1000, 33, true], [5, 1, 2, false], [2, 513, 4, true],
  ] as const)('m=%i k=%i n=%i nk=%s', async (m, k, n, nk) => {
    const A = seeded([m, k], 41n), B = nk ? seeded([n, k], 41n, 1) : seeded([k, n], 41n, 1);
    const bias = seeded([n], 41n, 2);
    const want = bits(gemmRef(A.data, B.data, m, k, n, nk, bias.data));
    const seen = await acrossConfigurations(() => bits(matmulSync(A, B, { transposeB: nk, bias }).data));
    expect([...seen.keys()]).toEqual([JSON.stringify(want)]);
  });

  // At 2^18 multiply-adds: the blocked kernel split over N and M, and the GEMV kernel (m <= 4,
  // B as [n, k]) split over column groups. The reference costs ~4 s a shape (exact BigInt FMAs).
  it.each([[4, 512, 128, false], [2, 1024, 128, true]] as const)('above the threading threshold: m=%i k=%i n=%i nk=%s runs split across threads', async (m, k, n, nk) => {
    const A = seeded([m, k], 44n), B = nk ? seeded([n, k], 44n, 1) : seeded([k, n], 44n, 1);
    const bias = seeded([n], 44n, 2);
    const want = bits(gemmRef(A.data, B.data, m, k, n, nk, bias.data));
    const { seen, splits } = await acrossConfigurationsSplit(() => bits(matmulSync(A, B, { transposeB: nk, bias }).data));
    expect([...seen.keys()]).toEqual([JSON.stringify(want)]);
    expect(splits.length).toBeGreaterThan(0);
    expect(splits.every(Boolean), `split per multi-threaded configuration: ${splits}`).toBe(true);
  });

  it('signed zeros follow the spec: a chunk of -0 products still sums to +0', () => {
    const A = Tensor.f32([1, 3], [-0, -1, 0]), B = Tensor.f32([3, 1], [1, 0, -1]);
    const c = matmulSync(A, B);
    expect(Object.is(c.data[0], 0)).toBe(true);
    expect(bits(c.data)).toBe(bits(gemmRef(A.data, B.data, 1, 3, 1, false)));
  });
});

describe('reductions and RMSNorm equal the spec bit for bit', () => {
  it('32-lane sums', async () => {
    for (const n of [1, 31, 32, 33, 1000, 4099]) {
      const x = seeded([n], 42n);
      const seen = await acrossConfigurations(() => sum(x));
      expect([...seen.keys()]).toEqual([JSON.stringify(laneSum(x.data))]);
    }
  });

  it('rmsnorm', async () => {
    const x = seeded([3, 1025], 43n), w = seeded([1025], 43n, 1);
    const want = bits(rmsnormRef(x.data, w.data, 3, 1025, 1e-5));
    const seen = await acrossConfigurations(() => bits(rmsnorm(x, w, 1e-5).data));
    expect([...seen.keys()]).toEqual([JSON.stringify(want)]);
  });

  it('rmsnorm above the threading threshold (64 rows of 1025: 3 tasks) runs split across threads', async () => {
    const x = seeded([64, 1025], 45n), w = seeded([1025], 45n, 1);
    const want = bits(rmsnormRef(x.data, w.data, 64, 1025, 1e-5));
    const { seen, splits } = await acrossConfigurationsSplit(() => bits(rmsnorm(x, w, 1e-5).data));
    expect([...seen.keys()]).toEqual([JSON.stringify(want)]);
    expect(splits.length).toBeGreaterThan(0);
    expect(splits.every(Boolean), `split per multi-threaded configuration: ${splits}`).toBe(true);
  });

  it('a shape below the threshold never reaches the pool (why the shapes above are needed)', async () => {
    const A = seeded([3, 700], 41n), B = seeded([700, 5], 41n, 1);
    const { splits } = await acrossConfigurationsSplit(() => bits(matmulSync(A, B).data));
    expect(splits.length).toBeGreaterThan(0);
    expect(splits.some(Boolean)).toBe(false);
  });
});
