/**
 * Cross-check against llama.cpp (node-llama-cpp, a dev dependency): it loads our init GGUF
 * files and its tokenizer must give the same ids as ours. node-llama-cpp is installed with the
 * dev dependencies, so a failure to import it, to load its CPU binary or to load a model is a
 * failure of this test, never a silent pass: a cross-check that quietly stops running proves
 * nothing.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel, loadModel } from '../lib/index.js';

const TEXTS = [
  'The river came down from the hills, and the people of the valley went out to watch it.',
  'Héllo wörld — naïve café, Ελληνικά, русский, 日本語, 🎉👩‍👩‍👧',
  "  leading, double  spaces, trailing  ",
  "don't stop; it's 3.14159!\n\nNew paragraph\ttab\r\nCRLF 1234567",
  'Questions are how we learn. Why does the sun rise in the east?',
];

describe('llama.cpp agrees with our tokenizer', () => {
  it('on init models (byte-level BPE, gpt-2 pre-tokenizer), f32 and q8_0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-llamacpp-'));
    const llamaCpp = await import('node-llama-cpp');
    const llama = await llamaCpp.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp.LlamaLogLevel.error });
    for (const format of ['f32', 'q8_0'] as const) {
      const p = join(dir, `${format}.gguf`);
      initModel(p, { seed: 21, format });
      const model = await llama.loadModel({ modelPath: p });
      const ours = (await loadModel(p)).tokenizer;
      for (const s of TEXTS) expect(ours.encode(s), s).toEqual(Array.from(model.tokenize(s, false)));
      expect(model.tokens.bos).toBe(ours.bosId);
      expect(model.tokens.eos).toBe(ours.eosId);
      await model.dispose();
    }
    await llama.dispose();
  });
});
