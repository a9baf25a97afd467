import { describe, expect, it } from 'vitest';
import { native } from '../lib/engine/native.js';
import { seeded } from '../lib/index.js';

const hex = (a: Uint32Array) => [...a].map((w) => w.toString(16).padStart(8, '0')).join(' ');

describe('Philox4x32-10 (DETERMINISM.md section 1)', () => {
  // Random123's known-answer vectors for philox4x32_10.
  it.each([
    [[0, 0, 0, 0], [0, 0], '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ])('counter %j key %j', (ctr, key, want) => {
    expect(hex(native.philox(Uint32Array.from(ctr), Uint32Array.from(key)))).toBe(want);
  });

  it('seeded element i is 2 * ((word0 >> 8) * 2^-24) - 1 with the spec counter and key', () => {
    const seed = 0x0123456789abcdefn;
    const t = seeded([3, 5], seed, 7);
    for (let i = 0; i < 15; i++) {
      const w = native.philox(Uint32Array.from([i, 0, 7, 0]), Uint32Array.from([Number(seed & 0xffffffffn), Number(seed >> 32n)]))[0];
      expect(t.data[i]).toBe(2 * ((w >>> 8) * 2 ** -24) - 1);
    }
    // Element indices past 2^32 use the high counter word.
    const big = new Float32Array(1);
    native.seededFill(big, 5n, 0, 2n ** 32n + 3n);
    const w = native.philox(Uint32Array.from([3, 1, 0, 0]), Uint32Array.from([5, 0]))[0];
    expect(big[0]).toBe(2 * ((w >>> 8) * 2 ** -24) - 1);
  });

  it('values lie in [-1, 1) and are not all alike', () => {
    const t = seeded([10000], 1n);
    let min = Infinity, max = -Infinity;
    for (const v of t.data) { min = Math.min(min, v); max = Math.max(max, v); }
    expect(min).toBeGreaterThanOrEqual(-1);
    expect(max).toBeLessThan(1);
    expect(max - min).toBeGreaterThan(1.9);
  });
});
