/**
 * A Gemma-style SentencePiece vocabulary on an init model (tokenizer.ggml.model `llama`, no space
 * prefix, <pad> <eos> <bos> <unk> first, <start_of_turn>/<end_of_turn> control tokens, user-defined
 * whitespace runs, byte fallback, unused slots), with Gemma's chat template.
 */
import { ggufValue, type GgufEntry, type GgufSpec } from '../lib/index.js';
import { initModelSpec } from '../lib/model/init.js';

export const GEMMA_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

const PIECES = ['▁', 'e', 't', 'a', 'o', 'i', 'n', 's', 'h', 'r', 'l', 'd', 'u', 'c', 'm', 'w', 'f', 'g', 'y', 'p', 'b', 'v', 'k', '.', ',', '!', '?', "'",
  'th', 'he', 'in', 'er', 'an', '▁t', '▁a', '▁s', '▁w', 'the', '▁the', '▁th', 'ing', 'nd', '▁and', '▁an', 'er', 're', 'on', '▁o', '▁of', 'ou', 'ri', 'riv', 'river', '▁river',
  'hi', 'll', 'ill', 'hill', '▁hill', 'el', 'ello', 'hello', '▁hello', 'or', 'wor', 'world', '▁world', 'model', 'user', 'sy', 'sys', 'system'];

export function gemmaVocabSpec(seed: number): GgufSpec {
  const spec = initModelSpec({ seed, layers: 1 });
  const vocab = spec.metadata.find(([k]) => k === 'llama.vocab_size')![1].value as number;
  const tokens: string[] = ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>'];
  const types: number[] = [3, 3, 3, 2, 3, 3];
  for (let b = 0; b < 256; b++) { tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`); types.push(6); }
  for (const u of ['\n\n', '\n\n\n', '▁▁', '▁▁▁▁', '<h1>']) { tokens.push(u); types.push(4); }
  const firstPiece = tokens.length;
  for (const p of PIECES) if (!tokens.includes(p)) { tokens.push(p); types.push(1); }
  const scores = tokens.map((t, i) => (i >= firstPiece ? -(i - firstPiece) - (t.length === 1 ? 1000 : 0) : 0));
  while (tokens.length < vocab) { tokens.push(`<unused${tokens.length}>`); types.push(5); scores.push(0); }
  const replaced = new Map<string, GgufEntry>([
    ['tokenizer.ggml.model', ggufValue.string('llama')],
    ['tokenizer.ggml.tokens', ggufValue.strings(tokens)],
    ['tokenizer.ggml.token_type', ggufValue.i32s(types)],
    ['tokenizer.ggml.bos_token_id', ggufValue.u32(2)],
    ['tokenizer.ggml.eos_token_id', ggufValue.u32(1)],
    ['tokenizer.chat_template', ggufValue.string(GEMMA_TEMPLATE)],
  ]);
  const metadata: [string, GgufEntry][] = spec.metadata
    .filter(([k]) => k !== 'tokenizer.ggml.pre' && k !== 'tokenizer.ggml.merges')
    .map(([k, v]): [string, GgufEntry] => [k, replaced.get(k) ?? v]);
  metadata.push(
    ['tokenizer.ggml.scores', ggufValue.f32s(scores)],
    ['tokenizer.ggml.unknown_token_id', ggufValue.u32(3)],
    ['tokenizer.ggml.padding_token_id', ggufValue.u32(0)],
    ['tokenizer.ggml.add_space_prefix', ggufValue.bool(false)],
  );
  return { metadata, tensors: spec.tensors };
}
