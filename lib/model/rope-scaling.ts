/**
 * RoPE scaling: how a model stretches its rotary frequencies beyond the context it was trained on.
 * Every supported kind comes down to one f32 divisor per rotary pair, applied by the kernel as
 * `inv_freq[i] = f32(rope_inv_freq_f32(i, rotDims, theta) / divisor[i])`
 * (docs/canonical-arithmetic.md, RoPE scaling). The divisors are computed here once per model in
 * binary32 with every step written out (Math.fround after each + - * /, which is the correctly
 * rounded f32 result: a double holds more than twice f32's precision), so every node derives the
 * same bits:
 *
 *  - `linear` (GGUF `rope.scaling.type = linear`, HF `rope_type: linear`): `divisor = f32(factor)`;
 *  - `llama3` (HF `rope_type: llama3`, Llama 3.1+): divisors from each pair's wavelength, the
 *    smoothing of transformers / llama.cpp in the order of `llama3Divisors` below;
 *  - GGUF `rope_freqs.weight` (what llama.cpp's converter stores for Llama 3.x): its values are
 *    the divisors, multiplied by a linear factor when the file also has one.
 *
 * YaRN, dynamic NTK and LongRoPE are refused with ERR_MODEL_UNSUPPORTED: they would need more than
 * a divisor (YaRN also scales the attention logits), and a scaling silently ignored would give
 * wrong output that every node agrees on.
 */
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { native } from '../engine/native.js';
import { widenVector } from './linear.js';
import type { LlamaConfig, ModelWeights } from './types.js';

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number };

/** Kinds named in model files that are recognised but not implemented (refused by name). */
const UNSUPPORTED = new Set(['yarn', 'dynamic', 'longrope', 'su', 'mrope', 'default_mrope']);

const f = Math.fround;
/** f32(2 pi) = 0x40c90fdb. */
const TWO_PI_F32 = f(2 * Math.PI);

/** A finite number above `min` (or equal to it when `inclusive`), else ERR_MODEL_FORMAT naming it. */
function finite(v: unknown, name: string, what: string, min: number, inclusive: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (inclusive ? v < min : v <= min)) {
    fail('ERR_MODEL_FORMAT', `${what}: RoPE scaling ${name} ${brief(v)} must be a finite number ${inclusive ? '>=' : '>'} ${min}`);
  }
  return v;
}

/** Checks the numbers of a scaling (factor >= 1 keeps every divisor >= 1, see the kernel contract). */
export function checkRopeScaling(s: RopeScaling, what: string): RopeScaling {
  if (s.type === 'none') return s;
  if (s.type !== 'linear' && s.type !== 'llama3') fail('ERR_MODEL_UNSUPPORTED', `${what}: RoPE scaling ${brief((s as { type: unknown }).type)} is not supported`);
  finite(s.factor, 'factor', what, 1, true);
  if (s.type === 'llama3') {
    finite(s.lowFreqFactor, 'low_freq_factor', what, 0, false);
    finite(s.highFreqFactor, 'high_freq_factor', what, 0, false);
    finite(s.originalContextLength, 'original_max_position_embeddings', what, 0, false);
    if (!(f(s.highFreqFactor) > f(s.lowFreqFactor))) fail('ERR_MODEL_FORMAT', `${what}: RoPE scaling high_freq_factor ${s.highFreqFactor} must exceed low_freq_factor ${s.lowFreqFactor}`);
  }
  return s;
}

/**
 * GGUF metadata `{arch}.rope.scaling.*` as llama.cpp reads it: the type defaults to `linear`; the
 * factor comes from `rope.scaling.factor` (or the older `rope.scale_linear`), and 0 or absent
 * means 1 (no scaling); type `none` never scales.
 */
export function ggufRopeScaling(type: string | undefined, factor: number | undefined, what: string): RopeScaling {
  const t = type ?? 'linear';
  if (t === 'none') return { type: 'none' };
  if (t === 'linear') {
    if (factor === undefined || factor === 0 || factor === 1) return { type: 'none' };
    return checkRopeScaling({ type: 'linear', factor }, what);
  }
  if (UNSUPPORTED.has(t)) fail('ERR_MODEL_UNSUPPORTED', `${what}: RoPE scaling type '${t}' is not supported (supported: none, linear, and rope_freqs tensors)`);
  fail('ERR_MODEL_UNSUPPORTED', `${what}: unknown RoPE scaling type '${t}'`);
}

/** Hugging Face config.json `rope_scaling` (null or absent: none). `rope_type` wins over the older `type`. */
export function hfRopeScaling(raw: unknown, what: string): RopeScaling {
  if (raw === null || raw === undefined) return { type: 'none' };
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('ERR_MODEL_FORMAT', `${what}: rope_scaling must be an object or null`);
  const r = raw as Record<string, unknown>;
  const t = r.rope_type ?? r.type;
  if (typeof t !== 'string') fail('ERR_MODEL_FORMAT', `${what}: rope_scaling has no rope_type`);
  if (t === 'default') return { type: 'none' };
  if (t === 'linear') return checkRopeScaling({ type: 'linear', factor: r.factor as number }, what);
  if (t === 'llama3') {
    return checkRopeScaling({
      type: 'llama3', factor: r.factor as number, lowFreqFactor: r.low_freq_factor as number,
      highFreqFactor: r.high_freq_factor as number, originalContextLength: r.original_max_position_embeddings as number,
    }, what);
  }
  if (UNSUPPORTED.has(t)) fail('ERR_MODEL_UNSUPPORTED', `${what}: RoPE scaling type '${t}' is not supported (supported: linear, llama3)`);
  fail('ERR_MODEL_UNSUPPORTED', `${what}: unknown RoPE scaling type '${t}'`);
}

/**
 * The canonical inverse frequencies of the kernel (rotDims / 2 of them), optionally divided by
 * `divisors`: the same bits the rope kernel uses.
 *
 * @example
 * ropeInvFreqs(128, 500000)[0] === 1;
 */
export function ropeInvFreqs(rotDims: number, theta: number, divisors: Float32Array | null = null): Float32Array {
  const out = new Float32Array(rotDims / 2);
  native.ropeInvFreqs(rotDims, theta, divisors, out);
  return out;
}

/**
 * Llama 3 divisors from the unscaled inverse frequencies, each line one f32 rounding:
 *
 *     F = f32(factor), lo = f32(low_freq_factor), hi = f32(high_freq_factor), L = f32(original context)
 *     lowW = f32(L / lo), highW = f32(L / hi)                   (wavelength bounds)
 *     w = f32(TWO_PI_F32 / inv[i])                              (the pair's wavelength)
 *     w < highW: d = 1          w > lowW: d = F
 *     else: r = f32(L / w); u = f32(r - lo); v = f32(hi - lo); s = f32(u / v)
 *           a = f32(1 - s); b = f32(a / F); c = f32(b + s); d = f32(1 / c); d = min(max(d, 1), F)
 *
 * (transformers: smoothed inv = (1 - s) * inv / F + s * inv = inv / d; the clamp only catches a
 * rounding step past the ends of the band, so every divisor stays in [1, F].)
 */
export function llama3Divisors(inv: Float32Array, s: Extract<RopeScaling, { type: 'llama3' }>): Float32Array {
  const F = f(s.factor), lo = f(s.lowFreqFactor), hi = f(s.highFreqFactor), L = f(s.originalContextLength);
  const lowW = f(L / lo), highW = f(L / hi);
  const v = f(hi - lo);
  const d = new Float32Array(inv.length);
  for (let i = 0; i < inv.length; i++) {
    const w = f(TWO_PI_F32 / inv[i]);
    if (w < highW) d[i] = 1;
    else if (w > lowW) d[i] = F;
    else {
      const sm = f(f(f(L / w) - lo) / v);
      const c = f(f(f(1 - sm) / F) + sm);
      d[i] = Math.min(Math.max(f(1 / c), 1), F);
    }
  }
  return d;
}

/**
 * The per-pair divisors a model's rope calls use, or null for none (no scaling and no
 * rope_freqs.weight; dividing by 1 is exact, so null and all-ones give the same bits).
 * A GGUF `rope_freqs.weight` of rotDims/2 values r[i] combines with the scaling's divisor s[i] as
 * `f32(r[i] * s[i])`. Every divisor must be finite and >= 1 (ERR_MODEL_FORMAT otherwise).
 *
 * @example
 * const div = ropeFreqDivisors(weights.config, weights);   // Float32Array(rotDims / 2) | null
 */
export function ropeFreqDivisors(config: LlamaConfig, weights?: Pick<ModelWeights, 'has' | 'get'>): Float32Array | null {
  const scaling = config.ropeScaling ?? { type: 'none' };
  const half = config.ropeDims / 2;
  let d: Float32Array | null = null;
  if (scaling.type === 'linear') d = new Float32Array(half).fill(f(scaling.factor));
  else if (scaling.type === 'llama3') d = llama3Divisors(ropeInvFreqs(config.ropeDims, config.ropeFreqBase), scaling);
  if (weights?.has('rope_freqs.weight')) {
    const r = widenVector(weights.get('rope_freqs.weight'));
    if (r.length !== half) fail('ERR_MODEL_SHAPE', `rope_freqs.weight has ${r.length} values, the model rotates ${half} pairs`);
    for (let i = 0; i < half; i++) {
      if (!(r[i] >= 1 && r[i] < Infinity)) fail('ERR_MODEL_FORMAT', `rope_freqs.weight[${i}] = ${r[i]}: frequency divisors must be finite and >= 1`);
    }
    if (d === null) d = r;
    else for (let i = 0; i < half; i++) d[i] = f(r[i] * d[i]);
  }
  if (d !== null) {
    for (let i = 0; i < half; i++) if (!(d[i] >= 1 && d[i] < Infinity)) fail('ERR_MODEL_FORMAT', `RoPE divisor ${i} = ${d[i]} is not finite and >= 1`);
  }
  return d;
}

/** The config field: absent for no scaling, so unscaled configurations read as they always did. */
export function scalingField(s: RopeScaling): { ropeScaling?: RopeScaling } {
  return s.type === 'none' ? {} : { ropeScaling: s };
}

/** A short description for logs and `model info` (e.g. `linear x4`, `llama3 x8 (1..4 @ 8192)`). */
export function describeRopeScaling(s: RopeScaling | undefined): string {
  if (!s || s.type === 'none') return 'none';
  if (s.type === 'linear') return `linear x${s.factor}`;
  return `llama3 x${s.factor} (${s.lowFreqFactor}..${s.highFreqFactor} @ ${s.originalContextLength})`;
}
