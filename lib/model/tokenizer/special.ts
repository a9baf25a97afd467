/**
 * Added tokens (special markers like <|eos|> and user-defined pieces) are matched in the raw text
 * before any normalisation or BPE, longest first, so they always become their own ids.
 */

export interface AddedToken {
  id: number;
  content: string;
  /** Special (control) tokens are matched only when the caller allows special tokens. */
  special: boolean;
}

export type Fragment = { text: string } | { id: number; content: string; special: boolean };

/** Splits text into raw fragments and matched added tokens. */
export function splitAdded(text: string, tokens: readonly AddedToken[], allowSpecial: boolean): Fragment[] {
  const byFirst = candidates(tokens, allowSpecial);
  if (byFirst.size === 0) return text ? [{ text }] : [];
  const out: Fragment[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const cands = byFirst.get(text[i]);
    const hit = cands?.find((t) => text.startsWith(t.content, i));
    if (hit) {
      if (i > start) out.push({ text: text.slice(start, i) });
      out.push({ id: hit.id, content: hit.content, special: hit.special });
      i += hit.content.length;
      start = i;
    } else {
      i++;
    }
  }
  if (start < text.length) out.push({ text: text.slice(start) });
  return out;
}

/**
 * Added tokens by first character, longest first, built once per token list: Gemma files carry
 * thousands of user-defined tokens, and a chat splits each of its pieces separately.
 */
const tables = new WeakMap<readonly AddedToken[], [Map<string, AddedToken[]>, Map<string, AddedToken[]>]>();

function candidates(tokens: readonly AddedToken[], allowSpecial: boolean): Map<string, AddedToken[]> {
  let t = tables.get(tokens);
  if (t === undefined) {
    t = [table(tokens, false), table(tokens, true)];
    tables.set(tokens, t);
  }
  return t[allowSpecial ? 1 : 0];
}

function table(tokens: readonly AddedToken[], allowSpecial: boolean): Map<string, AddedToken[]> {
  const active = tokens.filter((t) => t.content.length > 0 && (allowSpecial || !t.special));
  // Longest content first so "<|end|>" never shadows "<|end_of_text|>".
  active.sort((a, b) => b.content.length - a.content.length || a.id - b.id);
  const byFirst = new Map<string, AddedToken[]>();
  for (const t of active) {
    const list = byFirst.get(t.content[0]);
    if (list) list.push(t);
    else byFirst.set(t.content[0], [t]);
  }
  return byFirst;
}
