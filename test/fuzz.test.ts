// The seeded mutation fuzzer (docs/fuzzing.md): ~300 cases per target, each of which must end in
// success or a typed error, never an untyped exception, a crash or a hang; the inputs that once
// failed (test/fuzz/corpus/<target>/); and the fuzzer's own check that it reports a planted bug.
// Cases run in child processes (test/fuzz/campaign.ts), so a case that aborts fails its test
// instead of killing the runner. `npm run fuzz -- --iterations N` runs long campaigns.
import { afterAll, describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomaError } from '../lib/engine/errors.js';
import { readGguf } from '../lib/model/gguf/reader.js';
import { ggufConfig, ggufWeights } from '../lib/model/gguf/llama.js';
import { encodeGguf, ggufValue } from '../lib/model/gguf/writer.js';
import { hfTokenizer } from '../lib/model/tokenizer/hf.js';
import { hfConfig, readSafetensors, safetensorsWeights } from '../lib/model/safetensors.js';
import { ggufTokenizer } from '../lib/model/tokenizer/gguf.js';
import { hfRopeScaling } from '../lib/model/rope-scaling.js';
import { validateEvent } from '../lib/protocol/validate.js';
import { actorOf, checkSignature, preverifyEvent } from '../lib/protocol/signing.js';
import { ApiError, parseRequest } from '../lib/node/openai.js';
import { formatFailures, runCampaign } from './fuzz/campaign.js';
import { TARGETS } from './fuzz/targets/index.js';

const CASES = 300;
const SEED = 'npm-test';
const failuresDir = mkdtempSync(join(tmpdir(), 'atoma-fuzz-failures-'));
const corpus = join(import.meta.dirname, 'fuzz', 'corpus');
// Failing inputs stay for a person to look at (the failure messages name them); planted ones do not.
afterAll(() => {
  for (const f of readdirSync(failuresDir)) if (f.startsWith('planted-bug-')) rmSync(join(failuresDir, f));
  if (readdirSync(failuresDir).length === 0) rmSync(failuresDir, { recursive: true });
});

describe('every fuzz case ends in success or a typed error', () => {
  for (const target of Object.keys(TARGETS)) {
    it(`${target}: ${CASES} cases`, async () => {
      const r = await runCampaign({ target, seed: SEED, iterations: CASES, failuresDir });
      expect(formatFailures(r)).toBe('');
      expect(r.cases).toBe(CASES);
      // The seeds run to success (a failing seed is reported above), and mutations are refused.
      expect(r.ok).toBeGreaterThan(0);
      expect(Object.keys(r.typed).length).toBeGreaterThan(0);
    });
  }
});

describe('corpus: inputs that once failed', () => {
  const dirs = existsSync(corpus) ? readdirSync(corpus).filter((d) => TARGETS[d]) : [];
  for (const target of dirs) {
    it(target, async () => {
      const files = readdirSync(join(corpus, target)).sort().map((f) => join(corpus, target, f));
      const r = await runCampaign({ target, seed: 'corpus', iterations: files.length, files, failuresDir });
      expect(formatFailures(r)).toBe('');
      expect(r.cases).toBe(files.length);
    });
  }
});

describe('parser bugs the fuzzer found, now typed refusals', () => {
  const code = (f: () => unknown) => {
    try {
      f();
      return 'ok';
    } catch (e) {
      return e instanceof AtomaError ? e.code : `untyped ${(e as Error).name}: ${(e as Error).message}`;
    }
  };
  const model = { type: 'BPE', vocab: { a: 0, b: 1 }, merges: [] };

  it('a GGUF claiming 2^31 - 1 blocks is refused at its first missing block (it built 2^31 * 9 names: 85 s, then a RangeError)', () => {
    const f = readGguf(readFileSync(join(corpus, 'gguf', 'block-count-2-31.gguf')));
    expect(code(() => ggufWeights(f))).toBe('ERR_MODEL_MISSING_TENSOR');
  });

  it('tokenizer.json: a Sequence whose list is not a list, and added_tokens that are not objects (TypeErrors)', () => {
    expect(code(() => hfTokenizer({ model, pre_tokenizer: { type: 'Sequence', pretokenizers: {} } }, null, null))).toBe('ERR_MODEL_FORMAT');
    expect(code(() => hfTokenizer({ model, normalizer: { type: 'Sequence', normalizers: 'NFC' } }, null, null))).toBe('ERR_MODEL_FORMAT');
    expect(code(() => hfTokenizer({ model, added_tokens: [null] }, null, null))).toBe('ERR_MODEL_FORMAT');
  });

  it('tokenizer.json: an added token id of 338,088,718 is refused before it grows the vocabulary to that size (a hang)', () => {
    expect(code(() => hfTokenizer({ model, added_tokens: [{ id: 338_088_718, content: '<|user|>', special: false }] }, null, null))).toBe('ERR_MODEL_FORMAT');
  });

  it('tokenizer_config.json: null among chat templates is skipped; a token text named like an Object method is not found on the prototype', () => {
    expect(hfTokenizer({ model }, { chat_template: [null, { name: 'default', template: 'x' }] }, null).chatTemplate).toBe('x');
    const t = hfTokenizer({ model: { ...model, unk_token: 'toString' } }, { bos_token: 'constructor' }, { bos_token_id: 1 });
    expect(t.bosId).toBe(1);
  });

  // JSON.parse accepts a list nested 6,000 deep, on which String() and JSON.stringify throw a
  // RangeError; an object with a "toString" key makes String() throw a TypeError. Either, built
  // into the message of a refusal, turned it into an untyped crash (lib/engine/brief.ts).
  it('a deeply nested list or an object with a toString key, named in a refusal, stays a typed refusal', () => {
    const deep = JSON.parse(`${'['.repeat(6000)}${']'.repeat(6000)}`) as unknown;
    const own = JSON.parse('{"toString": 0}') as unknown;
    const api = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return e instanceof ApiError ? e.type : code(() => { throw e; });
      }
    };
    for (const v of [deep, own]) {
      expect(code(() => hfTokenizer({ model: { ...model, vocab: { a: 0, b: v } } }, null, null))).toBe('ERR_MODEL_FORMAT');
      expect(code(() => hfTokenizer({ model: { ...model, type: v } }, null, null))).toBe('ERR_MODEL_UNSUPPORTED');
      expect(code(() => hfTokenizer({ model, pre_tokenizer: { type: v } }, null, null))).toBe('ERR_MODEL_UNSUPPORTED');
      expect(code(() => hfConfig({ model_type: v }, new Set()))).toBe('ERR_MODEL_UNSUPPORTED');
      expect(code(() => hfRopeScaling({ rope_type: 'linear', factor: v }, 'config.json'))).toBe('ERR_MODEL_FORMAT');
      expect(code(() => validateEvent({ type: v }))).toBe('ERR_EVENT');
      expect(api(() => parseRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: v }, 'chat', 64))).toBe('invalid_request_error');
    }
  });

  it('ledger: an event type that is a deep list, an object with a toString key or an Object method name has no signer (preverifyEvent threw a RangeError; found by campaign4, ledger case 1577)', async () => {
    const deep = JSON.parse(`${'['.repeat(6000)}${']'.repeat(6000)}`) as unknown;
    for (const type of [deep, JSON.parse('{"toString": 0}') as unknown, 'constructor', '__proto__']) {
      const e = { type, node: 'a'.repeat(64), nonce: '0'.repeat(32), sig: '0'.repeat(128) };
      expect(code(() => { void preverifyEvent(e); })).toBe('ok');
      expect(code(() => actorOf(e))).toBe('ok');
      expect(code(() => checkSignature(e))).toBe('ok');
      expect(actorOf(e)).toBeUndefined();
    }
  });

  it('GGUF: an architecture named like an Object method is unknown, not found on the prototype', () => {
    for (const arch of ['constructor', 'toString', '__proto__']) {
      const f = readGguf(encodeGguf({ metadata: [['general.architecture', ggufValue.string(arch)]], tensors: [] }));
      expect(code(() => ggufConfig(f))).toBe('ERR_MODEL_UNSUPPORTED');
    }
  });

  it('GGUF tokenizer.ggml.pre and safetensors dtype named like an Object method are unsupported (a TypeError, a dtype of NaN bytes)', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      const f = readGguf(encodeGguf({ metadata: [['tokenizer.ggml.model', ggufValue.string('gpt2')], ['tokenizer.ggml.tokens', ggufValue.strings(['a', 'b', 'ab'])],
        ['tokenizer.ggml.merges', ggufValue.strings(['a b'])], ['tokenizer.ggml.pre', ggufValue.string(name)]], tensors: [] }));
      expect(code(() => ggufTokenizer(f))).toBe('ERR_MODEL_UNSUPPORTED');
      const header = Buffer.from(JSON.stringify({ 'model.norm.weight': { dtype: name, shape: [2], data_offsets: [0, 8] } }));
      const bytes = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(8)]);
      bytes.writeBigUInt64LE(BigInt(header.length), 0);
      expect(code(() => safetensorsWeights([{ file: readSafetensors(bytes), what: 'x.safetensors' }]))).toBe('ERR_MODEL_UNSUPPORTED');
    }
  });
});

describe('the fuzzer can fail', () => {
  it('reports a planted TypeError, abort and hang with each input saved, and goes on after each', async () => {
    const r = await runCampaign({ target: 'planted-bug', seed: '1', iterations: 60, caseTimeoutMs: 5000, failuresDir });
    expect(r.cases).toBe(60);
    const kinds = new Set(r.failures.map((f) => f.kind));
    expect([...kinds].sort()).toEqual(['crash', 'hang', 'untyped']);
    // Each saved input is the one that did it: 'T' throws, 'A' aborts, 'H' hangs.
    const first = { untyped: 'T', crash: 'A', hang: 'H' } as Record<string, string>;
    for (const f of r.failures) expect(String.fromCharCode(readFileSync(f.file!)[0])).toBe(first[f.kind]);
    expect(r.failures.find((f) => f.kind === 'untyped')!.detail).toMatch(/^TypeError/);
    expect(formatFailures(r)).toContain('npm run fuzz -- --target planted-bug --seed "1" --case');
    // A replayed failing input fails the same way.
    const untyped = r.failures.find((f) => f.kind === 'untyped')!;
    const again = await runCampaign({ target: 'planted-bug', seed: '1', iterations: 1, files: [untyped.file!], failuresDir });
    expect(again.failures.map((f) => f.kind)).toEqual(['untyped']);
  });

  it('the same seed gives the same cases, another seed other cases', async () => {
    const run = (seed: string) => runCampaign({ target: 'openai', seed, iterations: 120, failuresDir: null });
    const [a, b, c] = [await run('s1'), await run('s1'), await run('s2')];
    expect({ ok: b.ok, typed: b.typed }).toEqual({ ok: a.ok, typed: a.typed });
    expect({ ok: c.ok, typed: c.typed }).not.toEqual({ ok: a.ok, typed: a.typed });
  });
});
