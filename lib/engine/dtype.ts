/** Element types and their codes in the tensor encoding (DETERMINISM.md section 2). */
import { fail } from './errors.js';

export type DType = 'f32' | 'f16' | 'bf16' | 'i8' | 'i32' | 'u32' | 'u8';

export type TypedArrayFor<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'f16' | 'bf16'
    ? Uint16Array
    : D extends 'i8'
      ? Int8Array
      : D extends 'i32'
        ? Int32Array
        : D extends 'u32'
          ? Uint32Array
          : Uint8Array;

export type AnyTypedArray = Float32Array | Uint16Array | Int8Array | Int32Array | Uint32Array | Uint8Array;

interface DTypeInfo {
  code: number;
  bytes: number;
  array: { new (n: number): AnyTypedArray; new (buf: ArrayBufferLike, off: number, len: number): AnyTypedArray };
}

export const DTYPES: Record<DType, DTypeInfo> = {
  f32: { code: 1, bytes: 4, array: Float32Array },
  f16: { code: 2, bytes: 2, array: Uint16Array },
  bf16: { code: 3, bytes: 2, array: Uint16Array },
  i8: { code: 4, bytes: 1, array: Int8Array },
  i32: { code: 5, bytes: 4, array: Int32Array },
  u32: { code: 6, bytes: 4, array: Uint32Array },
  u8: { code: 7, bytes: 1, array: Uint8Array },
};

export function checkDType(d: string): DType {
  if (!(d in DTYPES)) fail('ERR_DTYPE', `unknown dtype '${d}' (expected one of ${Object.keys(DTYPES).join(', ')})`);
  return d as DType;
}

export function arrayMatchesDType(dtype: DType, data: AnyTypedArray): boolean {
  return data instanceof DTYPES[dtype].array && data.BYTES_PER_ELEMENT === DTYPES[dtype].bytes;
}

/** Exact widening of IEEE binary16 bits to f32. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

const scratch = new DataView(new ArrayBuffer(4));

/** Exact widening of bfloat16 bits to f32. */
export function bf16ToF32(b: number): number {
  scratch.setUint32(0, (b & 0xffff) << 16);
  return scratch.getFloat32(0);
}

/** f32 to bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16(x: number): number {
  scratch.setFloat32(0, x);
  const u = scratch.getUint32(0);
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 to binary16 bits, round to nearest even, overflow to infinity, subnormals kept. */
export function f32ToF16(x: number): number {
  scratch.setFloat32(0, x);
  const u = scratch.getUint32(0);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && r & 1)) r += 1;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r += 1;
  return sign | r;
}
