/**
 * The native sampler (native/canon/sample.h through the addon's `sample` binding; the CUDA
 * kernel runs the same header) against the TypeScript reference lib/model/sampler.ts: the exact
 * same token for thousands of seeded rows with ties, NaN, +-inf, -0 and subnormals, over
 * temperatures (incl. ones whose f32 is 0 or that overflow z), top-k and top-p.
 */
import { describe, expect, it } from 'vitest';
import { AtomaError, seeded } from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { sample as routed, sampleReference as sample } from '../lib/model/sampler.js';

type NativeSample = (logits: Float32Array, temperature: number, topK: number, topP: number, seed: bigint, step: number) => number;
const nativeSample = (native as unknown as { sample: NativeSample }).sample;

const TEMPS = [0, 1, 0.7, 2.5, 1e-3, 1e-30, 1e-50, 3e38, Number.MIN_VALUE];
const TOPP = [1, 0.9, 0.5, 0.95, 1e-9, 0.999999999, 0.99999999999];

/** A row of n logits of one of several kinds, all derived from seeded Philox values. */
function row(n: number, seed: bigint, kind: number): Float32Array {
  const u = seeded([Math.max(n, 1)], seed).data as Float32Array;
  const w = seeded([Math.max(n, 1)], seed + 1000n).data as Float32Array;
  const x = new Float32Array(n);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((w[i] + 1) * 8);   // 0..15
    if (kind === 0) x[i] = u[i] * 8;
    else if (kind === 1) x[i] = Math.trunc(u[i] * 4);   // many ties, -0 among them
    else if (kind === 2) x[i] = u[i] * 1e-40;   // subnormal logits
    else {
      switch (r) {
        case 0: x[i] = NaN; break;
        case 1: x[i] = -Infinity; break;
        case 2: x[i] = u[i] > 0 ? Infinity : -0; break;
        case 3: u32[0] = 1 + Math.floor((u[i] + 1) * 2 ** 21); x[i] = f32[0]; break;
        case 4: x[i] = 0; break;
        case 5: x[i] = u[i] * 1e30; break;
        default: x[i] = u[i] * 30;
      }
    }
  }
  return x;
}

function outcome(fn: () => number): number | string {
  try {
    return fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    return (e as AtomaError).code;
  }
}

describe('native sampler == lib/model/sampler.ts', () => {
  it('the same token for thousands of rows, parameters and draws', () => {
    let cases = 0, nonGreedy = 0, tokens = 0;
    const distinct = new Set<number | string>();
    for (let r = 0; r < 3000; r++) {
      const seed = BigInt(r) * 7919n + 3n;
      const pick = seeded([8], BigInt(r) + 77n).data as Float32Array;
      const at = (i: number, m: number) => Math.floor((pick[i] + 1) / 2 * m);
      const n = [0, 1, 2, 3, 17, 100, 257, 1000, 4096][at(0, 9)];
      const x = row(n, seed, at(1, 4));
      if (r % 97 === 5) x.fill(NaN);
      if (r % 89 === 7) x.fill(-Infinity);
      const temperature = TEMPS[at(2, TEMPS.length)];
      const topK = [0, 0, 1, 2, 5, 40, 1000][at(3, 7)];
      const topP = TOPP[at(4, TOPP.length)];
      const step = [0, 1, 17, 2 ** 32 + 5, 2 ** 53 - 1][at(5, 5)];
      const params = { temperature, topK, topP };
      const want = outcome(() => sample(x, params, seed, step));
      const got = outcome(() => nativeSample(x, temperature, topK, topP, seed, step));
      expect(got, `round ${r}: n=${n} T=${temperature} k=${topK} p=${topP} step=${step}`).toBe(want);
      cases++;
      distinct.add(want);
      if (typeof want === 'number') tokens++;
      if (temperature > 0 && topK !== 1) nonGreedy++;
    }
    expect(cases).toBe(3000);
    expect(nonGreedy).toBeGreaterThan(1500);
    expect(tokens).toBeGreaterThan(2500);   // mostly real draws, not errors
    expect(distinct.size).toBeGreaterThan(300);
  });

  it('top-p and the draw over many steps of one row (distribution edges)', () => {
    const x = row(300, 5n, 0);
    for (let step = 0; step < 500; step++)
      for (const topP of [0.3, 0.9]) {
        const params = { temperature: 0.9, topK: 0, topP };
        expect(nativeSample(x, 0.9, 0, topP, 11n, step)).toBe(sample(x, params, 11n, step));
      }
  });

  it('rejects bad parameters as checkSampling does', () => {
    const x = new Float32Array([1, 2, 3]);
    for (const [t, k, p] of [[-1, 0, 1], [NaN, 0, 1], [Infinity, 0, 1], [1, -1, 1], [1, 1.5, 1], [1, 0, 0], [1, 0, 1.5], [1, 0, NaN]]) {
      expect(outcome(() => nativeSample(x, t, k, p, 0n, 0)), `${t} ${k} ${p}`).toBe('ERR_ARGUMENT');
      expect(outcome(() => sample(x, { temperature: t, topK: k, topP: p }, 0n, 0))).toBe('ERR_ARGUMENT');
    }
    expect(outcome(() => nativeSample(new Float32Array([NaN, NaN]), 1, 0, 1, 0n, 0))).toBe('ERR_RANGE');
    expect(outcome(() => nativeSample(new Float32Array(0), 0, 0, 1, 0n, 0))).toBe('ERR_RANGE');
  });

  it('sample() runs the native path with the reference token, also for seeds outside u64', () => {
    const x = row(500, 9n, 3);
    for (const seed of [0n, 42n, 2n ** 64n - 1n, 2n ** 64n + 5n, -3n])
      for (const step of [0, 3, 2 ** 40])
        expect(routed(x, { temperature: 1.1, topK: 0, topP: 0.8 }, seed, step)).toBe(sample(x, { temperature: 1.1, topK: 0, topP: 0.8 }, seed, step));
    expect(outcome(() => routed(new Float32Array([NaN]), { temperature: 1 }, 0n, 0))).toBe('ERR_RANGE');
    expect(outcome(() => routed(new Float32Array([1]), { temperature: -1 }, 0n, 0))).toBe('ERR_ARGUMENT');
  });
});
