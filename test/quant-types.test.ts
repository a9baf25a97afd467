/**
 * GGUF block types (q4_0 .. mxfp4): each decodes to the values of docs/canonical-arithmetic.md
 * ("GGUF block types"), worked out here with Math.fround step by step; the native widening and
 * the TypeScript decoder agree on random blocks; a product against a quantized weight has the
 * bytes of the product against its f32 dequantisation on every ISA and thread count; init models
 * of every block type load and give the same digests on every ISA and thread count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configure, info } from '../lib/engine/config.js';
import { generate } from '../lib/model/generate.js';
import { BLOCK_TYPES, type BlockFormat } from '../lib/model/gguf/blocks.js';
import { initModel } from '../lib/model/init.js';
import { readGguf } from '../lib/model/gguf/reader.js';
import { writeGguf } from '../lib/model/gguf/writer.js';
import { linear, widenRows } from '../lib/model/linear.js';
import { loadModel } from '../lib/model/load.js';
import { LlamaModel } from '../lib/model/llama.js';

const f = Math.fround;
const initial = info();
const isas = (['scalar', 'avx2', 'avx512'] as const).filter((i) => initial.isas?.includes(i) ?? i === 'scalar');
afterAll(() => configure({ isa: initial.isa as 'scalar', threads: initial.threads }));

/** Weights of `blocks` (one row) widened by the engine: a product with the identity matrix. */
function nativeWeights(format: BlockFormat, bytes: Uint8Array, k: number): Float32Array {
  const eye = new Float32Array(k * k);
  for (let i = 0; i < k; i++) eye[i * k + i] = 1;
  return linear(eye, k, { name: 'w', format, shape: [1, k], bytes });
}
function tsWeights(format: BlockFormat, bytes: Uint8Array, k: number): Float32Array {
  return widenRows({ name: 'w', format, shape: [1, k], bytes }, 0, 1);
}
const put16 = (b: Uint8Array, at: number, v: number) => { b[at] = v & 255; b[at + 1] = v >> 8; };

describe('known answers', () => {
  it('q4_0, q4_1 (subnormal scale, a rounding tie), q5_0 (high bits), mxfp4 (subnormal scale)', () => {
    const a = new Uint8Array(18); put16(a, 0, 0x3800); a.fill(0xf3, 2);
    const b = new Uint8Array(20); put16(b, 0, 0x0001); put16(b, 2, 0x3c00); b[4] = 0x09;
    const c = new Uint8Array(22); put16(c, 0, 0x3c00); c[2] = 1; c[4] = 1; c[6] = 0x21;
    const d = new Uint8Array(17); d[0] = 1; d[1] = 0xf7;
    for (const w of [nativeWeights, tsWeights]) {
      const ya = w('q4_0', a, 32), yb = w('q4_1', b, 32), yc = w('q5_0', c, 32), yd = w('mxfp4', d, 32);
      expect([ya[0], ya[16]]).toEqual([(3 - 8) * 0.5, (15 - 8) * 0.5]);
      expect(yb[0]).toBe(f(f(9 * 2 ** -24) + 1));   // the tie 1 + 4.5 ulp rounds to even
      expect(yb[0]).toBe(1 + 2 ** -21);
      expect([yc[0], yc[16], yc[1]]).toEqual([1, 2, -16]);
      expect([yd[0], yd[16]]).toEqual([12 * 2 ** -127, -12 * 2 ** -127]);
    }
  });

  it('q4_k and q5_k: 6-bit scales and mins in both packings, d1 * q - m1 rounded once', () => {
    const b = new Uint8Array(144);
    put16(b, 0, 0x3c01);          // d = 1 + 2^-10
    put16(b, 2, 0x3555);          // dmin = 0.333251953125
    b[4] = 5 | (2 << 6); b[8] = 3 | (1 << 6); b[12] = 0x7a;   // sc0 5, m0 3; sc4 = 10 | 2 << 4 = 42, m4 = 7 | 1 << 4 = 23
    b.fill(0x5b, 16);
    const d = f(1 + 2 ** -10), dmin = f(0.333251953125);
    const want0 = f(f(f(d * 5) * 11) - f(dmin * 3)), want128 = f(f(f(d * 42) * 11) - f(dmin * 23));
    for (const w of [nativeWeights, tsWeights]) {
      const y = w('q4_k', b, 256);
      expect([y[0], y[128], y[32]]).toEqual([want0, want128, f(f(d * 0) * 5) - f(dmin * 0)]);
    }
    // q5_k: the same scales, qh bit 0 of byte 0 sets weight 0's fifth bit, bit 3 weight 96 + 0's.
    const c = new Uint8Array(176);
    c.set(b.subarray(0, 16));
    c[16] = 0b1001;
    c.fill(0x5b, 48);
    for (const w of [nativeWeights, tsWeights]) {
      const y = w('q5_k', c, 256);
      expect(y[0]).toBe(f(f(f(d * 5) * 27) - f(dmin * 3)));
      expect(y[96]).toBe(f(f(0 * 21) - 0));   // sub-block 3: scale 0, min 0
    }
  });

  it('q6_k, q3_k, q2_k and iq4_xs', () => {
    const six = new Uint8Array(210); put16(six, 208, 0x0400); six[0] = 7; six[128] = 3; six[192] = 256 - 3;
    const three = new Uint8Array(110); put16(three, 108, 0x3c00);
    three[96] = 0x0f; three[104] = 0x02;   // scale 0 = 15 | 2 << 4 = 47 -> 15; hmask 0: q - 4
    three[32] = 0x03;                       // weight 0: low bits 3
    const two = new Uint8Array(84); put16(two, 80, 0x3c00); put16(two, 82, 0x3800);
    two[0] = 0x35; two[16] = 0x02;          // sub-block 0: scale 5, min 3; weight 0: q 2
    const xs = new Uint8Array(136); put16(xs, 0, 0x3c00); put16(xs, 2, 0x0008); xs[4] = 0x30; xs[8] = 0x0f;
    for (const w of [nativeWeights, tsWeights]) {
      expect(w('q6_k', six, 256)[0]).toBe(f(f(2 ** -14 * -3) * 23));
      expect(w('q3_k', three, 256)[0]).toBe(15 * (3 - 4));
      expect(w('q2_k', two, 256)[0]).toBe(f(5 * 2 - f(0.5 * 3)));
      const y = w('iq4_xs', xs, 256);
      expect([y[0], y[32]]).toEqual([-32 * 113, 3 * -127]);
    }
  });
});

/** Seeded random bytes with finite f16 scales (exponents 0..14, subnormals included). */
function randomBlocks(format: BlockFormat, rows: number, k: number, seed: number): Uint8Array {
  const t = BLOCK_TYPES[format];
  const out = new Uint8Array((rows * k / t.weights) * t.bytes);
  let s = seed;
  for (let i = 0; i < out.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; out[i] = s >>> 24; }
  const f16At: Record<BlockFormat, number[]> = {
    q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q2_k: [80, 82], q3_k: [108], q4_k: [0, 2], q5_k: [0, 2],
    q6_k: [208], iq4_nl: [0], iq4_xs: [0], mxfp4: [],
  };
  for (let b = 0; b < out.length / t.bytes; b++) {
    for (const at of f16At[format]) out[b * t.bytes + at + 1] = (out[b * t.bytes + at + 1] & 0x83) | ((b % 15) << 2);
    if (format === 'mxfp4') out[b * t.bytes] = 100 + (out[b * t.bytes] % 50);
  }
  return out;
}

const FORMATS = Object.keys(BLOCK_TYPES) as BlockFormat[];

describe.each(FORMATS)('%s', (format) => {
  const k = BLOCK_TYPES[format].weights * 3;
  it('the engine and the TypeScript decoder agree on random blocks', () => {
    const bytes = randomBlocks(format, 1, k, 7);
    // The identity product turns -0 into +0 (fma(1, -0, +0) = +0), so the decoder's -0 is compared as +0.
    expect(Buffer.from(nativeWeights(format, bytes, k).buffer)).toEqual(Buffer.from(tsWeights(format, bytes, k).map((v) => v + 0).buffer));
  });

  it('products equal the products over the f32 dequantisation, on every ISA and thread count', () => {
    const n = 37;
    const bytes = randomBlocks(format, n, k, 3);
    const deq = widenRows({ name: 'w', format, shape: [n, k], bytes }, 0, n);
    const f32 = { name: 'w', format: 'f32' as const, shape: [n, k], bytes: new Uint8Array(deq.buffer) };
    for (const m of [1, 5]) {
      const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 2);
      configure({ isa: 'scalar', threads: 1 });
      const want = Buffer.from(linear(x, m, f32).buffer);
      for (const isa of isas)
        for (const threads of [1, 2, 3]) {
          configure({ isa, threads });
          expect(Buffer.from(linear(x, m, { name: 'w', format, shape: [n, k], bytes }).buffer), `${isa} x${threads} M=${m}`).toEqual(want);
        }
    }
  });

  it('a row that is not a whole number of blocks is refused by name', () => {
    expect(() => widenRows({ name: 'w', format, shape: [1, 16], bytes: new Uint8Array(64) }, 0, 1)).toThrow(/multiple of/);
  });
});

describe('init models of the block types', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'atoma-quant-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['q4_k', 'q6_k', 'q4_0', 'mxfp4'] as const)('%s: loads, and digests are equal across ISA x threads', async (format) => {
    const file = join(dir, `m-${format}.gguf`);
    initModel(file, { seed: 5, layers: 1, dim: 256, heads: 4, kvHeads: 2, ff: 512, vocab: 300, context: 64, format });
    const model = await loadModel(file);
    expect(model.weights.get('blk.0.attn_q.weight').format).toBe(format);
    const digests = new Set<string>();
    for (const isa of isas)
      for (const threads of [1, 3]) {
        configure({ isa, threads });
        const [r] = generate(new LlamaModel(model.weights), [{ prompt: [5, 17, 42, 99, 7], maxTokens: 4 }]);
        digests.add(r.outputDigest);
        const logits = new LlamaModel(model.weights).forward([{ cache: new LlamaModel(model.weights).newCache(), tokens: [3, 1, 4] }])[0];
        expect(logits.every(Number.isFinite)).toBe(true);
      }
    expect(digests.size).toBe(1);
  });

  it('a Q4_K_M-style mix (q4_k, q6_k for attn_v and ffn_down, f32 vectors) loads as stored and runs', async () => {
    const opts = { seed: 9, layers: 1, dim: 256, heads: 4, kvHeads: 2, ff: 512, vocab: 300, context: 64 };
    const a = join(dir, 'mix-q4_k.gguf'), b = join(dir, 'mix-q6_k.gguf'), mixed = join(dir, 'mix.gguf');
    initModel(a, { ...opts, format: 'q4_k' });
    initModel(b, { ...opts, format: 'q6_k' });
    const fa = readGguf(a), fb = readGguf(b);
    const six = (n: string) => /attn_v|ffn_down/.test(n);
    writeGguf(mixed, {
      metadata: fa.metadata,
      tensors: fa.tensors.map((t) => {
        const src = six(t.name) ? fb.tensors.find((u) => u.name === t.name)! : t;
        const file = six(t.name) ? fb : fa;
        return { name: t.name, format: src.format, shape: src.shape, data: file.bytes.subarray(src.offset, src.offset + src.byteLength) };
      }),
    });
    const model = await loadModel(mixed);
    expect(model.weights.get('blk.0.attn_v.weight').format).toBe('q6_k');
    expect(model.weights.get('blk.0.attn_k.weight').format).toBe('q4_k');
    expect(model.weights.get('blk.0.attn_norm.weight').format).toBe('f32');
    const digests = new Set<string>();
    for (const isa of isas) {
      configure({ isa, threads: 2 });
      digests.add(generate(new LlamaModel(model.weights), [{ prompt: [5, 17, 42], maxTokens: 3 }])[0].outputDigest);
    }
    expect(digests.size).toBe(1);
  });
});
