/**
 * Deterministic byte-level BPE training (GPT-2 style), for the vocabularies of init models.
 * The corpus is split with GPT-2's pattern; the base vocabulary is the 256 byte characters in byte
 * order; each step merges the most frequent adjacent pair, ties broken by the smaller text
 * 'left right' in UTF-16 code-unit order, until the vocabulary reaches its target size.
 */
import { fail } from '../../engine/errors.js';
import { BYTE_TO_CHAR, toByteLevel } from './bytes.js';
import { GPT2_PATTERN, compilePattern, splitPieces } from './pretokenize.js';

export interface TrainedBpe {
  /** Token texts by id: 256 byte characters, then merge results. */
  tokens: string[];
  /** Merges in rank order, as GGUF stores them ("left right"). */
  merges: string[];
}

/**
 * Trains merges on `corpus` until `size` tokens exist. When no pair is left first, this fails,
 * or with `allowFewer` returns the smaller vocabulary.
 */
export function trainByteLevelBpe(corpus: string, size: number, allowFewer = false): TrainedBpe {
  if (!Number.isInteger(size) || size < 256) fail('ERR_ARGUMENT', `a byte-level vocabulary needs at least 256 tokens, asked for ${size}`);
  const counts = new Map<string, number>();
  for (const piece of splitPieces(corpus, [compilePattern(GPT2_PATTERN)])) {
    const w = toByteLevel(piece);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  // Words in a fixed order (sorted) so the counting below never depends on Map insertion.
  const words = [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([w, n]) => ({ symbols: [...w], n }));
  const tokens = BYTE_TO_CHAR.slice();
  const known = new Set(tokens);
  const merges: string[] = [];
  while (tokens.length < size) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const k = symbols[i] + ' ' + symbols[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && best !== null && k < best)) { best = k; bestN = n; }
    if (best === null && allowFewer) break;
    if (best === null) fail('ERR_ARGUMENT', `the corpus supports only ${tokens.length} byte-level tokens, asked for ${size}`);
    const [l, r] = best.split(' ');
    const merged = l + r;
    merges.push(best);
    if (!known.has(merged)) { known.add(merged); tokens.push(merged); }
    for (const w of words) {
      const s = w.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === l && s[i + 1] === r) { out.push(merged); i++; } else out.push(s[i]);
      }
      w.symbols = out;
    }
  }
  return { tokens, merges };
}
