/**
 * One request's key/value cache: for every layer, the K and V rows ([position, kvHeads, headDim])
 * of every position seen so far. Rows are appended in position order and never change, so the
 * attention of a new row reads exactly the same keys whether earlier rows came in one prefill,
 * in chunks, or one decode step at a time.
 */
import { fail } from '../engine/errors.js';

/**
 * The capacity a cache needs to hold `need` positions: its current one when that suffices, else
 * doubled until it does (appends amortised O(1)), never past the model's context (ERR_RANGE).
 */
export function grownCapacity(need: number, capacity: number, maxPositions: number): number {
  if (need > maxPositions) fail('ERR_RANGE', `the context would hold ${need} positions, the model allows ${maxPositions}`);
  if (need <= capacity) return capacity;
  let cap = capacity;
  while (cap < need) cap *= 2;
  return Math.min(cap, maxPositions);
}

export class KvCache {
  readonly rowWidth: number;
  #k: Float32Array[];
  #v: Float32Array[];
  #length = 0;
  #capacity: number;

  /**
   * @example
   * const cache = new KvCache(config.blockCount, config.headCountKv * config.headDim, config.contextLength);
   */
  constructor(readonly layers: number, rowWidth: number, readonly maxPositions: number, initialCapacity = 64) {
    this.rowWidth = rowWidth;
    this.#capacity = Math.max(1, Math.min(initialCapacity, maxPositions));
    this.#k = Array.from({ length: layers }, () => new Float32Array(this.#capacity * rowWidth));
    this.#v = Array.from({ length: layers }, () => new Float32Array(this.#capacity * rowWidth));
  }

  /** Positions committed so far (the next new row gets this position). */
  get length(): number {
    return this.#length;
  }

  /** Bytes held (K and V of every layer, at the current capacity). */
  get bytes(): number {
    return 2 * this.layers * this.#capacity * this.rowWidth * 4;
  }

  /** Makes room for `n` more positions (doubling, so appends are amortised O(1)). */
  reserve(n: number): void {
    const cap = grownCapacity(this.#length + n, this.#capacity, this.maxPositions);
    if (cap === this.#capacity) return;
    const grow = (a: Float32Array) => {
      const b = new Float32Array(cap * this.rowWidth);
      b.set(a.subarray(0, this.#length * this.rowWidth));
      return b;
    };
    this.#k = this.#k.map(grow);
    this.#v = this.#v.map(grow);
    this.#capacity = cap;
  }

  /** Writes the K and V rows of positions [length, length + n) of one layer (reserve first). */
  write(layer: number, k: Float32Array, v: Float32Array, n: number): void {
    const at = this.#length * this.rowWidth;
    this.#k[layer].set(k.subarray(0, n * this.rowWidth), at);
    this.#v[layer].set(v.subarray(0, n * this.rowWidth), at);
  }

  /** K and V of one layer over positions [0, upTo). */
  keys(layer: number, upTo: number): Float32Array {
    return this.#k[layer].subarray(0, upTo * this.rowWidth);
  }
  values(layer: number, upTo: number): Float32Array {
    return this.#v[layer].subarray(0, upTo * this.rowWidth);
  }

  /** Commits n positions written to every layer. */
  advance(n: number): void {
    this.#length += n;
  }
}
