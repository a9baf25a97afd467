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

/** A piece of a rendered chat: the template's own text (special markers allowed) or message content (plain text). */
export interface ChatSegment {
  text: string;
  special: boolean;
}

/**
 * Renders a chat and says which parts of the result are message content. Each content is wrapped
 * in two Unicode noncharacters that appear nowhere else, rendered, and cut out again; the result is
 * accepted only when it equals the plain rendering, first with the content as given and then trimmed
 * (Llama 3 style templates apply `| trim`); changes that leave the markers in place (`| upper`) keep
 * the content apart too. A template that changes content any other way (slices it) is refused:
 * guessing would let a user's text reach the tokenizer as control tokens.
 */
export function renderChatSegments(
  template: string | null,
  messages: { role: string; content: string }[],
  vars: { bosToken: string; eosToken: string; addGenerationPrompt: boolean },
): ChatSegment[] {
  const plain = renderChat(template, messages, vars);
  const used = [template ?? DEFAULT_CHAT_TEMPLATE, vars.bosToken, vars.eosToken, ...messages.map((m) => m.content + m.role)].join('');
  let open = '';
  let close = '';
  for (let k = 0xfdd0; k < 0xfdf0; k += 2) {
    const a = String.fromCharCode(k);
    const b = String.fromCharCode(k + 1);
    if (!used.includes(a) && !used.includes(b)) { open = a; close = b; break; }
  }
  if (!open) fail('ERR_TOKENIZER', 'chat messages use every Unicode noncharacter U+FDD0..U+FDEF, which mark message content');
  for (const shape of [(s: string) => s, (s: string) => s.trim()]) {
    const wrapped = messages.map((m) => ({ ...m, content: open + shape(m.content) + close }));
    const segs = cutSegments(renderChat(template, wrapped, vars), open, close);
    if (segs !== null && segs.map((s) => s.text).join('') === plain) return segs;
  }
  fail('ERR_TOKENIZER', 'the chat template changes message content in a way that cannot be told apart from its own text (only as-is or trimmed content is supported)');
}

/** Splits a rendering at the content markers; null when they do not pair up. */
function cutSegments(rendered: string, open: string, close: string): ChatSegment[] | null {
  const out: ChatSegment[] = [];
  let at = 0;
  for (;;) {
    const o = rendered.indexOf(open, at);
    const c = rendered.indexOf(close, at);
    if (o < 0) {
      if (c >= 0) return null;
      if (at < rendered.length) out.push({ text: rendered.slice(at), special: true });
      return out;
    }
    if (c < o) return null;
    const c2 = rendered.indexOf(close, o);
    const o2 = rendered.indexOf(open, o + 1);
    if (o2 >= 0 && o2 < c2) return null;
    if (o > at) out.push({ text: rendered.slice(at, o), special: true });
    if (c2 > o + 1) out.push({ text: rendered.slice(o + 1, c2), special: false });
    at = c2 + 1;
  }
}
