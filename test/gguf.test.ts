import { describe, it, expect, beforeAll, vi } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AtomaError, encodeGguf, readGguf, writeGguf, ggufValue, GgufValueType, loadModel, initModel, type GgufSpec,
} from '../lib/index.js';
import { initModelSpec } from '../lib/model/init.js';
import { ggufConfig, ggufWeights } from '../lib/model/gguf/llama.js';
import { quantizeQ8_0, dequantizeQ8_0, roundHalfEven } from '../lib/model/quantize.js';
import { f16ToF32 } from '../lib/engine/dtype.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-gguf-'));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AtomaError) return e.code;
    throw e;
  }
  return 'no error';
}

function message(fn: () => unknown): string {
  try { fn(); } catch (e) { return (e as Error).message; }
  return '';
}

/** The init spec with some tensors changed (for shape/missing-tensor errors). */
function variant(edit: (s: GgufSpec & { metadata: [string, any][]; tensors: any[] }) => void): Uint8Array {
  const s = initModelSpec({ seed: 1, layers: 1 }) as any;
  edit(s);
  return encodeGguf(s);
}

describe('GGUF reader and writer', () => {
  let spec: ReturnType<typeof initModelSpec>;
  let bytes: Uint8Array;
  beforeAll(() => {
    spec = initModelSpec({ seed: 3 });
    bytes = encodeGguf(spec);
  });

  it('round-trips metadata (with types) and tensors', () => {
    const f = readGguf(bytes);
    expect(f.version).toBe(3);
    expect(f.metadata.size).toBe(spec.metadata.length);
    for (const [k, e] of spec.metadata) {
      const got = f.metadata.get(k)!;
      expect(got.type).toBe(e.type);
      if (ArrayBuffer.isView(e.value)) expect(Array.from(got.value as Int32Array)).toEqual(Array.from(e.value as Int32Array));
      else if (e.type === GgufValueType.FLOAT32) expect(got.value).toBe(Math.fround(e.value as number));
      else expect(got.value).toEqual(e.value);
    }
    expect(f.tensors.map((t) => t.name)).toEqual(spec.tensors.map((t) => t.name));
    for (const [i, t] of f.tensors.entries()) {
      expect(t.shape).toEqual(spec.tensors[i].shape);
      expect(t.offset % 32).toBe(0);
      expect(Buffer.from(bytes.subarray(t.offset, t.offset + t.byteLength)).equals(Buffer.from(spec.tensors[i].data))).toBe(true);
    }
    // Writing what was read gives the same bytes.
    const again = encodeGguf({ metadata: f.metadata, tensors: f.tensors.map((t) => ({ name: t.name, format: t.format, shape: t.shape, data: bytes.subarray(t.offset, t.offset + t.byteLength) })) });
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });

  it('respects general.alignment for the data section and every tensor', () => {
    const s = initModelSpec({ seed: 3, layers: 1 });
    const meta = s.metadata.map(([k, v]): [string, any] => (k === 'general.alignment' ? [k, ggufValue.u32(256)] : [k, v]));
    const f = readGguf(encodeGguf({ metadata: meta, tensors: s.tensors }));
    expect(f.alignment).toBe(256);
    expect(f.dataOffset % 256).toBe(0);
    for (const t of f.tensors) expect(t.offset % 256).toBe(0);
    const bad = meta.map(([k, v]): [string, any] => (k === 'general.alignment' ? [k, ggufValue.u32(48)] : [k, v]));
    expect(() => encodeGguf({ metadata: bad, tensors: s.tensors })).toThrow(/power of two/);
  });

  it('maps llama metadata to the configuration', () => {
    const c = ggufConfig(readGguf(encodeGguf(initModelSpec({ seed: 1, layers: 3, dim: 96, heads: 6, kvHeads: 2, ff: 160, context: 1024, vocab: 300, bias: true, tied: true }))));
    expect(c).toEqual({
      architecture: 'llama', vocabSize: 300, contextLength: 1024, embeddingLength: 96, blockCount: 3, feedForwardLength: 160,
      headCount: 6, headCountKv: 2, headDim: 16, rmsNormEps: Math.fround(1e-5), ropeFreqBase: 10000, ropeDims: 16,
      ropeNeox: false, tiedEmbeddings: true, attentionBias: true,
    });
  });

  it('loads weights as views of the mapped file (never copied)', async () => {
    const path = join(dir, 'map.gguf');
    initModel(path, { seed: 5, format: 'q8_0' });
    const m = await loadModel(path);
    const size = readFileSync(path).length;
    const buffers = new Set(m.weights.names().map((n) => m.weights.get(n).bytes.buffer));
    expect(buffers.size).toBe(1);
    const [buf] = buffers;
    expect(buf.byteLength).toBe(size);
    const q = m.weights.get('blk.0.attn_q.weight');
    expect(q.format).toBe('q8_0');
    expect(q.bytes.length).toBe((64 * 64 / 32) * 34);
    expect(m.weights.get('blk.0.attn_norm.weight').format).toBe('f32');
    expect(code(() => m.weights.get('blk.9.attn_q.weight'))).toBe('ERR_MODEL_MISSING_TENSOR');
  });

  it('parses metadata with 150k tokens without a UTF-8 decoder call per short ASCII token', () => {
    const n = 150_000;
    const tokens = Array.from({ length: n }, (_, i) => (i % 7 === 0 ? `▁tök${i}` : `t${i}`));
    const b = encodeGguf({ metadata: [
      ['general.architecture', ggufValue.string('llama')],
      ['tokenizer.ggml.tokens', ggufValue.strings(tokens)],
      ['tokenizer.ggml.scores', ggufValue.f32s(new Float32Array(n))],
      ['tokenizer.ggml.token_type', ggufValue.i32s(new Int32Array(n).fill(1))],
    ], tensors: [] });
    // What keeps a large vocabulary fast is the ASCII fast path: a TextDecoder call per token
    // costs more than the rest of the parse. Counted, not timed: only the non-ASCII tokens and
    // the four keys longer than 16 bytes may reach the decoder.
    const decode = vi.spyOn(TextDecoder.prototype, 'decode');
    let f, decoded;
    try {
      f = readGguf(b);
      decoded = decode.mock.calls.length;
    } finally {
      decode.mockRestore();
    }
    const nonAscii = tokens.filter((t) => /[^\x00-\x7f]/.test(t)).length;
    expect(decoded).toBeGreaterThanOrEqual(nonAscii);
    expect(decoded).toBeLessThanOrEqual(nonAscii + 4);
    expect((f.metadata.get('tokenizer.ggml.tokens')!.value as string[])[149_997]).toBe('t149997');
    expect((f.metadata.get('tokenizer.ggml.tokens')!.value as string[])[7]).toBe('▁tök7');
  });
});

describe('GGUF validation', () => {
  const good = encodeGguf(initModelSpec({ seed: 2, layers: 1 }));
  const header = (magic: number, version: number, tensors: bigint, kvs: bigint) => {
    const b = new Uint8Array(24);
    const v = new DataView(b.buffer);
    v.setUint32(0, magic, true); v.setUint32(4, version, true); v.setBigUint64(8, tensors, true); v.setBigUint64(16, kvs, true);
    return b;
  };

  it('rejects bad magic, unsupported versions and truncation', () => {
    expect(code(() => readGguf(new TextEncoder().encode('GGML....')))).toBe('ERR_MODEL_FORMAT');
    expect(message(() => readGguf(new TextEncoder().encode('PK\x03\x04 zip')))).toMatch(/bad magic/);
    expect(code(() => readGguf(header(0x46554747, 2, 0n, 0n)))).toBe('ERR_MODEL_UNSUPPORTED');
    expect(message(() => readGguf(header(0x46554747, 2, 0n, 0n)))).toMatch(/version 2/);
    expect(code(() => readGguf(new Uint8Array(0)))).toBe('ERR_MODEL_FORMAT');
    // Cutting the file anywhere (header, metadata, tensor infos, data) is a format error.
    const f = readGguf(good);
    for (const cut of [3, 10, 30, 200, 5000, f.dataOffset - 5, f.dataOffset + 100, good.length - 1]) {
      expect(code(() => readGguf(good.subarray(0, cut))), `cut at ${cut}`).toBe('ERR_MODEL_FORMAT');
    }
    expect(message(() => readGguf(good.subarray(0, good.length - 1)))).toMatch(/out of bounds/);
  });

  it('guards absurd counts and lengths before allocating', () => {
    expect(message(() => readGguf(header(0x46554747, 3, 1n << 40n, 0n)))).toMatch(/tensor count .* absurd/);
    expect(message(() => readGguf(header(0x46554747, 3, 0n, 1n << 50n)))).toMatch(/metadata count .* absurd/);
    expect(message(() => readGguf(header(0x46554747, 3, 0n, 1n << 62n)))).toMatch(/absurd/);
    // A key whose length claims 2^40 bytes.
    const key = new Uint8Array(8);
    new DataView(key.buffer).setBigUint64(0, 1n << 40n, true);
    expect(message(() => readGguf(Buffer.concat([header(0x46554747, 3, 0n, 1n), key, new Uint8Array(8)])))).toMatch(/truncated/);
    // An array claiming 2^33 u32 items.
    const arr = encodeGguf({ metadata: [['a', ggufValue.i32s([1, 2, 3])]], tensors: [] });
    const bad = Buffer.from(arr);
    const countAt = 24 + 8 + 1 + 4 + 4; // header, key length + 'a', value type, item type
    bad.writeBigUInt64LE(1n << 33n, countAt);
    expect(message(() => readGguf(bad))).toMatch(/cannot fit/);
    // Unknown value type.
    const vt = Buffer.from(arr);
    vt.writeUInt32LE(99, 24 + 9);
    expect(message(() => readGguf(vt))).toMatch(/unknown metadata value type 99/);
  });

  it('rejects unknown tensor types and architectures', () => {
    const q4 = { name: 'x', format: 'f32' as const, shape: [32], data: new Uint8Array(128) };
    const b = Buffer.from(encodeGguf({ metadata: [], tensors: [q4] }));
    // The tensor info ends with type (u32) and offset (u64): set the type to IQ2_XXS (16), not read.
    const typeAt = b.indexOf(Buffer.from('x')) + 1 + 4 + 8;
    b.writeUInt32LE(16, typeAt);
    expect(code(() => readGguf(b))).toBe('ERR_MODEL_UNSUPPORTED');
    expect(message(() => readGguf(b))).toMatch(/type IQ2_XXS/);
    const gpt = variant((s) => { s.metadata[0] = ['general.architecture', ggufValue.string('gptneox')]; });
    expect(code(() => ggufWeights(readGguf(gpt)))).toBe('ERR_MODEL_UNSUPPORTED');
    expect(message(() => ggufWeights(readGguf(gpt)))).toMatch(/unknown architecture 'gptneox'/);
  });

  it('rejects shapes that disagree with the metadata, and missing tensors', () => {
    const wrong = variant((s) => { const t = s.tensors.find((x) => x.name === 'blk.0.attn_k.weight'); t.shape = [64, 32]; });
    expect(code(() => ggufWeights(readGguf(wrong)))).toBe('ERR_MODEL_SHAPE');
    expect(message(() => ggufWeights(readGguf(wrong)))).toMatch(/blk\.0\.attn_k\.weight.*\[64, 32\].*\[32, 64\]/);
    const missing = variant((s) => { s.tensors = s.tensors.filter((x) => x.name !== 'blk.0.ffn_up.weight'); });
    expect(code(() => ggufWeights(readGguf(missing)))).toBe('ERR_MODEL_MISSING_TENSOR');
    expect(message(() => ggufWeights(readGguf(missing)))).toMatch(/blk\.0\.ffn_up\.weight/);
    const heads = variant((s) => { s.metadata = s.metadata.map(([k, v]) => (k === 'llama.attention.head_count_kv' ? [k, ggufValue.u32(3)] : [k, v])); });
    expect(code(() => ggufWeights(readGguf(heads)))).toBe('ERR_MODEL_SHAPE');
    const noDim = variant((s) => { s.metadata = s.metadata.filter(([k]) => k !== 'llama.embedding_length'); });
    expect(message(() => ggufWeights(readGguf(noDim)))).toMatch(/llama\.embedding_length' is missing/);
  });

  it('rejects tensor data out of bounds, misaligned or overlapping', () => {
    const two = (off2: bigint) => {
      const t = (name: string) => ({ name, format: 'f32' as const, shape: [8], data: new Uint8Array(32) });
      const b = Buffer.from(encodeGguf({ metadata: [], tensors: [t('a'), t('b')] }));
      const at = b.indexOf(Buffer.from('b\x01\x00\x00\x00')) + 1 + 4 + 8 + 4;
      b.writeBigUInt64LE(off2, at);
      return b;
    };
    expect(() => readGguf(two(32n))).not.toThrow();
    expect(message(() => readGguf(two(0n)))).toMatch(/overlap/);
    expect(message(() => readGguf(two(16n)))).toMatch(/not a multiple of the alignment/);
    expect(message(() => readGguf(two(1n << 40n)))).toMatch(/out of bounds/);
  });
});

describe('q8_0 quantisation', () => {
  it('follows the documented rule on a hand-computed block', () => {
    const x = new Float32Array(32);
    x[0] = 1.27; x[1] = -0.635; x[2] = 0.005; x[3] = 0.015; x[4] = 0.025;
    const q = quantizeQ8_0(x);
    const v = new DataView(q.buffer);
    const d = f16ToF32(v.getUint16(0, true));
    // 1.27 / 127 = 0.01 rounds to the f16 0.010002136230...
    expect(d).toBeCloseTo(0.010002136, 8);
    expect([0, 1, 2, 3, 4].map((i) => v.getInt8(2 + i))).toEqual([127, -63, 0, 1, 2].map((n, i) => (i < 2 ? n : roundHalfEven(x[i] / d))));
    expect(v.getInt8(2 + 1)).toBe(roundHalfEven(-0.635 / d));
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(-2.5)).toBe(-2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(roundHalfEven(-0.4)).toBe(-0);
  });

  it('dequantises within half a step and is deterministic', () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)));
    const a = quantizeQ8_0(x);
    expect(Buffer.from(a).equals(Buffer.from(quantizeQ8_0(x)))).toBe(true);
    const y = dequantizeQ8_0(a);
    for (let b = 0; b < 8; b++) {
      const d = f16ToF32(new DataView(a.buffer).getUint16(b * 34, true));
      for (let i = 0; i < 32; i++) expect(Math.abs(y[b * 32 + i] - x[b * 32 + i])).toBeLessThanOrEqual(d / 2 + 1e-7);
    }
    expect(Array.from(dequantizeQ8_0(quantizeQ8_0(new Float32Array(32))))).toEqual(new Array(32).fill(0));
  });
});

describe('file writing', () => {
  it('writeGguf and encodeGguf give the same bytes', () => {
    const spec = initModelSpec({ seed: 9, format: 'f16', layers: 1 });
    const p = join(dir, 'w.gguf');
    writeGguf(p, spec);
    expect(readFileSync(p).equals(Buffer.from(encodeGguf(spec)))).toBe(true);
    writeFileSync(join(dir, 'x'), '');
  });
});
