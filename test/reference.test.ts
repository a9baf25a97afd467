/** The native kernels against an independent, bit-exact TypeScript reading of the spec. */
import { describe, expect, it } from 'vitest';
import { Tensor, matmulSync, rmsnorm, seeded, sum } from '../lib/index.js';
import { acrossConfigurations } from './helpers.js';
import { fmaF32, gemmRef, laneSum, rmsnormRef } from './reference.js';

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

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
});
