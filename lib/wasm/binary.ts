/**
 * Byte-level reading and writing of the WebAssembly binary format (LEB128 and friends). The
 * instrumenter rewrites modules in one linear pass with these, so a 1 MiB module costs
 * milliseconds, not the hundreds a full IR round trip would.
 */
import { fail } from '../engine/errors.js';

export class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  byte(): number {
    if (this.pos >= this.end) fail('ERR_WASM_INVALID', `invalid module: unexpected end at byte ${this.pos}`);
    return this.bytes[this.pos++];
  }
  /** Unsigned LEB128 up to 32 bits (hot in the rewriter: no call per byte). */
  u32(): number {
    const bytes = this.bytes;
    let pos = this.pos;
    let b = bytes[pos++];
    let result = b & 0x7f;
    let shift = 7;
    while (b & 0x80) {
      if (shift > 28) fail('ERR_WASM_INVALID', `invalid module: LEB128 too long at byte ${pos}`);
      b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    if (pos > this.end) fail('ERR_WASM_INVALID', `invalid module: unexpected end at byte ${this.end}`);
    this.pos = pos;
    return result;
  }
  /** Skips a signed LEB128 of up to `bits` bits (its value is never needed, only its extent). */
  skipSleb(bits: number): void {
    const maxBytes = Math.ceil(bits / 7);
    const bytes = this.bytes;
    let pos = this.pos;
    for (let i = 0; i < maxBytes; i++) {
      if ((bytes[pos++] & 0x80) === 0) {
        if (pos > this.end) fail('ERR_WASM_INVALID', `invalid module: unexpected end at byte ${this.end}`);
        this.pos = pos;
        return;
      }
    }
    fail('ERR_WASM_INVALID', `invalid module: LEB128 too long at byte ${pos}`);
  }
  skip(n: number): void {
    if (this.pos + n > this.end) fail('ERR_WASM_INVALID', `invalid module: unexpected end at byte ${this.pos}`);
    this.pos += n;
  }
  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, n).toString('utf8');
  }
}

export class Writer {
  buf: Uint8Array;
  length = 0;
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }
  /** Makes room for n more bytes (buf may be replaced). */
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): this {
    this.reserve(1);
    this.buf[this.length++] = b;
    return this;
  }
  bytes(src: Uint8Array, start = 0, end = src.length): this {
    const n = end - start;
    this.reserve(n);
    // Most copies are one instruction long: a loop beats creating a subarray for each.
    if (n < 32) {
      const buf = this.buf;
      let at = this.length;
      for (let i = start; i < end; i++) buf[at++] = src[i];
    } else {
      this.buf.set(src.subarray(start, end), this.length);
    }
    this.length += n;
    return this;
  }
  /** Signed LEB128 of a non-negative safe integer (fuel costs), without BigInt. */
  sPositive(v: number): this {
    for (;;) {
      const b = v % 128;
      v = Math.floor(v / 128);
      if (v === 0 && (b & 0x40) === 0) return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  u32(v: number): this {
    do {
      let b = v & 0x7f;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }
  /** Signed LEB128 of a bigint (i64.const immediates). */
  s64(v: bigint): this {
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }
  name(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u32(b.length).bytes(b);
  }
  /** A section: id, then the size-prefixed body. */
  section(id: number, body: Writer): this {
    return this.byte(id).u32(body.length).bytes(body.buf, 0, body.length);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
