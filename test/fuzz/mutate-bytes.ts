/**
 * Byte-level mutations, format-blind: bit flips, bytes set to boundary values, length fields
 * rewritten (u32/u64 max, 2^31, off by one), truncation, insertion, deletion, duplication,
 * splicing with another seed, and dictionary tokens. Length fields are found without knowing the
 * format: a little-endian u32 or u64 holding a small non-zero value is most often a count, a
 * length or an offset, so those positions are preferred.
 */
import type { Rng } from './prng.js';

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x20];
const INTERESTING_U64 = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
  (1n << 53n) - 1n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n];

/** Positions holding a little-endian u32 (or u64) in [1, 2^24): likely counts, lengths, offsets. */
function lengthLike(b: Uint8Array, width: 4 | 8): number[] {
  const out: number[] = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 0; p + width <= b.length && out.length < 4096; p++) {
    const lo = view.getUint32(p, true);
    if (lo === 0 || lo >= 1 << 24) continue;
    if (width === 8 && view.getUint32(p + 4, true) !== 0) continue;
    out.push(p);
  }
  return out;
}

function readLe(b: Uint8Array, p: number, width: number): bigint {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]);
  return v;
}

function writeLe(b: Uint8Array, p: number, width: number, v: bigint): void {
  for (let i = 0; i < width; i++) {
    b[p + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Rewrites a length-like field: to a boundary, or to its value off by one or doubled. */
function lengthField(input: Uint8Array, rng: Rng): Uint8Array {
  const width = rng.chance(0.5) ? 4 : 8;
  if (input.length < width) return input;
  const b = input.slice();
  const candidates = lengthLike(b, width);
  const p = candidates.length > 0 && rng.chance(0.85) ? rng.pick(candidates) : rng.below(b.length - width + 1);
  const v = readLe(b, p, width);
  const mask = (1n << BigInt(8 * width)) - 1n;
  const next = rng.pick([v + 1n, v - 1n, v * 2n, v + 8n, rng.pick(INTERESTING_U64), BigInt(rng.u32())]);
  writeLe(b, p, width, ((next % (mask + 1n)) + mask + 1n) & mask);
  return b;
}

export type ByteMutation = (input: Uint8Array, rng: Rng, others: readonly Uint8Array[], dictionary: readonly Uint8Array[]) => Uint8Array;

export const BYTE_MUTATIONS: Record<string, ByteMutation> = {
  flipBit(input, rng) {
    if (input.length === 0) return input;
    const b = input.slice();
    b[rng.below(b.length)] ^= 1 << rng.below(8);
    return b;
  },
  interestingByte(input, rng) {
    if (input.length === 0) return input;
    const b = input.slice();
    b[rng.below(b.length)] = rng.pick(INTERESTING_BYTES);
    return b;
  },
  lengthField,
  truncate(input, rng) {
    return input.subarray(0, rng.below(input.length));
  },
  insert(input, rng) {
    const at = rng.below(input.length + 1);
    const chunk = rng.chance(0.5) ? rng.bytes(rng.range(1, 32)) : new Uint8Array(rng.range(1, 256)).fill(rng.pick(INTERESTING_BYTES));
    return concat(input.subarray(0, at), chunk, input.subarray(at));
  },
  remove(input, rng) {
    if (input.length === 0) return input;
    const at = rng.below(input.length);
    const n = rng.range(1, Math.min(64, input.length - at));
    return concat(input.subarray(0, at), input.subarray(at + n));
  },
  duplicate(input, rng) {
    if (input.length === 0) return input;
    const from = rng.below(input.length);
    const chunk = input.subarray(from, from + rng.range(1, 256));
    const at = rng.below(input.length + 1);
    return concat(input.subarray(0, at), chunk, input.subarray(at));
  },
  splice(input, rng, others) {
    const other = others.length ? rng.pick(others) : input;
    return concat(input.subarray(0, rng.below(input.length + 1)), other.subarray(rng.below(other.length + 1)));
  },
  token(input, rng, _others, dictionary) {
    if (dictionary.length === 0) return input;
    const word = rng.pick(dictionary);
    const at = rng.below(input.length + 1);
    // Insert, or overwrite the same number of bytes.
    const skip = rng.chance(0.5) ? Math.min(word.length, input.length - at) : 0;
    return concat(input.subarray(0, at), word, input.subarray(at + skip));
  },
};

const NAMES = Object.keys(BYTE_MUTATIONS);

/** One to a few byte mutations of `input`. */
export function mutateBytes(input: Uint8Array, rng: Rng, others: readonly Uint8Array[], dictionary: readonly Uint8Array[] = []): Uint8Array {
  let out = input;
  for (let n = rng.count(4); n > 0; n--) out = BYTE_MUTATIONS[rng.pick(NAMES)](out, rng, others, dictionary);
  return out;
}
