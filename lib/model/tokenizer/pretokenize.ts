/**
 * Pre-tokenisation: a sequence of regular expressions, each splitting every piece further into
 * its matches and the gaps between them (Hugging Face's "Isolated" split, llama.cpp's
 * unicode_regex_split). BPE then runs within each piece, so merges never cross piece boundaries.
 */
import { fail } from '../../engine/errors.js';
import { brief } from '../../engine/brief.js';
import { backtrackingHazard } from './backtracking.js';

/** GPT-2's pattern. */
export const GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/** Llama 3's pattern (case-insensitive contractions spelled out: JavaScript lacks (?i:...) here). */
export const LLAMA3_PATTERN = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/** Qwen2's pattern: Llama 3's with single digits. */
export const QWEN2_PATTERN = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** tokenizer.ggml.pre names mapped to their pattern sequences (llama.cpp's names). */
export const GGUF_PRE_PATTERNS: Record<string, string[]> = {
  default: [GPT2_PATTERN],
  gpt2: [GPT2_PATTERN],
  'gpt-2': [GPT2_PATTERN],
  llama3: [LLAMA3_PATTERN],
  'llama-bpe': [LLAMA3_PATTERN],
  'llama-v3': [LLAMA3_PATTERN],
  smaug: [LLAMA3_PATTERN],
  qwen2: [QWEN2_PATTERN],
  smollm: [String.raw`\p{N}`, GPT2_PATTERN],
  starcoder: [String.raw`\p{N}`, GPT2_PATTERN],
};

/**
 * Compiles a pattern from a tokenizer file to a JavaScript regex (unicode, global). Scoped
 * case-insensitive groups `(?i:...)` of plain letters are rewritten as character classes; patterns
 * that can backtrack exponentially are refused (backtracking.ts).
 */
export function compilePattern(pattern: string): RegExp {
  const rewritten = pattern.replace(/\(\?i:([^()]*)\)/g, (_m, body: string) =>
    '(?:' + body.replace(/[A-Za-z]/g, (ch) => `[${ch.toLowerCase()}${ch.toUpperCase()}]`) + ')');
  let re: RegExp;
  try {
    re = new RegExp(rewritten, 'gu');
  } catch (e) {
    fail('ERR_MODEL_UNSUPPORTED', `pre-tokenizer pattern cannot be compiled in JavaScript: ${brief(pattern)} (${(e as Error).message})`);
  }
  const hazard = backtrackingHazard(rewritten);
  if (hazard !== null) fail('ERR_MODEL_UNSUPPORTED', `pre-tokenizer pattern ${brief(pattern)} could backtrack for exponential time: ${hazard}`);
  return re;
}

/** Splits text by each pattern in turn (matches and gaps both kept, empty pieces dropped). */
export function splitPieces(text: string, patterns: readonly RegExp[]): string[] {
  let pieces = [text];
  for (const re of patterns) {
    const next: string[] = [];
    for (const piece of pieces) {
      let last = 0;
      re.lastIndex = 0;
      for (const m of piece.matchAll(re)) {
        const at = m.index!;
        if (m[0].length === 0) continue;
        if (at > last) next.push(piece.slice(last, at));
        next.push(m[0]);
        last = at + m[0].length;
      }
      if (last < piece.length) next.push(piece.slice(last));
    }
    pieces = next;
  }
  return pieces;
}
