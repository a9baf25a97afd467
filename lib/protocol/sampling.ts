/**
 * Verifiable node sampling. The seed is BLAKE3 in derive-key mode over
 * beacon (32 bytes) || request id (32 bytes) || draw (u32 little-endian); its extendable output
 * is read as little-endian u32 words. A partial Fisher-Yates shuffle of the candidates (sorted by
 * id) takes one word per position, with rejection sampling so every index is exactly uniform.
 * Anyone holding the beacon, the request id and the candidate list gets the same nodes.
 */
import { blake3 } from '../engine/hash.js';
import { fail } from '../engine/errors.js';
import { hexBytes } from './ids.js';

export const SAMPLING_CONTEXT = 'atoma-node 2026-11 node sampling v1';

/** A stream of uniform integers drawn from the seed's XOF output. */
class Draws {
  private bytes: Buffer;
  private pos = 0;
  constructor(private readonly input: Buffer, expected: number) {
    this.bytes = blake3(input, { context: SAMPLING_CONTEXT, length: Math.max(64, expected * 8) });
  }
  private word(): number {
    if (this.pos + 4 > this.bytes.length) {
      // XOF prefix property: a longer output starts with the bytes already used.
      this.bytes = blake3(this.input, { context: SAMPLING_CONTEXT, length: this.bytes.length * 2 });
    }
    const w = this.bytes.readUInt32LE(this.pos);
    this.pos += 4;
    return w;
  }
  /** Uniform in [0, m), m <= 2^32: words at or above the largest multiple of m are rejected. */
  below(m: number): number {
    const limit = Math.floor(2 ** 32 / m) * m;
    for (;;) {
      const w = this.word();
      if (w < limit) return w % m;
    }
  }
}

/**
 * n distinct candidates chosen uniformly at random (every n-subset equally likely, in a uniformly
 * random order) from the beacon and the request id. `draw` separates independent draws for the
 * same request (0: the first sample, k: the k-th replacement). Candidates must be distinct; they
 * are sorted here so the caller's order does not matter. Fewer than n candidates: all of them.
 *
 * @example
 * const nodes = sampleNodes(beaconHex, requestIdHex, eligibleNodeIds, 10);
 */
export function sampleNodes(beacon: string, requestId: string, candidates: readonly string[], n: number, draw = 0): string[] {
  if (!Number.isSafeInteger(n) || n < 0) fail('ERR_RANGE', 'sampleNodes: n must be a non-negative integer');
  if (!Number.isSafeInteger(draw) || draw < 0 || draw >= 2 ** 32) fail('ERR_RANGE', 'sampleNodes: draw must be a u32');
  const pool = [...candidates].sort();
  for (let i = 1; i < pool.length; i++) if (pool[i] === pool[i - 1]) fail('ERR_DUPLICATE', `sampleNodes: candidate ${pool[i]} appears twice`);
  return sampleSorted(beacon, requestId, pool, n, draw);
}

/**
 * sampleNodes for candidates already sorted and distinct (the rules keep node ids sorted, so a
 * request's draw costs O(n) here instead of a sort of every candidate). The partial Fisher-Yates
 * shuffle records only the positions it swapped, so `pool` is left as it is; the result is the
 * one a shuffle of a copy of `pool` gives, word for word.
 */
export function sampleSorted(beacon: string, requestId: string, pool: readonly string[], n: number, draw = 0): string[] {
  const k = Math.min(n, pool.length);
  const input = Buffer.alloc(68);
  hexBytes(beacon, 'beacon').copy(input, 0);
  hexBytes(requestId, 'request id').copy(input, 32);
  input.writeUInt32LE(draw, 64);
  const draws = new Draws(input, k);
  const swapped = new Map<number, string>();
  const out: string[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + draws.below(pool.length - i);
    const atI = swapped.get(i) ?? pool[i];
    out.push(swapped.get(j) ?? pool[j]);
    swapped.set(j, atI);
  }
  return out;
}
