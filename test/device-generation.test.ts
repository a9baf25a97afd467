/**
 * The device-resident generation path (lib/model/device-llama.ts and generate.ts's device runner)
 * run here without a GPU: the device-tensor bindings are answered by the CPU engine
 * (cpu-device-addon.ts) and the engine reports ATOMA_DEVICE=cuda. The path must give the host
 * path's tokens, outputDigest, traceRoot and leaves -- alone, batched, prefilled in chunks, with a
 * request leaving the batch early -- and free every device tensor it made except the model's
 * weights, also when a generation fails half-way. (On a GPU, scripts/cuda-conformance.mjs runs the
 * same path on the real bindings.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { native } from '../lib/engine/native.js';
import { generate, type GenerateRequest } from '../lib/model/generate.js';
import { DeviceLlama } from '../lib/model/device-llama.js';
import { LlamaModel } from '../lib/model/llama.js';
import type { WeightFormat } from '../lib/model/types.js';
import { cpuDevice } from './cpu-device-addon.js';
import { tinyModel } from './inference-model.js';

vi.mock('../lib/engine/device-tensor.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../lib/engine/device-tensor.js')>();
  const { cpuDevice: dev } = await import('./cpu-device-addon.js');
  return { ...real, deviceTensorsBuilt: () => true, gpu: () => dev };
});

const realInfo = native.info.bind(native);
function onDevice<T>(fn: () => T): T {
  const spy = vi.spyOn(native, 'info').mockImplementation(() => ({ ...realInfo(), device: 'cuda' }));
  try {
    return fn();
  } finally {
    spy.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());

const REQUESTS: GenerateRequest[] = [
  { prompt: [1], maxTokens: 6 },
  { prompt: [1, 17, 30, 42, 9, 77, 5], maxTokens: 8, temperature: 0.8, topK: 40, seed: 7 },
  { prompt: Array.from({ length: 33 }, (_, i) => (i * 37 + 3) % 96), maxTokens: 5, temperature: 1.1, topP: 0.9, seed: 99 },
  // Every id stops it: it leaves the batch after its first token while the others go on.
  { prompt: [4, 8, 15, 16, 23, 42], maxTokens: 9, stopTokens: Array.from({ length: 96 }, (_, i) => i) },
];

const MODELS: [string, WeightFormat, Parameters<typeof tinyModel>[1]][] = [
  ['f32', 'f32', {}],
  ['f16 tied, neox, partial rope', 'f16', { tiedEmbeddings: true, ropeNeox: true, ropeDims: 8 }],
  ['bf16 with Q/K/V biases', 'bf16', { attentionBias: true }],
  ['q8_0, llama3 rope scaling', 'q8_0', { ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 } }],
];

describe('generation with every activation on the device', () => {
  for (const [name, format, over] of MODELS) {
    it(`gives the host path's bytes: ${name}`, () => {
      const model = new LlamaModel(tinyModel(format, over, 3));
      const show = (rs: ReturnType<typeof generate>) =>
        rs.map((r) => ({ tokens: r.tokens, outputDigest: r.outputDigest, traceRoot: r.traceRoot, leaves: r.leaves.map((l) => l.toString('hex')) }));
      const runs: [string, () => ReturnType<typeof generate>][] = [
        ...REQUESTS.map((r, i): [string, () => ReturnType<typeof generate>] => [`request ${i} alone`, () => generate(model, [r])]),
        ['batched', () => generate(model, REQUESTS)],
        ['batched, prefill chunks of 5', () => generate(model, REQUESTS, { prefillChunk: 5 })],
        ['batched, prefill chunks of 1', () => generate(model, REQUESTS, { prefillChunk: 1 })],
      ];
      const weights = onDevice(() => {
        DeviceLlama.of(model);
        return cpuDevice.live.size;
      });
      for (const [what, run] of runs) {
        const host = show(run());
        const dev = show(onDevice(run));
        expect(dev, `${name}: ${what}`).toEqual(host);
        expect(cpuDevice.live.size, `${name}: ${what} left device tensors behind`).toBe(weights);
      }
    });
  }

  it('frees every cache and buffer when a generation fails half-way', () => {
    const model = new LlamaModel(tinyModel('f32', {}, 4));
    const weights = onDevice(() => {
      DeviceLlama.of(model);
      return cpuDevice.live.size;
    });
    let calls = 0;
    const boom = () => {
      if (++calls === 3) throw new Error('the consumer failed');
    };
    expect(() => onDevice(() => generate(model, REQUESTS, { prefillChunk: 4, onToken: boom }))).toThrow('the consumer failed');
    expect(cpuDevice.live.size).toBe(weights);
  });

  it('uploads the weights once per model', () => {
    const model = new LlamaModel(tinyModel('f16', { tiedEmbeddings: true }, 5));
    const before = cpuDevice.live.size;
    const c = model.config;
    onDevice(() => generate(model, [REQUESTS[1]]));
    const uploaded = cpuDevice.live.size - before;
    // Per layer 2 norms and 7 matrices, then the output norm and the head (here token_embd: the
    // embeddings themselves are widened on the host, row by row).
    expect(uploaded).toBe(c.blockCount * 9 + 2);
    onDevice(() => generate(model, [REQUESTS[0]]));
    expect(cpuDevice.live.size - before).toBe(uploaded);
  });
});
