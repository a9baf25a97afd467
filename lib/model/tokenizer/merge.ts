/**
 * The BPE merge loop shared by every tokenizer family: adjacent symbols are merged, best pair
 * first (lowest merge rank, or highest vocabulary score), leftmost first among equals, until no
 * adjacent pair may merge. A binary heap with lazy invalidation keeps this O(n log n), so long
 * prompts in SentencePiece models (which are not pre-split into words) stay fast.
 */

/** Priority of merging two adjacent symbols (lower merges first), or undefined when they cannot. */
export type PairPriority = (left: string, right: string) => number | undefined;

interface Candidate {
  priority: number;
  left: number;
  right: number;
  leftText: string;
  rightText: string;
}

function before(a: Candidate, b: Candidate): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.left < b.left);
}

class Heap {
  private items: Candidate[] = [];
  get size(): number { return this.items.length; }
  push(c: Candidate): void {
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Candidate {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Merges `symbols` (left to right) and returns the final symbols. */
export function mergeSymbols(symbols: string[], priority: PairPriority): string[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const text = symbols.slice();
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new Heap();
  const consider = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const p = priority(text[l], text[r]);
    if (p !== undefined) heap.push({ priority: p, left: l, right: r, leftText: text[l], rightText: text[r] });
  };
  for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
  while (heap.size > 0) {
    const c = heap.pop();
    // Stale when either side has merged since this candidate was queued.
    if (next[c.left] !== c.right || text[c.left] !== c.leftText || text[c.right] !== c.rightText) continue;
    text[c.left] = c.leftText + c.rightText;
    text[c.right] = '';
    const after = next[c.right];
    next[c.left] = after;
    if (after >= 0) prev[after] = c.left;
    next[c.right] = -2; // dead
    consider(prev[c.left], c.left);
    consider(c.left, after);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(text[i]);
  return out;
}
