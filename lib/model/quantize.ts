/**
 * Conversions of f32 weights into stored formats, deterministic to the bit:
 *  - f16 / bf16: round to nearest even (lib/engine/dtype.ts);
 *  - q8_0: per block of 32 consecutive values of a row, d = max|x| / 127 rounded to f16, then
 *    q = round-half-even(x / d) (the quotient in binary64, with d as stored) clamped to
 *    [-127, 127]; an all-zero block stores d = 0 and q = 0. Block bytes: d (f16, little-endian),
 *    then the 32 int8 values.
 */
import { fail } from '../engine/errors.js';
import { f16ToF32, f32ToBf16, f32ToF16 } from '../engine/dtype.js';
import { Q8_0_BLOCK, Q8_0_BYTES } from './gguf/types.js';
import type { WeightFormat } from './types.js';

export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) fail('ERR_SHAPE', `q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${x.length}`);
  const blocks = x.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(x[b * Q8_0_BLOCK + i]));
    const dBits = f32ToF16(amax / 127);
    const d = f16ToF32(dBits);
    view.setUint16(b * Q8_0_BYTES, dBits, true);
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const q = d === 0 ? 0 : Math.max(-127, Math.min(127, roundHalfEven(x[b * Q8_0_BLOCK + i] / d)));
      view.setInt8(b * Q8_0_BYTES + 2 + i, q);
    }
  }
  return out;
}

/** Dequantises q8_0 bytes (d * q per value), e.g. for tests and inspection. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  if (bytes.length % Q8_0_BYTES !== 0) fail('ERR_SHAPE', `q8_0 data must be whole ${Q8_0_BYTES}-byte blocks`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / Q8_0_BYTES) * Q8_0_BLOCK);
  for (let b = 0; b < bytes.length / Q8_0_BYTES; b++) {
    const d = f16ToF32(view.getUint16(b * Q8_0_BYTES, true));
    for (let i = 0; i < Q8_0_BLOCK; i++) out[b * Q8_0_BLOCK + i] = d * view.getInt8(b * Q8_0_BYTES + 2 + i);
  }
  return out;
}

/** f32 values in a stored format's bytes. */
export function encodeWeights(x: Float32Array, format: WeightFormat): Uint8Array {
  switch (format) {
    case 'f32': return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    case 'f16': return new Uint8Array(Uint16Array.from(x, f32ToF16).buffer);
    case 'bf16': return new Uint8Array(Uint16Array.from(x, f32ToBf16).buffer);
    case 'q8_0': return quantizeQ8_0(x);
    default: return fail('ERR_MODEL_UNSUPPORTED', `encoding to ${format} is not implemented here (init models write random ${format} blocks)`);
  }
}
