/**
 * A Llama-3-style chat vocabulary on an init model: the five special tokens are renamed to
 * Llama 3's markers (plus `<|assistant|>` kept as a control token a user might type), and the
 * chat template is Llama 3's own, which writes `<|begin_of_text|>` itself and trims content.
 */
import { ggufValue, type GgufSpec } from '../lib/index.js';
import { initModelSpec } from '../lib/model/init.js';

export const LLAMA3_SPECIALS = ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>', '<|assistant|>'];

export const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

export function llama3ChatSpec(seed: number): GgufSpec {
  const spec = initModelSpec({ seed, layers: 1 });
  const metadata = spec.metadata.map(([k, v]): [string, typeof v] => {
    if (k === 'tokenizer.chat_template') return [k, ggufValue.string(LLAMA3_TEMPLATE)];
    if (k === 'tokenizer.ggml.tokens') {
      const tokens = [...(v.value as string[])];
      tokens.splice(tokens.length - LLAMA3_SPECIALS.length, LLAMA3_SPECIALS.length, ...LLAMA3_SPECIALS);
      return [k, ggufValue.strings(tokens)];
    }
    return [k, v];
  });
  return { metadata, tensors: spec.tensors };
}

/**
 * The Llama 3 rendering of `messages`, cut by hand into control markers (`special`) and raw text
 * runs: what llama.cpp reads when only the template's markers may be special.
 */
export function llama3Pieces(messages: { role: string; content: string }[]): { text: string; special: boolean }[] {
  const S = (text: string) => ({ text, special: true });
  const R = (text: string) => ({ text, special: false });
  const out = [S('<|begin_of_text|>')];
  for (const m of messages) out.push(S('<|start_header_id|>'), R(m.role), S('<|end_header_id|>'), R('\n\n' + m.content.trim()), S('<|eot_id|>'));
  out.push(S('<|start_header_id|>'), R('assistant'), S('<|end_header_id|>'), R('\n\n'));
  return out;
}
