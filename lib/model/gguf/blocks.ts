/**
 * GGUF's block-quantized tensor types (Q4_0 .. MXFP4): their GGML ids, block shapes, and an exact
 * TypeScript decoder for each, in the operation order of docs/canonical-arithmetic.md ("GGUF
 * block types"), the same as native/cpu/quant_blocks.h. Every product there is exact in f32, so
 * the f64 products here are too; the one rounded step (adding or subtracting a min) goes through
 * Math.fround, and an f32 operation done in f64 then rounded once gives the f32 result.
 * The engine widens these on the native side; this copy serves host-side row lookups (token
 * embeddings) and the tests.
 */

export type BlockFormat =
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'iq4_nl' | 'iq4_xs' | 'mxfp4';

export interface BlockType {
  /** GGML type id in a GGUF file. */
  ggmlType: number;
  /** Weights per block. */
  weights: number;
  /** Bytes per block. */
  bytes: number;
  /** Writes the block at `b[at..]`'s weights into `y[o..o + weights)`. */
  decode(b: Uint8Array, at: number, y: Float32Array, o: number): void;
}

const f32 = Math.fround;

/** The exact f16 -> f32 widening (NaN payloads kept, quieted). */
export function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) {
    if (m === 0) return s * Infinity;
    const u = new Uint32Array([((h & 0x8000) << 16) | 0x7fc00000 | (m << 13)]);
    return new Float32Array(u.buffer)[0];
  }
  return e === 0 ? s * m * 2 ** -24 : s * (1024 + m) * 2 ** (e - 25);
}

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const IQ4NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
const FP4X2 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
const int8 = (v: number) => (v << 24) >> 24;

/** Sub-block j's 6-bit scale and min from the 12 scale bytes of a Q4_K / Q5_K block at `s`. */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

function q4_0(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at));
  for (let j = 0; j < 16; j++) {
    y[o + j] = ((b[at + 2 + j] & 0xf) - 8) * d;
    y[o + j + 16] = ((b[at + 2 + j] >> 4) - 8) * d;
  }
}

function q4_1(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at)), m = half(u16(b, at + 2));
  for (let j = 0; j < 16; j++) {
    y[o + j] = f32((b[at + 4 + j] & 0xf) * d + m);
    y[o + j + 16] = f32((b[at + 4 + j] >> 4) * d + m);
  }
}

function q5(b: Uint8Array, at: number, y: Float32Array, o: number, withMin: boolean): void {
  const d = half(u16(b, at)), m = withMin ? half(u16(b, at + 2)) : 0;
  const qh = u32(b, at + (withMin ? 4 : 2)), qs = at + (withMin ? 8 : 6), off = withMin ? 0 : 16;
  for (let j = 0; j < 16; j++) {
    const x0 = ((b[qs + j] & 0xf) | (((qh >>> j) & 1) << 4)) - off;
    const x1 = ((b[qs + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - off;
    y[o + j] = withMin ? f32(x0 * d + m) : x0 * d;
    y[o + j + 16] = withMin ? f32(x1 * d + m) : x1 * d;
  }
}

function iq4_nl(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at));
  for (let j = 0; j < 16; j++) {
    y[o + j] = d * IQ4NL[b[at + 2 + j] & 0xf];
    y[o + j + 16] = d * IQ4NL[b[at + 2 + j] >> 4];
  }
}

function mxfp4(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = 2 ** (b[at] - 128);
  for (let j = 0; j < 16; j++) {
    y[o + j] = FP4X2[b[at + 1 + j] & 0xf] * d;
    y[o + j + 16] = FP4X2[b[at + 1 + j] >> 4] * d;
  }
}

function q2_k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at + 80)), dmin = half(u16(b, at + 82));
  let is = 0, q = at + 16;
  for (let n = 0; n < 256; n += 128, q += 32)
    for (let shift = 0; shift < 8; shift += 2)
      for (let h = 0; h < 2; h++, is++) {
        const sc = b[at + is], dl = d * (sc & 0xf), ml = dmin * (sc >> 4);
        for (let l = 0; l < 16; l++) y[o++] = f32(dl * ((b[q + 16 * h + l] >> shift) & 3) - ml);
      }
}

function q3_k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const s = at + 96, d = half(u16(b, at + 108));
  const sc: number[] = [];
  for (let i = 0; i < 16; i++) {
    const lo = i < 8 ? b[s + i] & 0xf : b[s + i - 8] >> 4;
    sc.push((lo | (((b[s + 8 + (i & 3)] >> (2 * (i >> 2))) & 3) << 4)) - 32);
  }
  let is = 0, q = at + 32, m = 1;
  for (let n = 0; n < 256; n += 128, q += 32)
    for (let shift = 0; shift < 8; shift += 2, m <<= 1)
      for (let h = 0; h < 2; h++, is++) {
        const dl = d * sc[is];
        for (let l = 0; l < 16; l++) {
          const v = ((b[q + 16 * h + l] >> shift) & 3) - (b[at + 16 * h + l] & m ? 0 : 4);
          y[o++] = dl * v;
        }
      }
}

function qk(b: Uint8Array, at: number, y: Float32Array, o: number, five: boolean): void {
  const d = half(u16(b, at)), dmin = half(u16(b, at + 2));
  const qh = at + 16;
  let q = at + (five ? 48 : 16);
  for (let j = 0; j < 4; j++, q += 32) {
    const [s1, m1i] = scaleMinK4(b, at + 4, 2 * j), [s2, m2i] = scaleMinK4(b, at + 4, 2 * j + 1);
    const d1 = d * s1, m1 = dmin * m1i, d2 = d * s2, m2 = dmin * m2i;
    for (let l = 0; l < 32; l++) y[o++] = f32(d1 * ((b[q + l] & 0xf) + (five && b[qh + l] & (1 << (2 * j)) ? 16 : 0)) - m1);
    for (let l = 0; l < 32; l++) y[o++] = f32(d2 * ((b[q + l] >> 4) + (five && b[qh + l] & (2 << (2 * j)) ? 16 : 0)) - m2);
  }
}

function q6_k(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at + 208));
  let ql = at, qh = at + 128, sc = at + 192;
  for (let n = 0; n < 256; n += 128, o += 128, ql += 64, qh += 32, sc += 8)
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const q1 = ((b[ql + l] & 0xf) | ((b[qh + l] & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
      y[o + l] = d * int8(b[sc + is]) * q1;
      y[o + l + 32] = d * int8(b[sc + is + 2]) * q2;
      y[o + l + 64] = d * int8(b[sc + is + 4]) * q3;
      y[o + l + 96] = d * int8(b[sc + is + 6]) * q4;
    }
}

function iq4_xs(b: Uint8Array, at: number, y: Float32Array, o: number): void {
  const d = half(u16(b, at)), sh = u16(b, at + 2);
  for (let ib = 0; ib < 8; ib++, o += 32) {
    const ls = ((b[at + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
    const dl = d * (ls - 32), q = at + 8 + 16 * ib;
    for (let j = 0; j < 16; j++) {
      y[o + j] = dl * IQ4NL[b[q + j] & 0xf];
      y[o + j + 16] = dl * IQ4NL[b[q + j] >> 4];
    }
  }
}

export const BLOCK_TYPES: Readonly<Record<BlockFormat, BlockType>> = {
  q4_0: { ggmlType: 2, weights: 32, bytes: 18, decode: q4_0 },
  q4_1: { ggmlType: 3, weights: 32, bytes: 20, decode: q4_1 },
  q5_0: { ggmlType: 6, weights: 32, bytes: 22, decode: (b, at, y, o) => q5(b, at, y, o, false) },
  q5_1: { ggmlType: 7, weights: 32, bytes: 24, decode: (b, at, y, o) => q5(b, at, y, o, true) },
  q2_k: { ggmlType: 10, weights: 256, bytes: 84, decode: q2_k },
  q3_k: { ggmlType: 11, weights: 256, bytes: 110, decode: q3_k },
  q4_k: { ggmlType: 12, weights: 256, bytes: 144, decode: (b, at, y, o) => qk(b, at, y, o, false) },
  q5_k: { ggmlType: 13, weights: 256, bytes: 176, decode: (b, at, y, o) => qk(b, at, y, o, true) },
  q6_k: { ggmlType: 14, weights: 256, bytes: 210, decode: q6_k },
  iq4_nl: { ggmlType: 20, weights: 32, bytes: 18, decode: iq4_nl },
  iq4_xs: { ggmlType: 23, weights: 256, bytes: 136, decode: iq4_xs },
  mxfp4: { ggmlType: 39, weights: 32, bytes: 17, decode: mxfp4 },
};

export function isBlockFormat(f: string): f is BlockFormat {
  return Object.prototype.hasOwnProperty.call(BLOCK_TYPES, f);
}
