/**
 * The tokenizer a GGUF file carries (tokenizer.ggml.*): `llama` (SentencePiece-style BPE with
 * scores and <0xNN> byte fallback) or `gpt2` (byte-level BPE with merges and a pre-tokenizer
 * named by tokenizer.ggml.pre). Token types: 1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte; control and user-defined tokens are matched before BPE.
 */
import { fail } from '../../engine/errors.js';
import { GgufMetadata } from '../gguf/reader.js';
import type { GgufFile } from '../gguf/types.js';
import { BpeTokenizer } from './bpe.js';
import { GGUF_PRE_PATTERNS, compilePattern } from './pretokenize.js';
import type { AddedToken } from './special.js';

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Splits a GGUF merge "left right" at its separating space. */
export function parseMerge(m: string, what: string): [string, string] {
  const i = m.indexOf(' ', 1);
  if (i < 0) fail('ERR_MODEL_FORMAT', `${what}: merge '${m}' has no separating space`);
  return [m.slice(0, i), m.slice(i + 1)];
}

/** Builds the tokenizer described by a GGUF file's metadata. */
export function ggufTokenizer(file: GgufFile, what = 'GGUF'): BpeTokenizer {
  const m = new GgufMetadata(file.metadata, what);
  const model = m.string('tokenizer.ggml.model');
  if (model === undefined) fail('ERR_MODEL_FORMAT', `${what}: no tokenizer (tokenizer.ggml.model is missing)`);
  if (model !== 'llama' && model !== 'gpt2') fail('ERR_MODEL_UNSUPPORTED', `${what}: tokenizer model '${model}' is not supported (llama or gpt2)`);
  const tokens = m.stringArray('tokenizer.ggml.tokens');
  if (tokens === undefined || tokens.length === 0) fail('ERR_MODEL_FORMAT', `${what}: tokenizer.ggml.tokens is missing or empty`);
  const types = m.numberArray('tokenizer.ggml.token_type');
  if (types !== undefined && types.length !== tokens.length) fail('ERR_MODEL_FORMAT', `${what}: ${types.length} token types for ${tokens.length} tokens`);
  const id = (key: string): number | null => {
    const v = m.number(key);
    if (v === undefined) return null;
    if (!Number.isInteger(v) || v < 0 || v >= tokens.length) fail('ERR_MODEL_FORMAT', `${what}: ${key} = ${v} is outside the vocabulary of ${tokens.length}`);
    return v;
  };
  const added: AddedToken[] = [];
  if (types) {
    for (let i = 0; i < tokens.length; i++) {
      if (types[i] === TOKEN_TYPE.CONTROL || types[i] === TOKEN_TYPE.USER_DEFINED) added.push({ id: i, content: tokens[i], special: types[i] === TOKEN_TYPE.CONTROL });
    }
  }
  const common = {
    tokens,
    added,
    bosId: id('tokenizer.ggml.bos_token_id'),
    eosId: id('tokenizer.ggml.eos_token_id'),
    unkId: id('tokenizer.ggml.unknown_token_id'),
    endOfTurnIds: [id('tokenizer.ggml.eot_token_id'), id('tokenizer.ggml.eom_token_id')],
    chatTemplate: m.string('tokenizer.chat_template') ?? null,
  };
  if (model === 'llama') {
    const scores = m.numberArray('tokenizer.ggml.scores');
    if (scores === undefined) fail('ERR_MODEL_FORMAT', `${what}: a llama tokenizer needs tokenizer.ggml.scores`);
    if (scores.length !== tokens.length) fail('ERR_MODEL_FORMAT', `${what}: ${scores.length} scores for ${tokens.length} tokens`);
    return new BpeTokenizer({
      ...common, kind: 'sentencepiece', scores, byteFallback: true,
      spacePrefix: m.bool('tokenizer.ggml.add_space_prefix') === false ? 'never' : 'after-special',
      addBos: m.bool('tokenizer.ggml.add_bos_token') ?? true,
    });
  }
  const merges = m.stringArray('tokenizer.ggml.merges');
  if (merges === undefined) fail('ERR_MODEL_FORMAT', `${what}: a gpt2 tokenizer needs tokenizer.ggml.merges`);
  const pre = m.string('tokenizer.ggml.pre') ?? 'default';
  // Own keys only: 'constructor' found Object.prototype's, and .map on it threw a TypeError.
  const patterns = Object.hasOwn(GGUF_PRE_PATTERNS, pre) ? GGUF_PRE_PATTERNS[pre] : undefined;
  if (patterns === undefined) fail('ERR_MODEL_UNSUPPORTED', `${what}: pre-tokenizer '${pre}' is not supported (${Object.keys(GGUF_PRE_PATTERNS).join(', ')})`);
  return new BpeTokenizer({
    ...common, kind: 'byte-level', merges: merges.map((s) => parseMerge(s, what)),
    patterns: patterns.map(compilePattern), ignoreMerges: pre === 'llama3' || pre === 'llama-bpe',
    addBos: m.bool('tokenizer.ggml.add_bos_token') ?? false,
  });
}
