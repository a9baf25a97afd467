/**
 * JavaScript regexes backtrack, and a tokenizer.json pattern like `(a+)+$` takes time exponential
 * in the text on 'aaaa…b': one prompt would hold the node's thread for hours. Such patterns are
 * refused when the tokenizer loads, before any text is matched, by a check of the pattern's shape:
 * a group that may repeat more than once must hold neither a repetition nor alternatives (the two
 * ways one text can be matched by exponentially many paths), and back-references are refused (no
 * bound is known for them). The pre-tokenizer patterns of published models (GPT-2, Llama 3, Qwen2,
 * GPT-4o style) pass: their repetitions are of single characters or classes. What stays possible
 * is polynomial work (`\s*\s*$`), bounded by the request body size the node accepts. A
 * linear-time engine (re2) would remove even that; it is a native package this project does not ship.
 */

interface Frame {
  repeats: boolean;
  alternates: boolean;
}

/** Why a valid pattern can backtrack exponentially, or null when its shape cannot. */
export function backtrackingHazard(pattern: string): string | null {
  const stack: Frame[] = [{ repeats: false, alternates: false }];
  // The group that just closed, if the previous atom was one (quantifiers apply to it).
  let lastGroup: Frame | null = null;
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i];
    const top = stack[stack.length - 1];
    if (ch === '*' || ch === '+' || ch === '?' || (ch === '{' && /^\{\d+(,\d*)?\}/.test(pattern.slice(i)))) {
      let max: number;
      if (ch === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i))!;
        max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
        i += m[0].length;
      } else {
        max = ch === '?' ? 1 : Infinity;
        i++;
      }
      if (pattern[i] === '?') i++; // lazy: the same paths, tried in another order
      if (max === Infinity) top.repeats = true;
      if (lastGroup !== null && max > 1 && (lastGroup.repeats || lastGroup.alternates)) {
        return lastGroup.repeats ? 'a repeated group holds a repetition (like (a+)+)' : 'a repeated group holds alternatives (like (a|ab)*)';
      }
      lastGroup = null;
      continue;
    }
    lastGroup = null;
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (/[1-9]/.test(next ?? '') || next === 'k') return 'it uses a back-reference';
      if ((next === 'p' || next === 'P' || next === 'u') && pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i);
        i = end < 0 ? pattern.length : end + 1;
      }
      else i += 2;
    } else if (ch === '[') {
      i++;
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      i++;
    } else if (ch === '(') {
      stack.push({ repeats: false, alternates: false });
      i++;
    } else if (ch === ')') {
      const g = stack.length > 1 ? stack.pop()! : { repeats: false, alternates: false };
      const parent = stack[stack.length - 1];
      parent.repeats ||= g.repeats;
      parent.alternates ||= g.alternates;
      lastGroup = g;
      i++;
    } else {
      if (ch === '|') top.alternates = true;
      i++;
    }
  }
  return null;
}
