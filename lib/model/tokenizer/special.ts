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
  const active = tokens.filter((t) => t.content.length > 0 && (allowSpecial || !t.special));
  if (active.length === 0) return text ? [{ text }] : [];
  // Longest content first so "<|end|>" never shadows "<|end_of_text|>".
  active.sort((a, b) => b.content.length - a.content.length || a.id - b.id);
  const byFirst = new Map<string, AddedToken[]>();
  for (const t of active) {
    const k = t.content[0];
    byFirst.set(k, [...(byFirst.get(k) ?? []), t]);
  }
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
