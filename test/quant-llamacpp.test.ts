/**
 * llama.cpp (node-llama-cpp, a dev dependency) as an oracle for the GGUF block types: an init
 * model of each type must load in llama.cpp, and its last-token logits must be close to ours.
 * Only close: llama.cpp's quantized matmuls round the activations to 8 bits, so this catches a
 * wrong block layout (which scrambles the weights and moves the logits by their own size), not
 * a rounding order; the exact oracles are in test/quant-types.test.ts. A failure to import
 * node-llama-cpp or to load a file fails the test, never passes it silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel, loadModel } from '../lib/index.js';
import { LlamaModel } from '../lib/model/llama.js';
import { BLOCK_TYPES, type BlockFormat } from '../lib/model/gguf/blocks.js';

const TOKENS = [3, 1, 4, 1, 5, 9, 2, 6];
let dir: string;
let llamaCpp: typeof import('node-llama-cpp');
let llama: Awaited<ReturnType<typeof import('node-llama-cpp')['getLlama']>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'atoma-quant-llamacpp-'));
  llamaCpp = await import('node-llama-cpp');
  llama = await llamaCpp.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp.LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(Object.keys(BLOCK_TYPES) as BlockFormat[])('llama.cpp loads %s init models', (format) => {
  it('and its logits are within 5% of the largest logit of ours', async () => {
    const p = join(dir, `${format}.gguf`);
    initModel(p, { seed: 5, layers: 2, dim: 256, heads: 4, kvHeads: 2, ff: 512, vocab: 300, context: 64, format });
    const model = await llama.loadModel({ modelPath: p });
    const ctx = await model.createContext({ contextSize: 64, batchSize: 64, flashAttention: false });
    const res = await ctx.getSequence().controlledEvaluate([...TOKENS.slice(0, -1), [TOKENS[TOKENS.length - 1], { generateNext: { logits: true } }]]);
    const theirs = res[res.length - 1]?.next?.logits;
    await ctx.dispose();
    await model.dispose();
    expect(theirs?.size).toBe(300);

    const lm = new LlamaModel((await loadModel(p)).weights);
    const ours = lm.forward([{ cache: lm.newCache(), tokens: TOKENS }])[0];
    let diff = 0, scale = 0;
    for (const [t, v] of theirs!) {
      diff = Math.max(diff, Math.abs(v - ours[t]));
      scale = Math.max(scale, Math.abs(ours[t]));
    }
    expect(scale).toBeGreaterThan(0.1);
    expect(diff / scale, `max |diff| ${diff}, max |logit| ${scale}`).toBeLessThan(5e-2);
  });
});
