/**
 * The fuzzer's only source of randomness: sfc32 seeded from (campaign seed, target, case index),
 * so any case can be regenerated alone, in any process, from those three values.
 */

/** 32-bit FNV-1a of a string: turns (seed, target, index) into sfc32 state. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(key: string) {
    this.a = fnv1a(`a:${key}`);
    this.b = fnv1a(`b:${key}`);
    this.c = fnv1a(`c:${key}`);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** The generator of one case of one target in one campaign. */
  static forCase(seed: string, target: string, index: number): Rng {
    return new Rng(`${seed}/${target}/${index}`);
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    if (n <= 0) return 0;
    return n <= 0x100000000 ? Math.floor((this.u32() / 0x100000000) * n) : Math.floor(((this.u32() * 0x100000000 + this.u32()) / 2 ** 64) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** Small counts more often than large ones: 1 with probability 1/2, 2 with 1/4, ... up to max. */
  count(max: number): number {
    let n = 1;
    while (n < max && this.chance(0.5)) n++;
    return n;
  }
}
