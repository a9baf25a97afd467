/**
 * Bad model files are refused at once with a typed error that names the field (issue 11, item 8).
 * "At once" is checked structurally (no clocks): the refusal comes from the directory or metadata,
 * before any tensor data is read, or within a bounded number of lookups.
 */
import { describe, it, expect } from 'vitest';
import {
  AtomaError, encodeGguf, readGguf, ggufValue, type GgufSpec,
} from '../lib/index.js';
import { initModelSpec } from '../lib/model/init.js';
import { ggufConfig, ggufWeights } from '../lib/model/gguf/llama.js';
import { checkedWeights } from '../lib/model/weights.js';
import { readSafetensors } from '../lib/model/safetensors.js';
import type { Weight } from '../lib/model/types.js';

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof AtomaError) return { code: e.code, message: e.message };
    throw e;
  }
  return { code: 'no error', message: '' };
}

const f32 = (name: string, n: number) => ({ name, format: 'f32' as const, shape: [n], data: new Uint8Array(4 * n) });

/** A GGUF file of the given tensors with one tensor's GGML type id overwritten in its directory entry. */
function retyped(tensors: GgufSpec['tensors'], name: string, ggmlType: number): Buffer {
  const b = Buffer.from(encodeGguf({ metadata: [], tensors }));
  // Directory entry: name length (u64), name, n_dims (u32), dims (u64 each), type (u32), offset (u64).
  const entry = b.indexOf(Buffer.concat([Buffer.from(name), Buffer.from([1, 0, 0, 0])]));
  b.writeUInt32LE(ggmlType, entry + name.length + 4 + 8);
  return b;
}

describe('GGUF: tensor geometry', () => {
  it('refuses a row that is not a whole number of blocks, naming the tensor and type', () => {
    const r = refusal(() => readGguf(retyped([f32('w', 48)], 'w', 8)));
    expect(r.code).toBe('ERR_MODEL_SHAPE');
    expect(r.message).toMatch(/Q8_0 tensor 'w' has a row of 48 elements, not a whole number of 32-element blocks/);
  });

  it('refuses a tensor whose span to the next tensor does not match its type and shape', () => {
    // 'a' was written as 64 f32 (256 bytes); declared F16 it takes 128, so 'b' starts 128 bytes late.
    const r = refusal(() => readGguf(retyped([f32('a', 64), f32('b', 64)], 'a', 1)));
    expect(r.code).toBe('ERR_MODEL_FORMAT');
    expect(r.message).toMatch(/tensor 'b' starts at offset \d+, 128 bytes after the end of 'a' \(F16 \[64\], 128 bytes\)/);
    // Declared Q8_0 it takes 68 bytes (96 padded): the hole is 160 bytes.
    expect(refusal(() => readGguf(retyped([f32('a', 64), f32('b', 64)], 'a', 8))).message).toMatch(/160 bytes after the end of 'a' \(Q8_0/);
  });

  it('refuses a last tensor whose span to the end of the file does not match its type and shape', () => {
    const r = refusal(() => readGguf(retyped([f32('a', 64), f32('b', 64)], 'b', 1)));
    expect(r.code).toBe('ERR_MODEL_FORMAT');
    expect(r.message).toMatch(/128 bytes follow the last tensor 'b' \(F16 \[64\], 128 bytes\)/);
    // The same file with nothing changed loads: the writer's layout is the one required.
    expect(readGguf(encodeGguf({ metadata: [], tensors: [f32('a', 64), f32('b', 64)] })).tensors).toHaveLength(2);
  });

  it('refuses data past the end of the file and tensors out of directory order', () => {
    const b = Buffer.from(encodeGguf({ metadata: [], tensors: [f32('a', 8), f32('b', 8)] }));
    const offAt = (name: string) => b.indexOf(Buffer.concat([Buffer.from(name), Buffer.from([1, 0, 0, 0])])) + name.length + 4 + 8 + 4;
    const swapped = Buffer.from(b);
    swapped.writeBigUInt64LE(32n, offAt('a'));
    swapped.writeBigUInt64LE(0n, offAt('b'));
    expect(refusal(() => readGguf(swapped)).message).toMatch(/tensor 'a' starts at offset \d+, 32 bytes after the start of the data section/);
    const past = Buffer.from(b);
    past.writeBigUInt64LE(1n << 20n, offAt('b'));
    expect(refusal(() => readGguf(past))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/tensor 'b' data .* out of bounds/) });
  });

  it('refuses every type it cannot read by name, and unnamed ids by number', () => {
    for (const [id, name] of [[9, 'Q8_1'], [15, 'Q8_K'], [16, 'IQ2_XXS'], [28, 'F64'], [26, 'I32']] as const) {
      const r = refusal(() => readGguf(retyped([f32('w', 256)], 'w', id)));
      expect(r.code, name).toBe('ERR_MODEL_UNSUPPORTED');
      expect(r.message, name).toMatch(new RegExp(`tensor 'w' has type ${name};`));
    }
    expect(refusal(() => readGguf(retyped([f32('w', 256)], 'w', 1000))).message).toMatch(/tensor 'w' has type 1000;/);
  });
});

describe('GGUF: counts bounded by the file before anything is allocated', () => {
  /** A header (magic, version 3, tensor count, KV count) followed by `rest`. */
  const header = (tensors: bigint, kvs: bigint, rest: Uint8Array = new Uint8Array(0)) => {
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0x46554747, 0); h.writeUInt32LE(3, 4); h.writeBigUInt64LE(tensors, 8); h.writeBigUInt64LE(kvs, 16);
    return Buffer.concat([h, rest]);
  };

  it('refuses tensor, metadata, dimension, string and array counts that cannot fit in the bytes left', () => {
    expect(refusal(() => readGguf(header(1n << 31n, 0n))).message).toMatch(/tensor count 2147483648 is absurd/);
    expect(refusal(() => readGguf(header(0n, 1n << 31n))).message).toMatch(/metadata count 2147483648 is absurd/);
    // A tensor with 5 dimensions (at most 4), then one with a dimension count of 2^31.
    const t = Buffer.from(encodeGguf({ metadata: [], tensors: [f32('w', 8)] }));
    const nd = t.indexOf(Buffer.from('w')) + 1;
    for (const n of [5, 0x80000000]) {
      const b = Buffer.from(t);
      b.writeUInt32LE(n, nd);
      expect(refusal(() => readGguf(b)).message).toMatch(new RegExp(`tensor 'w' has ${n} dimensions`));
    }
    // A metadata string whose length claims 2^40 bytes.
    const m = Buffer.from(encodeGguf({ metadata: [['k', ggufValue.string('v')]], tensors: [] }));
    m.writeBigUInt64LE(1n << 40n, 24 + 8 + 1 + 4);
    expect(refusal(() => readGguf(m))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/string value needs 1099511627776 bytes/) });
    // An array of strings claiming 2^31 items in a file of a few dozen bytes.
    const a = Buffer.from(encodeGguf({ metadata: [['k', ggufValue.strings(['x'])]], tensors: [] }));
    a.writeBigUInt64LE(1n << 31n, 24 + 8 + 1 + 4 + 4);
    expect(refusal(() => readGguf(a)).message).toMatch(/array of 2147483648 STRING .* cannot fit/);
  });

  it('refuses a block_count beyond the blocks the file holds, naming the key, within a bounded number of lookups', () => {
    const spec = initModelSpec({ seed: 1, layers: 1 });
    for (const n of [2, 2 ** 31, 2 ** 32 - 1]) {
      spec.metadata = spec.metadata.map(([k, v]) => (k === 'llama.block_count' ? [k, ggufValue.u32(n)] : [k, v]));
      const file = readGguf(encodeGguf(spec));
      const r = refusal(() => ggufWeights(file));
      expect(r.code).toBe('ERR_MODEL_MISSING_TENSOR');
      expect(r.message).toMatch(new RegExp(`'llama.block_count' = ${n}, but the file holds tensors of 1 block`));
    }
  });

  it('checkedWeights refuses a configuration with more blocks than tensors after a bounded number of lookups', () => {
    const file = readGguf(encodeGguf(initModelSpec({ seed: 1, layers: 1 })));
    const config = { ...ggufConfig(file), blockCount: 2 ** 31 };
    let lookups = 0;
    class Counting extends Map<string, Weight> {
      override has(k: string): boolean { lookups++; return super.has(k); }
      override get(k: string): Weight | undefined { lookups++; return super.get(k); }
    }
    const map = new Counting(file.tensors.map((t) => [t.name, { name: t.name, format: t.format, shape: t.shape, bytes: file.bytes.subarray(t.offset, t.offset + t.byteLength) }]));
    expect(refusal(() => checkedWeights(config, map, 'x')).message).toMatch(/missing tensor 'blk\.1\.attn_norm\.weight' \(the configuration has 2147483648 blocks\)/);
    expect(lookups).toBeLessThan(100);
  });
});

describe('safetensors: header and spans bounded by the file', () => {
  const st = (header: object, data: number): Buffer => {
    const h = Buffer.from(JSON.stringify(header));
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(h.length), 0);
    return Buffer.concat([n, h, Buffer.alloc(data)]);
  };
  const t = (b: number, e: number, shape = [(e - b) / 4]) => ({ dtype: 'F32', shape, data_offsets: [b, e] });

  it('accepts a well-formed file', () => {
    expect(readSafetensors(st({ a: t(0, 16), b: t(16, 48) }, 48)).tensors).toHaveLength(2);
  });

  it('refuses a header length beyond the file', () => {
    const b = st({ a: t(0, 16) }, 16);
    b.writeBigUInt64LE(BigInt(b.length), 0);
    expect(refusal(() => readSafetensors(b))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/header length \d+ is absurd/) });
  });

  it('refuses data_offsets past the data section, naming the tensor', () => {
    expect(refusal(() => readSafetensors(st({ a: t(0, 16), b: t(16, 64) }, 48))).message).toMatch(/tensor 'b' data .* out of bounds/);
    expect(refusal(() => readSafetensors(st({ a: { dtype: 'F32', shape: [4], data_offsets: [8, 4] } }, 16))).message).toMatch(/tensor 'a' has bad data_offsets/);
  });

  it('refuses a dtype and shape that disagree with the byte span', () => {
    const r = refusal(() => readSafetensors(st({ a: t(0, 16, [5]) }, 16)));
    expect(r.code).toBe('ERR_MODEL_SHAPE');
    expect(r.message).toMatch(/tensor 'a' has 16 bytes, shape \[5\] in F32 needs 20/);
    // Dtypes never computed with are checked too (an I64 buffer such as position_ids).
    expect(refusal(() => readSafetensors(st({ p: { dtype: 'I64', shape: [3], data_offsets: [0, 16] } }, 16))).message).toMatch(/tensor 'p' has 16 bytes, shape \[3\] in I64 needs 24/);
    expect(refusal(() => readSafetensors(st({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 16] } }, 16))).code).toBe('ERR_MODEL_SHAPE');
  });

  it('refuses __metadata__ that is not an object of strings', () => {
    expect(refusal(() => readSafetensors(st({ __metadata__: { format: 5 }, a: t(0, 16) }, 16))).message).toMatch(/'__metadata__' must be an object of strings/);
    expect(refusal(() => readSafetensors(st({ __metadata__: null, a: t(0, 16) }, 16))).code).toBe('ERR_MODEL_FORMAT');
  });

  it('refuses overlapping spans, holes and bytes after the last span', () => {
    expect(refusal(() => readSafetensors(st({ a: t(0, 32), b: t(16, 48) }, 48))).message).toMatch(/tensors 'a' and 'b' overlap/);
    expect(refusal(() => readSafetensors(st({ a: t(0, 16), b: t(32, 48) }, 48))).message).toMatch(/tensor 'b' starts at 32 of the data section, 16 bytes after the end of 'a'/);
    expect(refusal(() => readSafetensors(st({ a: t(0, 16), b: t(16, 48) }, 64))).message).toMatch(/16 bytes of the data section follow the last tensor 'b'/);
  });
});
