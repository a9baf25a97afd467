/**
 * Hugging Face tokenizer.json (with tokenizer_config.json beside it, bundle.ts), read as
 * loadModel reads them, then used: encode with and without special tokens, decode, chat
 * template. Seeds are a GPT-2 style byte-level BPE trained on the init corpus (NFC, ByteLevel),
 * a Llama 3 style one (Split regex, Digits, ignore_merges) and a Llama 2 style SentencePiece one
 * (Prepend + Replace normalisers, Metaspace, byte fallback, merges as pairs).
 */
import { fail } from '../../../lib/engine/errors.js';
import { hfTokenizer } from '../../../lib/model/tokenizer/hf.js';
import { trainByteLevelBpe } from '../../../lib/model/tokenizer/train.js';
import { INIT_CORPUS } from '../../../lib/model/tokenizer/corpus.js';
import { INIT_CHAT_TEMPLATE } from '../../../lib/model/init.js';
import { LLAMA3_PATTERN } from '../../../lib/model/tokenizer/pretokenize.js';
import { pack, unpack } from '../bundle.js';
import { JSON_TOKENS, mutateJson, type Json } from '../mutate-json.js';
import type { Rng } from '../prng.js';
import { runStages, type FuzzTarget } from '../target.js';

const TEXT = 'Hello, wörld! <|user|> 12345 ▁a <s>\n\t  tabs 🙂 ünïcödé';
const enc = new TextEncoder();

function byteLevel(llama3: boolean): { tok: unknown; config: unknown } {
  const bpe = trainByteLevelBpe(INIT_CORPUS, 300);
  const special = ['<|bos|>', '<|eos|>', '<|user|>'];
  const tok = {
    version: '1.0',
    added_tokens: special.map((content, i) => ({ id: bpe.tokens.length + i, content, special: i < 2 })),
    normalizer: llama3 ? null : { type: 'NFC' },
    pre_tokenizer: llama3
      ? { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false }, { type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, use_regex: false }] }
      : { type: 'ByteLevel', add_prefix_space: true, use_regex: true },
    decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', ignore_merges: llama3, vocab: Object.fromEntries(bpe.tokens.map((t, i) => [t, i])), merges: llama3 ? bpe.merges.map((m) => m.split(' ')) : bpe.merges },
  };
  return { tok, config: { bos_token: '<|bos|>', eos_token: { content: '<|eos|>' }, add_bos_token: llama3, chat_template: INIT_CHAT_TEMPLATE } };
}

function sentencepiece(): { tok: unknown; config: unknown } {
  const vocab = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), '▁', 'h', 'e', 'l', 'o', '▁h', 'll', '▁he', 'llo'];
  const tok = {
    added_tokens: [{ id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip' }] },
    model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), merges: [['▁', 'h'], ['l', 'l'], ['▁h', 'e'], ['ll', 'o']] },
  };
  return { tok, config: { bos_token: '<s>', eos_token: '</s>', chat_template: [{ name: 'default', template: '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}' }] } };
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    fail('ERR_MODEL_FORMAT', `${what}: not valid JSON (${(e as Error).message})`);
  }
}

function mutateTokenizer(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]): Uint8Array | null {
  const { first, second } = unpack(input);
  if (first === null) return null;
  const config = rng.chance(0.25);
  const others = seeds.map((s) => unpack(s)).map((u) => (config ? u.first : new TextDecoder().decode(u.second))).filter((t): t is string => t !== null).map((t) => JSON.parse(t) as Json);
  const next = mutateJson(config ? first : new TextDecoder().decode(second), rng, others);
  if (next === null) return null;
  return config ? pack(next, second) : pack(first, enc.encode(next));
}

export function tokenizerTarget(): FuzzTarget {
  return {
    name: 'tokenizer',
    async seeds() {
      return [byteLevel(false), byteLevel(true), sentencepiece()].map(({ tok, config }) => pack(JSON.stringify(config), enc.encode(JSON.stringify(tok))));
    },
    mutate: mutateTokenizer,
    structuredShare: 0.9,
    dictionary: JSON_TOKENS,
    async run(input) {
      const { first, second } = unpack(input);
      const config = first === null ? null : parse(first, 'tokenizer_config.json');
      const t = hfTokenizer(parse(new TextDecoder().decode(second), 'tokenizer.json'), config, { bos_token_id: 1, eos_token_id: [2] }, 'tokenizer.json');
      await runStages([
        () => t.decode(t.encode(TEXT, { addBos: t.bosId !== null, allowSpecial: true })),
        () => t.decode(t.encode(TEXT)),
        () => t.applyChatTemplate([{ role: 'system', content: 'be brief' }, { role: 'user', content: TEXT }]),
        () => t.encodeChat([{ role: 'system', content: 'be brief' }, { role: 'user', content: TEXT }], { addBos: t.bosId !== null }),
      ]);
    },
  };
}
