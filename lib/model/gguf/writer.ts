/**
 * GGUF writer (version 3): the inverse of the reader, used by `atoma model init` and by tests that
 * build small or deliberately broken files. Tensors are aligned to `general.alignment` (32 unless
 * given) and written in the order given.
 */
import { openSync, writeSync, closeSync } from 'node:fs';
import { fail } from '../../engine/errors.js';
import type { WeightFormat } from '../types.js';
import { GgufValueType, byteLength, ggmlTypeOfFormat, type GgufEntry, type GgufNumericArray } from './types.js';

export interface GgufTensorSpec {
  name: string;
  format: WeightFormat;
  /** Row-major shape (last dimension contiguous); written reversed as GGUF dims. */
  shape: readonly number[];
  /** Stored bytes in `format` (byteLength must match the shape). */
  data: Uint8Array;
}

export interface GgufSpec {
  metadata: Iterable<[string, GgufEntry]>;
  tensors: readonly GgufTensorSpec[];
}

/** Constructors of typed metadata entries. */
export const ggufValue = {
  u8: (v: number): GgufEntry => ({ type: GgufValueType.UINT8, value: v }),
  u32: (v: number): GgufEntry => ({ type: GgufValueType.UINT32, value: v }),
  i32: (v: number): GgufEntry => ({ type: GgufValueType.INT32, value: v }),
  u64: (v: number | bigint): GgufEntry => ({ type: GgufValueType.UINT64, value: BigInt(v) }),
  f32: (v: number): GgufEntry => ({ type: GgufValueType.FLOAT32, value: v }),
  bool: (v: boolean): GgufEntry => ({ type: GgufValueType.BOOL, value: v }),
  string: (v: string): GgufEntry => ({ type: GgufValueType.STRING, value: v }),
  strings: (v: string[]): GgufEntry => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: v }),
  f32s: (v: ArrayLike<number>): GgufEntry => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: Float32Array.from(v) }),
  i32s: (v: ArrayLike<number>): GgufEntry => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: Int32Array.from(v) }),
};

const enc = new TextEncoder();

/** writeSync may write less than asked for large buffers; loop until all is written. */
function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done);
}

/** Growable little-endian byte sink for the header. */
class Sink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.ensure(1); this.view.setUint8(this.len, v); this.len += 1; }
  u32(v: number): void { this.ensure(4); this.view.setUint32(this.len, v, true); this.len += 4; }
  u64(v: number | bigint): void { this.ensure(8); this.view.setBigUint64(this.len, BigInt(v), true); this.len += 8; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  string(s: string): void { const b = enc.encode(s); this.u64(b.length); this.bytes(b); }
  scalar(type: GgufValueType, v: unknown): void {
    this.ensure(8);
    const d = this.view;
    const p = this.len;
    switch (type) {
      case GgufValueType.UINT8: d.setUint8(p, Number(v)); this.len += 1; break;
      case GgufValueType.INT8: d.setInt8(p, Number(v)); this.len += 1; break;
      case GgufValueType.BOOL: d.setUint8(p, v ? 1 : 0); this.len += 1; break;
      case GgufValueType.UINT16: d.setUint16(p, Number(v), true); this.len += 2; break;
      case GgufValueType.INT16: d.setInt16(p, Number(v), true); this.len += 2; break;
      case GgufValueType.UINT32: d.setUint32(p, Number(v), true); this.len += 4; break;
      case GgufValueType.INT32: d.setInt32(p, Number(v), true); this.len += 4; break;
      case GgufValueType.FLOAT32: d.setFloat32(p, Number(v), true); this.len += 4; break;
      case GgufValueType.UINT64: d.setBigUint64(p, BigInt(v as bigint), true); this.len += 8; break;
      case GgufValueType.INT64: d.setBigInt64(p, BigInt(v as bigint), true); this.len += 8; break;
      case GgufValueType.FLOAT64: d.setFloat64(p, Number(v), true); this.len += 8; break;
      case GgufValueType.STRING: this.string(String(v)); break;
      default: fail('ERR_ARGUMENT', `writeGguf: cannot write value type ${type}`);
    }
  }
  entry(e: GgufEntry): void {
    this.u32(e.type);
    this.entryValue(e);
  }
  private entryValue(e: GgufEntry): void {
    if (e.type !== GgufValueType.ARRAY) return this.scalar(e.type, e.value);
    this.u32(e.itemType);
    const items = e.value as ArrayLike<unknown>;
    this.u64(items.length);
    if (e.itemType === GgufValueType.ARRAY) {
      for (const sub of e.value as GgufEntry[]) {
        if (sub.type !== GgufValueType.ARRAY) fail('ERR_ARGUMENT', 'writeGguf: nested array items must be arrays');
        this.entryValue(sub);
      }
      return;
    }
    if (ArrayBuffer.isView(e.value)) {
      const v = e.value as GgufNumericArray;
      this.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      return;
    }
    for (let i = 0; i < items.length; i++) this.scalar(e.itemType, items[i]);
  }
  result(): Uint8Array { return this.buf.subarray(0, this.len); }
}

/** Header bytes (padded to the alignment) and each tensor's offset within the data section. */
function layout(spec: GgufSpec): { header: Uint8Array; offsets: number[]; alignment: number } {
  const meta = [...spec.metadata];
  const al = meta.find(([k]) => k === 'general.alignment');
  const alignment = al ? Number(al[1].value) : 32;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) fail('ERR_ARGUMENT', `writeGguf: alignment ${alignment} is not a power of two`);
  const s = new Sink();
  s.u32(0x46554747);
  s.u32(3);
  s.u64(spec.tensors.length);
  s.u64(meta.length);
  for (const [key, e] of meta) {
    s.string(key);
    s.entry(e);
  }
  const offsets: number[] = [];
  let off = 0;
  for (const t of spec.tensors) {
    const expected = byteLength(t.format, t.shape);
    if (t.data.length !== expected) fail('ERR_SHAPE', `writeGguf: tensor '${t.name}' has ${t.data.length} bytes, its shape [${t.shape.join(', ')}] in ${t.format} needs ${expected}`);
    s.string(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(t.shape[d]);
    s.u32(ggmlTypeOfFormat(t.format));
    s.u64(off);
    offsets.push(off);
    off = Math.ceil((off + t.data.length) / alignment) * alignment;
  }
  const pad = (alignment - (s.len % alignment)) % alignment;
  s.bytes(new Uint8Array(pad));
  return { header: s.result(), offsets, alignment };
}

/**
 * Serialises a GGUF file into memory (small files: tests, init models).
 *
 * @example
 * const bytes = encodeGguf({ metadata: [['general.architecture', ggufValue.string('llama')]], tensors: [] });
 */
export function encodeGguf(spec: GgufSpec): Uint8Array {
  const { header, offsets } = layout(spec);
  const end = spec.tensors.length ? offsets[offsets.length - 1] + spec.tensors[spec.tensors.length - 1].data.length : 0;
  const out = new Uint8Array(header.length + end);
  out.set(header);
  spec.tensors.forEach((t, i) => out.set(t.data, header.length + offsets[i]));
  return out;
}

/**
 * Writes a GGUF file, streaming the tensors (never holding the whole file in memory twice).
 *
 * @example
 * writeGguf('tiny.gguf', { metadata, tensors });
 */
export function writeGguf(path: string, spec: GgufSpec): void {
  const { header, offsets } = layout(spec);
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, header);
    let pos = 0;
    spec.tensors.forEach((t, i) => {
      if (offsets[i] > pos) writeAll(fd, new Uint8Array(offsets[i] - pos));
      writeAll(fd, t.data);
      pos = offsets[i] + t.data.length;
    });
  } finally {
    closeSync(fd);
  }
}
