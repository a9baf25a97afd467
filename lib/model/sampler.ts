/**
 * Canonical token sampling (docs/canonical-arithmetic.md, "Sampling"). Given the same logits and
 * the same (seed, step), every node picks the same token:
 *
 *  1. greedy when temperature <= 0 or topK = 1: the largest logit, ties to the lower token id;
 *  2. z_i = f32(logit_i / temperature); candidates sorted by z descending, ties by lower id
 *     (NaN logits are never candidates);
 *  3. top-k keeps the first k (k <= 0: all);
 *  4. p_i = exp_f32(f32(z_i - z_0)) with the canonical exp; c_i = f32(c_{i-1} + p_i) in sorted
 *     order from c_{-1} = +0;
 *  5. top-p (0 < p < 1) keeps the shortest prefix with c_i >= f32(p * c_last) (at least one);
 *  6. u = Philox4x32-10(key = seed, counter = (step lo, step hi, SAMPLING_STREAM, 0)) word 0,
 *     u = (w >> 8) * 2^-24; t = f32(u * c_kept); the token is the first kept i with c_i > t
 *     (the last kept one if rounding leaves none).
 */
import { fail } from '../engine/errors.js';
import { native } from '../engine/native.js';
import { checkSampling, type SamplingParams } from '../engine/sampling.js';

export { checkSampling, type SamplingParams };

/** The Philox stream of sampling draws ("samp"), apart from the seeded test tensors' streams. */
export const SAMPLING_STREAM = 0x73616d70;

/** The uniform draw in [0, 1) of (seed, step): 24 bits of Philox, exact in f32. */
export function samplingUniform(seed: bigint, step: number): number {
  const ctr = new Uint32Array([step >>> 0, Math.floor(step / 2 ** 32) >>> 0, SAMPLING_STREAM, 0]);
  const key = new Uint32Array([Number(seed & 0xffffffffn), Number((seed >> 32n) & 0xffffffffn)]);
  const w = native.philox(ctr, key)[0];
  return (w >>> 8) * 2 ** -24;
}

/** Greedy choice: the largest value, ties to the lower index, NaN skipped (-1 when all NaN). */
export function argmaxLowest(x: Float32Array): number {
  let best = -1, bv = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > bv || (best < 0 && v === -Infinity)) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** The candidates that survive temperature, top-k and top-p, with their cumulative masses. */
export function candidates(logits: Float32Array, params: SamplingParams): { ids: Int32Array; cumulative: Float32Array } {
  const { temperature, topK, topP } = checkSampling(params);
  const f = Math.fround;
  const z = new Float32Array(logits.length);
  const order: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    z[i] = f(logits[i] / f(temperature));
    if (!Number.isNaN(z[i])) order.push(i);
  }
  if (order.length === 0) fail('ERR_RANGE', 'every logit is NaN');
  order.sort((a, b) => (z[b] - z[a]) || (a - b) || 0);
  // z[b] - z[a] is NaN for +inf vs +inf: the `|| (a - b)` fallback then orders by id.
  const kept = topK > 0 ? Math.min(topK, order.length) : order.length;
  const shifted = new Float32Array(kept);
  const top = z[order[0]];
  for (let i = 0; i < kept; i++) shifted[i] = f(z[order[i]] - top);
  const p = new Float32Array(kept);
  native.unary(0, shifted, p);   // the canonical exp_f32
  const c = new Float32Array(kept);
  let acc = 0;
  for (let i = 0; i < kept; i++) c[i] = acc = f(acc + p[i]);
  let n = kept;
  if (topP < 1) {
    const cut = f(f(topP) * c[kept - 1]);
    n = 1;
    while (n < kept && c[n - 1] < cut) n++;
  }
  return { ids: Int32Array.from(order.slice(0, n)), cumulative: c.subarray(0, n) };
}

/**
 * Picks the next token of a request: step is the index of the token being generated.
 *
 * Runs the addon's sampler (native/canon/sample.h, the code the CUDA kernel runs too), which
 * test/sampler-native.test.ts proves gives sampleReference's token on thousands of rows
 * (ties, NaN, infinities, subnormals, every parameter edge) and is faster at V = 128k: about
 * 7x without top-k (a full sort), over 100x with top-k 40 (a partial sort).
 *
 * @example
 * const tok = sample(logits, { temperature: 0.8, topK: 40, topP: 0.95 }, 42n, 0);
 */
export function sample(logits: Float32Array, params: SamplingParams, seed: bigint, step: number): number {
  const { temperature, topK, topP } = checkSampling(params);
  // The native path takes the draw's (seed, step) as u64s: the reference reads a bigint seed
  // through its low 64 bits and step through lo32/hi32 of a non-negative integer.
  if (typeof seed === 'bigint' && Number.isSafeInteger(step) && step >= 0 && logits instanceof Float32Array)
    return native.sample(logits, temperature, topK, topP, BigInt.asUintN(64, seed), step);
  return sampleReference(logits, params, seed, step);
}

/** The TypeScript reference of sample() (the spec's steps one by one). */
export function sampleReference(logits: Float32Array, params: SamplingParams, seed: bigint, step: number): number {
  const { temperature, topK } = checkSampling(params);
  if (temperature <= 0 || topK === 1) {
    const t = argmaxLowest(logits);
    if (t < 0) fail('ERR_RANGE', 'every logit is NaN');
    return t;
  }
  const { ids, cumulative } = candidates(logits, params);
  const total = cumulative[cumulative.length - 1];
  const t = Math.fround(samplingUniform(seed, step) * total);
  for (let i = 0; i < ids.length; i++) if (cumulative[i] > t) return ids[i];
  return ids[ids.length - 1];
}
