/**
 * Chat templates: the model's Jinja template (Hugging Face convention: `messages`, `bos_token`,
 * `eos_token`, `add_generation_prompt`) rendered with @huggingface/jinja. Without a template the
 * documented default is ChatML.
 */
import type { Template } from '@huggingface/jinja';
import { AtomaError, fail } from '../../engine/errors.js';
import { lazyRequire } from '../../engine/lazy.js';

/** Loaded by the first chat request, not by importing the model layer. */
const jinja = lazyRequire<typeof import('@huggingface/jinja')>('@huggingface/jinja');

/** ChatML, the default when a model carries no template. */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const compiled = new Map<string, Template>();

export function renderChat(
  template: string | null,
  messages: { role: string; content: string }[],
  vars: { bosToken: string; eosToken: string; addGenerationPrompt: boolean },
): string {
  if (!Array.isArray(messages) || messages.some((m) => typeof m?.role !== 'string' || typeof m?.content !== 'string')) {
    fail('ERR_ARGUMENT', 'chat messages must be {role: string, content: string} objects');
  }
  const src = template ?? DEFAULT_CHAT_TEMPLATE;
  let t = compiled.get(src);
  if (t === undefined) {
    try {
      t = new (jinja().Template)(src);
    } catch (e) {
      fail('ERR_TOKENIZER', `chat template does not parse: ${(e as Error).message}`);
    }
    compiled.set(src, t);
  }
  try {
    return t.render({ messages, bos_token: vars.bosToken, eos_token: vars.eosToken, add_generation_prompt: vars.addGenerationPrompt });
  } catch (e) {
    if (e instanceof AtomaError) throw e;
    fail('ERR_TOKENIZER', `chat template failed: ${(e as Error).message}`);
  }
}
