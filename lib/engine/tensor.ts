/**
 * A dense row-major tensor over a typed array. The array is shared with native code, never
 * copied: kernels read and write it in place.
 */
import { DTYPES, arrayMatchesDType, bf16ToF32, checkDType, f16ToF32, type AnyTypedArray, type DType, type TypedArrayFor } from './dtype.js';
import { fail } from './errors.js';
import { native } from './native.js';

export type Shape = readonly number[];

/** Largest element count we accept: typed arrays past this cannot be allocated in V8. */
const MAX_ELEMENTS = 2 ** 32;

export function elementCount(shape: Shape): number {
  if (!Array.isArray(shape)) fail('ERR_SHAPE', 'shape must be an array of non-negative integers');
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) fail('ERR_SHAPE', `shape [${shape.join(', ')}] has an invalid dimension ${String(d)}`);
    n *= d;
    if (n > MAX_ELEMENTS) fail('ERR_SIZE', `shape [${shape.join(', ')}] holds more than 2^32 elements`);
  }
  return n;
}

function allocate(dtype: DType, n: number): AnyTypedArray {
  try {
    return new DTYPES[dtype].array(n);
  } catch (e) {
    fail('ERR_SIZE', `cannot allocate ${n} ${dtype} elements: ${(e as Error).message}`);
  }
}

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: Shape;
  #data: TypedArrayFor<D> | null;

  /** Wraps `data` (not copied). Its length must equal the product of `shape`. */
  constructor(dtype: D, shape: Shape, data: TypedArrayFor<D>) {
    checkDType(dtype);
    const n = elementCount(shape);
    if (!arrayMatchesDType(dtype, data as AnyTypedArray))
      fail('ERR_DTYPE', `a ${dtype} tensor needs a ${DTYPES[dtype].array.name}, got ${(data as object)?.constructor?.name ?? typeof data}`);
    if ((data as AnyTypedArray).buffer.byteLength === 0 && n > 0)
      fail('ERR_DETACHED', 'the tensor data is backed by a detached ArrayBuffer');
    if ((data as AnyTypedArray).length !== n)
      fail('ERR_SHAPE', `shape [${shape.join(', ')}] needs ${n} elements, the data has ${(data as AnyTypedArray).length}`);
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.#data = data;
  }

  static zeros<D extends DType = 'f32'>(shape: Shape, dtype: D = 'f32' as D): Tensor<D> {
    return new Tensor(dtype, shape, allocate(checkDType(dtype), elementCount(shape)) as TypedArrayFor<D>);
  }

  /** An f32 tensor from numbers (copied) or from a Float32Array (shared). */
  static f32(shape: Shape, values: ArrayLike<number> | Float32Array): Tensor<'f32'> {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return new Tensor('f32', shape, data);
  }

  /** The elements, shared with the tensor. Throws ERR_DISPOSED after dispose(). */
  get data(): TypedArrayFor<D> {
    if (this.#data === null) fail('ERR_DISPOSED', 'this tensor was disposed');
    if ((this.#data as AnyTypedArray).buffer.byteLength === 0 && this.size > 0)
      fail('ERR_DETACHED', 'the tensor data is backed by a detached ArrayBuffer (was it transferred?)');
    return this.#data;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.#data === null;
  }

  /** Drops the reference to the data; any later use raises ERR_DISPOSED. */
  dispose(): void {
    this.#data = null;
  }

  /** The same data under another shape with the same element count. */
  reshape(shape: Shape): Tensor<D> {
    return new Tensor(this.dtype, shape, this.data);
  }

  /** Digest per DETERMINISM.md section 2: BLAKE3 of the canonical encoding, 64 hex digits. */
  digest(): string {
    return native.tensorDigest(DTYPES[this.dtype].code, [...this.shape], this.data as AnyTypedArray).toString('hex');
  }

  /** The encoding's bytes as hashed by digest() (header, then little-endian elements). */
  encode(): Buffer {
    const header = encodingHeader(this.dtype, this.shape);
    if (this.dtype === 'f32') return Buffer.concat([header, canonicalF32Bytes(this.data as Float32Array)]);
    return Buffer.concat([header, Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength)]);
  }

  /** An f32 copy of a floating-point tensor (exact widening from f16 and bf16). */
  toFloat32(): Tensor<'f32'> {
    const d = this.data as AnyTypedArray;
    if (this.dtype === 'f32') return new Tensor('f32', this.shape, Float32Array.from(d as Float32Array));
    const widen = this.dtype === 'f16' ? f16ToF32 : this.dtype === 'bf16' ? bf16ToF32 : null;
    if (!widen) fail('ERR_DTYPE', `toFloat32 needs a floating-point tensor, got ${this.dtype}`);
    const out = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = widen(d[i]);
    return new Tensor('f32', this.shape, out);
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(', ')}]`;
  }
}

/**
 * The spec's seeded test tensor (DETERMINISM.md section 1): element i is 2 * u - 1 with u from
 * Philox4x32-10 at counter (i, stream), key seed. Values are exact multiples of 2^-23 in [-1, 1).
 *
 * @example
 * const a = seeded([4, 256], 42n);       // stream 0
 * const b = seeded([256, 8], 42n, 1);    // stream 1
 */
/** The header of a tensor's canonical encoding: "ATM1", dtype code, rank, then each dim as u64 LE. */
export function encodingHeader(dtype: DType, shape: Shape): Buffer {
  const header = Buffer.alloc(8 + 8 * shape.length);
  header.write('ATM1', 0, 'ascii');
  header[4] = DTYPES[dtype].code;
  header[5] = shape.length;
  shape.forEach((d, i) => header.writeBigUInt64LE(BigInt(d), 8 + 8 * i));
  return header;
}

/** f32 values as the encoding stores them: a copy with every NaN made the one quiet NaN 0x7fc00000. */
export function canonicalF32Bytes(values: Float32Array): Buffer {
  const copy = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.from(copy);
  const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength / 4);
  for (let i = 0; i < words.length; i++) {
    if ((words[i] & 0x7f800000) === 0x7f800000 && words[i] & 0x7fffff) words[i] = 0x7fc00000;
  }
  return out;
}

export function seeded(shape: Shape, seed: bigint | number, stream = 0): Tensor<'f32'> {
  if (typeof seed === 'number' && (!Number.isSafeInteger(seed) || seed < 0)) fail('ERR_RANGE', 'seed must be a non-negative integer');
  if (typeof seed === 'bigint' && (seed < 0n || seed >= 1n << 64n)) fail('ERR_RANGE', 'seed must fit in 64 bits');
  if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) fail('ERR_RANGE', 'stream must be a 32-bit unsigned integer');
  const t = Tensor.zeros(shape, 'f32');
  native.seededFill(t.data, seed, stream, 0);
  return t;
}
