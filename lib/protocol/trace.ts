/**
 * Execution traces for disputes: an RFC 6962 Merkle tree with BLAKE3 (DETERMINISM.md section 2)
 * whose leaves are, in order, one per (decode step, layer). A range [lo, hi) of leaves has the
 * root MTH(D[lo:hi]); the tree over [lo, hi) splits at lo + k, k the largest power of two below
 * hi - lo, so the roots of the two halves hash to the range's root. That lets a referee walk down
 * from a committed root one level per round, checking every answer against the level above.
 */
import { blake3, merkleLeaf, merkleRootOfLeafHashes } from '../engine/hash.js';
import { fail } from '../engine/errors.js';

/** Largest power of two strictly below n (n >= 2): where RFC 6962 splits n leaves. */
export function splitPoint(n: number): number {
  if (!Number.isSafeInteger(n) || n < 2) fail('ERR_RANGE', 'splitPoint: n must be an integer >= 2');
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The interior node hash BLAKE3(0x01 || left || right), hex. */
export function interiorHash(left: string, right: string): string {
  // One buffer for the common case of two 32-byte hashes (a bisection round hashes one per answer).
  const b = Buffer.allocUnsafe(65);
  b[0] = 1;
  if (left.length === 64 && right.length === 64 && b.write(left, 1, 32, 'hex') === 32 && b.write(right, 33, 32, 'hex') === 32) return blake3(b).toString('hex');
  return blake3(Buffer.concat([Buffer.from([1]), Buffer.from(left, 'hex'), Buffer.from(right, 'hex')])).toString('hex');
}

/**
 * A node's own trace: its leaf hashes, with the roots a bisection round asks for.
 *
 * @example
 * const t = Trace.fromLeaves(stepLayerDigests);       // one Buffer per (step, layer)
 * t.root();                                            // commit this (hex)
 * t.children(lo, hi);                                  // answer a bisection round: [left, right]
 */
export class Trace {
  /** Roots already computed, by range: a bisection asks for the subtrees of the committed root. */
  private readonly roots = new Map<number, string>();
  private constructor(readonly leafHashes: readonly Buffer[]) {}

  /** From each leaf's data (hashed as BLAKE3(0x00 || data)). */
  static fromLeaves(leaves: readonly (ArrayBufferView | string)[]): Trace {
    return new Trace(leaves.map((l) => merkleLeaf(l)));
  }

  static fromLeafHashes(hashes: readonly Buffer[]): Trace {
    return new Trace([...hashes]);
  }

  get length(): number {
    return this.leafHashes.length;
  }

  /** MTH of leaves [lo, hi), hex (the whole tree by default). */
  root(lo = 0, hi = this.length): string {
    if (!(Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && 0 <= lo && lo <= hi && hi <= this.length)) fail('ERR_RANGE', `Trace.root: bad range [${lo}, ${hi})`);
    if (hi - lo < 2) return hi === lo ? merkleRootOfLeafHashes([]).toString('hex') : this.leafHashes[lo].toString('hex');
    const key = lo * 2 ** 32 + hi;
    let r = this.roots.get(key);
    if (r === undefined) {
      // MTH(D[lo:hi]) = interior(MTH(D[lo:mid]), MTH(D[mid:hi])), split as RFC 6962 does: every
      // subtree is hashed once, and a later bisection round finds its children here.
      const mid = lo + splitPoint(hi - lo);
      r = interiorHash(this.root(lo, mid), this.root(mid, hi));
      this.roots.set(key, r);
    }
    return r;
  }

  /** The roots of the two halves of [lo, hi) (hi - lo >= 2): a bisection answer. */
  children(lo: number, hi: number): [string, string] {
    const mid = lo + splitPoint(hi - lo);
    return [this.root(lo, mid), this.root(mid, hi)];
  }

  leaf(i: number): string {
    if (!(Number.isSafeInteger(i) && i >= 0 && i < this.length)) fail('ERR_RANGE', `Trace.leaf: index ${i} out of range`);
    return this.leafHashes[i].toString('hex');
  }
}
