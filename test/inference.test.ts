import { afterAll, describe, expect, it } from 'vitest';
import { configure, info } from '../lib/engine/config.js';
import { AtomaError } from '../lib/engine/errors.js';
import { native } from '../lib/engine/native.js';
import { matmulSync } from '../lib/engine/ops.js';
import { Tensor } from '../lib/engine/tensor.js';
import { generate, outputDigest } from '../lib/model/generate.js';
import { linear, widenRows } from '../lib/model/linear.js';
import { LlamaModel } from '../lib/model/llama.js';
import { argmaxLowest, candidates, sample, samplingUniform } from '../lib/model/sampler.js';
import { recomputeLeaf, selectLeaves } from '../lib/model/trace.js';
import type { WeightFormat } from '../lib/model/types.js';
import { makeWeight, referenceLogits, tinyModel } from './inference-model.js';

const ISAS = info().isas as ('scalar' | 'avx2' | 'avx512')[];
const initial = info();
afterAll(() => configure({ isa: initial.isa as 'scalar', threads: initial.threads }));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AtomaError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('gemmWeights', () => {
  it('equals widen-then-f32-gemm bit for bit on every ISA path and thread count', () => {
    for (const fmt of ['f32', 'f16', 'bf16', 'q8_0'] as WeightFormat[]) {
      for (const [M, N, K] of [[1, 37, 64], [3, 50, 288], [9, 70, 96], [40, 33, 544]]) {
        const w = makeWeight('w', fmt, [N, K], M * 7 + N, 0.25);
        const x = Tensor.f32([M, K], Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37) * 2));
        const bias = Float32Array.from({ length: N }, (_, i) => (i % 5) * 0.125 - 0.25);
        configure({ isa: 'scalar', threads: 1 });
        const ref = matmulSync(x, Tensor.f32([N, K], widenRows(w, 0, N)), { transposeB: true, bias: Tensor.f32([N], bias) }).data;
        for (const isa of ISAS) for (const threads of [1, 2, 3]) {
          configure({ isa, threads });
          const y = linear(x.data, M, w, bias);
          expect(Buffer.from(y.buffer).equals(Buffer.from(ref.buffer)), `${fmt} ${M}x${N}x${K} ${isa} t${threads}`).toBe(true);
        }
      }
    }
  });

  it('rejects wrong byte lengths and formats with typed errors', () => {
    const a = new Float32Array(64), c = new Float32Array(4);
    const g = (native as unknown as { gemmWeights: (...args: unknown[]) => void }).gemmWeights;
    expect(code(() => g(a, new Uint8Array(67), 'q8_0', c, 1, 2, 32, null, false))).toBe('ERR_WEIGHT_BYTES');
    expect(code(() => g(a, new Uint8Array(128), 'f16', c, 1, 2, 33, null, false))).toBe('ERR_WEIGHT_BYTES');
    expect(code(() => g(a, new Uint8Array(68), 'q8_0', c, 1, 2, 33, null, false))).toBe('ERR_SHAPE');
    expect(code(() => g(a, new Uint8Array(68), 'iq2_xxs', c, 1, 2, 32, null, false))).toBe('ERR_WEIGHT_FORMAT');
  });
});

describe('forward pass', () => {
  const variants: [string, WeightFormat, Parameters<typeof tinyModel>[1]][] = [
    ['f32', 'f32', {}],
    ['f16 tied, neox, partial rope', 'f16', { tiedEmbeddings: true, ropeNeox: true, ropeDims: 8 }],
    ['bf16 with attention bias', 'bf16', { attentionBias: true }],
    ['q8_0 MQA', 'q8_0', { headCountKv: 1 }],
  ];
  for (const [name, fmt, over] of variants) {
    it(`matches a float64 reference within 1e-4 (${name})`, () => {
      const w = tinyModel(fmt, over, 3);
      const model = new LlamaModel(w);
      const tokens = [1, 17, 5, 90, 33, 2, 64, 8, 41, 12];
      const [logits] = model.forward([{ cache: model.newCache(), tokens }], { allLogits: true });
      const ref = referenceLogits(w, tokens);
      const V = w.config.vocabSize;
      for (let t = 0; t < tokens.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        let maxAbs = 0, maxErr = 0, best = 0;
        for (let i = 0; i < V; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(ref[t][i]));
          maxErr = Math.max(maxErr, Math.abs(row[i] - ref[t][i]));
          if (ref[t][i] > ref[t][best]) best = i;
        }
        expect(maxErr / maxAbs, `row ${t}`).toBeLessThan(1e-4);
        expect(argmaxLowest(row)).toBe(best);
      }
    });
  }
});

describe('generation determinism', () => {
  const weights = tinyModel('q8_0', { attentionBias: true }, 5);
  const model = new LlamaModel(weights);
  const reqs = [
    { prompt: [3, 9, 27, 81 % 96, 50, 7, 1, 2, 3, 4, 5], maxTokens: 6, seed: 11n, temperature: 0.9, topK: 20, topP: 0.9 },
    { prompt: [1, 2], maxTokens: 4, seed: 12n },
    { prompt: Array.from({ length: 23 }, (_, i) => (i * 13) % 96), maxTokens: 5, seed: 2n ** 63n + 5n, temperature: 1.3 },
  ];
  const key = (r: { tokens: number[]; outputDigest: string; traceRoot: string }) => `${r.tokens.join(',')}|${r.outputDigest}|${r.traceRoot}`;

  it('gives the same tokens, digest and trace alone, batched, chunked, on every ISA and thread count', () => {
    configure({ isa: 'scalar', threads: 1 });
    const alone = reqs.map((r) => key(generate(model, [r])[0]));
    for (const isa of ISAS) for (const threads of [1, 2]) {
      configure({ isa, threads });
      for (const chunk of [undefined, 1, 4]) {
        const batched = generate(model, reqs, { prefillChunk: chunk }).map(key);
        expect(batched, `${isa} t${threads} chunk ${chunk}`).toEqual(alone);
      }
      const reversed = generate(model, [...reqs].reverse(), { prefillChunk: 3 }).map(key).reverse();
      expect(reversed).toEqual(alone);
    }
    const one = generate(model, [reqs[0]])[0];
    expect(one.leaves.length).toBe(6 * weights.config.blockCount);
    expect(one.outputDigest).toBe(outputDigest(one.tokens));
    // A different seed changes a sampled request (with overwhelming probability at T = 0.9).
    expect(key(generate(model, [{ ...reqs[0], seed: 99n }])[0])).not.toBe(alone[0]);
  });

  it('recomputes any (step, layer) leaf from the agreed layer inputs', () => {
    const L = weights.config.blockCount, D = weights.config.embeddingLength;
    const r = reqs[0];
    const res = generate(model, [r]);
    const all = [...r.prompt, ...res[0].tokens.slice(0, -1)];
    // The agreed state: every layer's outputs over all positions (a full prefill of all tokens).
    const inputs: Float32Array[] = [model.embed(all)];
    model.forward([{ cache: model.newCache(), tokens: all }], { onLayer: (_s, _l, rows) => inputs.push(rows.slice()) });
    const step = 3, layer = 1;
    const upTo = r.prompt.length + step;
    const { hash } = recomputeLeaf(model, layer, inputs[layer].subarray(0, upTo * D), upTo - 1);
    const [leaf] = selectLeaves(res[0].leaves, L, [step, step + 1], [layer, layer + 1]);
    expect(leaf.index).toBe(step * L + layer);
    expect(hash.toString('hex')).toBe(leaf.hex);
    const step0 = recomputeLeaf(model, 0, inputs[0].subarray(0, r.prompt.length * D), 0);
    expect(step0.hash.toString('hex')).toBe(Buffer.from(res[0].leaves[0]).toString('hex'));
  });

  it('rejects malformed requests with typed errors', () => {
    const bad: [unknown, string][] = [
      [{ prompt: [], maxTokens: 1 }, 'ERR_ARGUMENT'],
      [{ prompt: [96], maxTokens: 1 }, 'ERR_RANGE'],
      [{ prompt: [1.5], maxTokens: 1 }, 'ERR_RANGE'],
      [{ prompt: [1], maxTokens: 0 }, 'ERR_ARGUMENT'],
      [{ prompt: [1], maxTokens: 200 }, 'ERR_RANGE'],
      [{ prompt: [1], maxTokens: 1, temperature: -1 }, 'ERR_ARGUMENT'],
      [{ prompt: [1], maxTokens: 1, topP: 0 }, 'ERR_ARGUMENT'],
      [{ prompt: [1], maxTokens: 1, topK: 1.5 }, 'ERR_ARGUMENT'],
      [{ prompt: [1], maxTokens: 1, seed: -1 }, 'ERR_ARGUMENT'],
      [{ prompt: [1], maxTokens: 1, seed: 2n ** 64n }, 'ERR_ARGUMENT'],
      [null, 'ERR_ARGUMENT'],
    ];
    for (const [r, c] of bad) expect(code(() => generate(model, [r as never])), JSON.stringify(r, (_k, v) => typeof v === 'bigint' ? String(v) : v)).toBe(c);
    expect(code(() => generate(model, [{ prompt: [1], maxTokens: 1 }], { prefillChunk: 0 }))).toBe('ERR_ARGUMENT');
  });
});

describe('sampler', () => {
  it('greedy breaks ties by the lower id and skips NaN', () => {
    expect(sample(Float32Array.from([1, 3, NaN, 3, 2]), {}, 0n, 0)).toBe(1);
    expect(sample(Float32Array.from([NaN, -Infinity, -Infinity]), { temperature: 0 }, 0n, 0)).toBe(1);
    expect(sample(Float32Array.from([0, 5, 1]), { temperature: 1, topK: 1 }, 0n, 0)).toBe(1);
  });

  it('top-k and top-p keep the right candidates in canonical order', () => {
    const logits = Float32Array.from([1, 4, 2, 4, 0, 3]);
    const all = candidates(logits, { temperature: 1 });
    expect([...all.ids]).toEqual([1, 3, 5, 2, 0, 4]);
    expect([...candidates(logits, { temperature: 1, topK: 3 }).ids]).toEqual([1, 3, 5]);
    // p = [1, 1, e^-1, e^-2, e^-3, e^-4]; c ~ [1, 2, 2.37, 2.50, 2.55, 2.57]; 0.8 * 2.57 = 2.06
    expect([...candidates(logits, { temperature: 1, topP: 0.8 }).ids]).toEqual([1, 3, 5]);
    expect([...candidates(logits, { temperature: 1, topP: 0.3 }).ids]).toEqual([1]);
    const c = all.cumulative;
    for (let i = 1; i < c.length; i++) expect(c[i]).toBeGreaterThanOrEqual(c[i - 1]);
    expect(c[0]).toBe(1);
  });

  it('draws from Philox(seed, step) and follows the distribution', () => {
    expect(samplingUniform(5n, 3)).toBe(samplingUniform(5n, 3));
    expect(samplingUniform(5n, 3)).not.toBe(samplingUniform(5n, 4));
    const u = samplingUniform(5n, 3);
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThan(1);
    // Two tokens with probabilities 1/(1+e^-1) and e^-1/(1+e^-1) ~ 0.731 / 0.269.
    const logits = Float32Array.from([0, 1, -50]);
    let ones = 0;
    for (let s = 0; s < 2000; s++) ones += sample(logits, { temperature: 1, topK: 2 }, 77n, s) === 1 ? 1 : 0;
    expect(ones / 2000).toBeGreaterThan(0.70);
    expect(ones / 2000).toBeLessThan(0.76);
    // The token is exactly the first cumulative sum above u * total.
    const { ids, cumulative } = candidates(logits, { temperature: 1 });
    for (let s = 0; s < 50; s++) {
      const t = Math.fround(samplingUniform(9n, s) * cumulative[cumulative.length - 1]);
      const expected = ids[cumulative.findIndex((c) => c > t)];
      expect(sample(logits, { temperature: 1 }, 9n, s)).toBe(expected);
    }
  });
});
