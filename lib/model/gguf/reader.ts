/**
 * GGUF reader (version 3, little-endian). Parses the header, metadata and tensor directory from
 * the file's memory mapping; tensor data is never copied, only located and checked. Every count
 * and length read from the file is checked against the bytes that remain before anything is
 * allocated, so a hostile or truncated file fails with a typed error instead of exhausting memory.
 */
import { endianness } from 'node:os';
import { fail } from '../../engine/errors.js';
import { mapFile } from '../../engine/files.js';
import {
  GgufValueType, formatOfGgmlType, blockWeights, byteLength, GGML_TYPE_NAMES,
  type GgufEntry, type GgufFile, type GgufNumericArray, type GgufScalar, type GgufTensorInfo,
} from './types.js';
import { BLOCK_TYPES } from './blocks.js';

const MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_NESTING = 4;
const utf8 = new TextDecoder('utf-8');
/** The tensor types the engine reads, as refusals name them. */
const SUPPORTED_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', ...Object.keys(BLOCK_TYPES).map((f) => f.toUpperCase())].join(', ');

/** Bytes per element of fixed-size value types (strings and arrays are variable). */
const FIXED_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};

/** A bounds-checked little-endian cursor over the file's bytes. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array, private readonly what: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  remaining(): number {
    return this.bytes.length - this.pos;
  }
  need(n: number, reading: string): void {
    if (n > this.remaining()) fail('ERR_MODEL_FORMAT', `${this.what}: truncated file: ${reading} needs ${n} bytes at offset ${this.pos}, ${this.remaining()} left`);
  }
  u8(): number { this.need(1, 'u8'); return this.view.getUint8(this.pos++); }
  u32(reading = 'u32'): number { this.need(4, reading); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  /** A u64 that must be a safe integer (counts, lengths, offsets). */
  u64(reading: string): number {
    this.need(8, reading);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('ERR_MODEL_FORMAT', `${this.what}: ${reading} ${v} at offset ${this.pos - 8} is absurd`);
    return Number(v);
  }
  /** A length-prefixed UTF-8 string; the length is checked before decoding. */
  string(reading: string): string {
    const n = this.u64(`${reading} length`);
    this.need(n, reading);
    const start = this.pos;
    this.pos += n;
    // ASCII fast path: short vocabulary entries dominate large files.
    if (n <= 16) {
      let ascii = true;
      for (let i = start; i < start + n; i++) if (this.bytes[i] >= 0x80) { ascii = false; break; }
      if (ascii) return n === 0 ? '' : String.fromCharCode.apply(null, this.bytes.subarray(start, start + n) as unknown as number[]);
    }
    return utf8.decode(this.bytes.subarray(start, start + n));
  }
  scalar(type: GgufValueType): GgufScalar {
    const v = this.view;
    const p = this.pos;
    const size = FIXED_SIZE[type];
    if (size !== undefined) this.need(size, GgufValueType[type]);
    switch (type) {
      case GgufValueType.UINT8: this.pos += 1; return v.getUint8(p);
      case GgufValueType.INT8: this.pos += 1; return v.getInt8(p);
      case GgufValueType.BOOL: {
        this.pos += 1;
        const b = v.getUint8(p);
        if (b > 1) fail('ERR_MODEL_FORMAT', `${this.what}: bool value ${b} at offset ${p}`);
        return b === 1;
      }
      case GgufValueType.UINT16: this.pos += 2; return v.getUint16(p, true);
      case GgufValueType.INT16: this.pos += 2; return v.getInt16(p, true);
      case GgufValueType.UINT32: this.pos += 4; return v.getUint32(p, true);
      case GgufValueType.INT32: this.pos += 4; return v.getInt32(p, true);
      case GgufValueType.FLOAT32: this.pos += 4; return v.getFloat32(p, true);
      case GgufValueType.UINT64: this.pos += 8; return v.getBigUint64(p, true);
      case GgufValueType.INT64: this.pos += 8; return v.getBigInt64(p, true);
      case GgufValueType.FLOAT64: this.pos += 8; return v.getFloat64(p, true);
      case GgufValueType.STRING: return this.string('string value');
      default: fail('ERR_MODEL_FORMAT', `${this.what}: unknown metadata value type ${type} at offset ${p}`);
    }
  }
  /** Copies `count` fixed-size values into a typed array (copied: the offset may be unaligned). */
  numericArray(type: GgufValueType, count: number): GgufNumericArray {
    const size = FIXED_SIZE[type]!;
    this.need(count * size, `array of ${count} ${GgufValueType[type]}`);
    const raw = this.bytes.slice(this.pos, this.pos + count * size).buffer;
    this.pos += count * size;
    switch (type) {
      case GgufValueType.UINT8: return new Uint8Array(raw);
      case GgufValueType.INT8: return new Int8Array(raw);
      case GgufValueType.UINT16: return new Uint16Array(raw);
      case GgufValueType.INT16: return new Int16Array(raw);
      case GgufValueType.UINT32: return new Uint32Array(raw);
      case GgufValueType.INT32: return new Int32Array(raw);
      case GgufValueType.FLOAT32: return new Float32Array(raw);
      case GgufValueType.FLOAT64: return new Float64Array(raw);
      case GgufValueType.UINT64: return new BigUint64Array(raw);
      case GgufValueType.INT64: return new BigInt64Array(raw);
      default: fail('ERR_INTERNAL', `not a numeric type ${type}`);
    }
  }
  entry(type: number, depth: number): GgufEntry {
    if (!(type in GgufValueType) || typeof GgufValueType[type] !== 'string') fail('ERR_MODEL_FORMAT', `${this.what}: unknown metadata value type ${type} at offset ${this.pos - 4}`);
    if (type !== GgufValueType.ARRAY) return { type, value: this.scalar(type) } as GgufEntry;
    if (depth >= MAX_NESTING) fail('ERR_MODEL_FORMAT', `${this.what}: arrays nested deeper than ${MAX_NESTING}`);
    const itemType = this.u32('array item type');
    if (!(itemType in GgufValueType) || typeof GgufValueType[itemType] !== 'string') fail('ERR_MODEL_FORMAT', `${this.what}: unknown array item type ${itemType} at offset ${this.pos - 4}`);
    const count = this.u64('array length');
    // Guard before allocating: every item takes at least one byte (strings at least 8).
    const minItem = FIXED_SIZE[itemType as GgufValueType] ?? (itemType === GgufValueType.STRING ? 8 : 12);
    if (count * minItem > this.remaining()) fail('ERR_MODEL_FORMAT', `${this.what}: array of ${count} ${GgufValueType[itemType]} at offset ${this.pos} cannot fit in the ${this.remaining()} bytes left (absurd count or truncated file)`);
    if (itemType === GgufValueType.BOOL) {
      const raw = this.numericArray(GgufValueType.UINT8, count);
      const out: boolean[] = new Array(count);
      for (let i = 0; i < count; i++) {
        if (raw[i] > 1) fail('ERR_MODEL_FORMAT', `${this.what}: bool value ${raw[i]} in array`);
        out[i] = raw[i] === 1;
      }
      return { type, itemType, value: out };
    }
    if (itemType === GgufValueType.STRING) {
      const out: string[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = this.string('array string');
      return { type, itemType, value: out };
    }
    if (itemType === GgufValueType.ARRAY) {
      const out: GgufEntry[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = this.entry(GgufValueType.ARRAY, depth + 1);
      return { type, itemType, value: out };
    }
    return { type, itemType, value: this.numericArray(itemType, count) };
  }
}

/**
 * Parses a GGUF file from its path (memory-mapped) or bytes. Checks magic, version 3, every
 * length, tensor types, dims, offsets (aligned, inside the file, not overlapping).
 *
 * @example
 * const f = readGguf('tiny.gguf');
 * console.log(f.metadata.get('general.architecture')?.value, f.tensors.length);
 */
export function readGguf(source: string | Uint8Array): GgufFile {
  if (endianness() !== 'LE') fail('ERR_MODEL_UNSUPPORTED', 'GGUF reading needs a little-endian host');
  const what = typeof source === 'string' ? source : 'GGUF';
  const bytes = typeof source === 'string' ? new Uint8Array(mapFile(source)) : source;
  const c = new Cursor(bytes, what);
  if (bytes.length < 4) fail('ERR_MODEL_FORMAT', `${what}: truncated file: ${bytes.length} bytes, no GGUF header`);
  const magic = c.u32('magic');
  if (magic !== MAGIC) fail('ERR_MODEL_FORMAT', `${what}: bad magic 0x${magic.toString(16).padStart(8, '0')} (not a GGUF file)`);
  const version = c.u32('version');
  if (version !== 3) fail('ERR_MODEL_UNSUPPORTED', `${what}: unsupported GGUF version ${version} (only version 3 is read)`);
  const tensorCount = c.u64('tensor count');
  const kvCount = c.u64('metadata count');
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8 + 4 + 4 + 8.
  if (kvCount * 13 > c.remaining()) fail('ERR_MODEL_FORMAT', `${what}: metadata count ${kvCount} is absurd for a ${bytes.length}-byte file`);
  if (tensorCount * 24 > c.remaining()) fail('ERR_MODEL_FORMAT', `${what}: tensor count ${tensorCount} is absurd for a ${bytes.length}-byte file`);

  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string('metadata key');
    if (metadata.has(key)) fail('ERR_MODEL_FORMAT', `${what}: duplicate metadata key '${key}'`);
    metadata.set(key, c.entry(c.u32(`type of '${key}'`), 0));
  }

  let alignment = 32;
  const al = metadata.get('general.alignment');
  if (al !== undefined) {
    if (al.type !== GgufValueType.UINT32) fail('ERR_MODEL_FORMAT', `${what}: general.alignment must be a u32`);
    alignment = al.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail('ERR_MODEL_FORMAT', `${what}: general.alignment ${alignment} is not a power of two`);
  }

  const raw: { name: string; ggmlType: number; dims: number[]; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string('tensor name');
    if (names.has(name)) fail('ERR_MODEL_FORMAT', `${what}: duplicate tensor '${name}'`);
    names.add(name);
    const nDims = c.u32(`dimension count of '${name}'`);
    if (nDims < 1 || nDims > MAX_DIMS) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`dimension ${d} of '${name}'`));
    const ggmlType = c.u32(`type of '${name}'`);
    const rel = c.u64(`offset of '${name}'`);
    raw.push({ name, ggmlType, dims, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (dataOffset > bytes.length && tensorCount > 0) fail('ERR_MODEL_FORMAT', `${what}: truncated file: the tensor data section would start at ${dataOffset}, past the end (${bytes.length})`);

  const tensors: GgufTensorInfo[] = raw.map(({ name, ggmlType, dims, rel }) => {
    const format = formatOfGgmlType(ggmlType);
    if (format === undefined) fail('ERR_MODEL_UNSUPPORTED', `${what}: tensor '${name}' has type ${GGML_TYPE_NAMES[ggmlType] ?? ggmlType}; supported: ${SUPPORTED_TYPES}`);
    let elements = 1;
    for (const d of dims) {
      elements *= d;
      // No ggml type packs a weight in under one bit: more elements than the file has bits is absurd.
      if (!Number.isSafeInteger(elements) || elements > bytes.length * 8) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' has absurd dimensions [${dims.join(', ')}]`);
    }
    const block = blockWeights(format);
    if (dims[0] % block !== 0) fail('ERR_MODEL_SHAPE', `${what}: ${GGML_TYPE_NAMES[ggmlType] ?? ggmlType} tensor '${name}' has a row of ${dims[0]} elements, not a whole number of ${block}-element blocks`);
    if (rel % alignment !== 0) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' data offset ${rel} is not a multiple of the alignment ${alignment}`);
    const shape = dims.slice().reverse();
    const length = byteLength(format, shape);
    const offset = dataOffset + rel;
    if (offset + length > bytes.length) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' data [${offset}, ${offset + length}) is out of bounds (file is ${bytes.length} bytes; truncated?)`);
    return { name, ggmlType, format, shape, offset, byteLength: length };
  });
  // ggml's own rule (gguf.cpp): in directory order each tensor starts where the one before it ends,
  // padded to the alignment, and the file ends with the last one. A span that differs from what the
  // type and shape take is a tensor whose declared type or shape is not what was written.
  const desc = (t: GgufTensorInfo) => `'${t.name}' (${GGML_TYPE_NAMES[t.ggmlType] ?? t.ggmlType} [${t.shape.join(', ')}], ${t.byteLength} bytes)`;
  let expected = dataOffset;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (t.offset !== expected) {
      const after = i === 0 ? 'the start of the data section' : `the end of ${desc(tensors[i - 1])}`;
      if (t.offset < expected) fail('ERR_MODEL_FORMAT', `${what}: tensor '${t.name}' at offset ${t.offset} overlaps ${after} at ${expected}`);
      fail('ERR_MODEL_FORMAT', `${what}: tensor '${t.name}' starts at offset ${t.offset}, ${t.offset - expected} bytes after ${after} at ${expected}: a byte size that does not match the type and shape, or a hole in the data section`);
    }
    expected = Math.ceil((t.offset + t.byteLength) / alignment) * alignment;
  }
  if (tensors.length > 0 && bytes.length > expected) {
    fail('ERR_MODEL_FORMAT', `${what}: ${bytes.length - expected} bytes follow the last tensor ${desc(tensors[tensors.length - 1])}, which ends at ${expected}: its byte size does not match its type and shape`);
  }
  return { version, metadata, tensors, alignment, dataOffset, bytes };
}

/** Typed accessors over GGUF metadata that name the key and the expected type in errors. */
export class GgufMetadata {
  constructor(readonly map: Map<string, GgufEntry>, private readonly what = 'GGUF') {}
  has(key: string): boolean {
    return this.map.has(key);
  }
  /** An integer or float scalar (64-bit integers must be safe integers). */
  number(key: string): number | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (typeof e.value === 'number') return e.value;
    if (typeof e.value === 'bigint' && e.value <= BigInt(Number.MAX_SAFE_INTEGER) && e.value >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(e.value);
    fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' must be a number, it is ${GgufValueType[e.type]}`);
  }
  requireNumber(key: string): number {
    const v = this.number(key);
    if (v === undefined) fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' is missing`);
    return v;
  }
  string(key: string): string | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (typeof e.value !== 'string') fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' must be a string, it is ${GgufValueType[e.type]}`);
    return e.value;
  }
  bool(key: string): boolean | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (typeof e.value !== 'boolean') fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' must be a bool, it is ${GgufValueType[e.type]}`);
    return e.value;
  }
  stringArray(key: string): string[] | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.type !== GgufValueType.ARRAY || e.itemType !== GgufValueType.STRING) fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' must be an array of strings`);
    return e.value as string[];
  }
  /** A numeric array as float64 values (scores, token types). */
  numberArray(key: string): ArrayLike<number> | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.type !== GgufValueType.ARRAY || !ArrayBuffer.isView(e.value) || e.value instanceof BigInt64Array || e.value instanceof BigUint64Array) fail('ERR_MODEL_FORMAT', `${this.what}: metadata '${key}' must be an array of numbers (32 bits or less)`);
    return e.value as ArrayLike<number>;
  }
}
