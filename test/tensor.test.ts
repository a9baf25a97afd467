import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../lib/engine/dtype.js';
import { Tensor, blake3, merkleLeaf, merkleRoot, seeded } from '../lib/index.js';

describe('tensor encoding and digest (DETERMINISM.md section 2)', () => {
  it('encodes ATM1, dtype, rank, two zero bytes, u64 LE dims, LE elements', () => {
    const t = new Tensor('u32', [2, 1], Uint32Array.from([1, 0x01020304]));
    expect(t.encode().toString('hex')).toBe(
      '41544d31' + '06' + '02' + '0000' + '0200000000000000' + '0100000000000000' + '01000000' + '04030201',
    );
  });

  it('digest is BLAKE3 of the encoding, for every dtype', () => {
    const cases: Tensor[] = [
      seeded([3, 5], 1n),
      new Tensor('f16', [2], Uint16Array.from([0x3c00, 0xc000])),
      new Tensor('bf16', [2], Uint16Array.from([0x3f80, 0x7fc1])),
      new Tensor('i8', [3], Int8Array.from([-1, 0, 127])),
      new Tensor('i32', [1, 1, 1], Int32Array.from([-5])),
      new Tensor('u8', [0], new Uint8Array(0)),
      new Tensor('f32', [], Float32Array.from([3.5])),
    ];
    for (const t of cases) expect(t.digest()).toBe(blake3(t.encode()).toString('hex'));
  });

  it('every f32 NaN hashes as 0x7FC00000; signed zeros stay distinct', () => {
    const nans = [0x7fc00000, 0x7f800001, 0xffc00000, 0x7fffffff, 0xff800123];
    const digests = new Set(nans.map((bits) => new Tensor('f32', [1], new Float32Array(Uint32Array.from([bits]).buffer)).digest()));
    expect(digests.size).toBe(1);
    expect(Tensor.f32([1], [0]).digest()).not.toBe(Tensor.f32([1], [-0]).digest());
    // Shape is part of the identity.
    expect(Tensor.f32([2, 1], [1, 2]).digest()).not.toBe(Tensor.f32([1, 2], [1, 2]).digest());
  });

  it('f16 and bf16 widen exactly and narrow with round-to-nearest-even', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToF16(65520)).toBe(0x7c00); // overflow
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie below the smallest subnormal -> even (zero)
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002);
    for (let h = 0; h < 0x10000; h += 7) {
      const x = f16ToF32(h);
      if (!Number.isNaN(x)) expect(f32ToF16(x)).toBe(h);
    }
    const t = new Tensor('bf16', [3], Uint16Array.from([0x3f80, 0xc000, 0x0001])).toFloat32();
    expect([...t.data]).toEqual([1, -2, bf16ToF32(1)]);
  });
});

describe('Merkle tree (RFC 6962 shape with BLAKE3)', () => {
  const leafRef = (d: Buffer) => blake3(Buffer.concat([Buffer.from([0]), d]));
  const nodeRef = (l: Buffer, r: Buffer) => blake3(Buffer.concat([Buffer.from([1]), l, r]));
  function rootRef(leaves: Buffer[]): Buffer {
    if (leaves.length === 0) return blake3(new Uint8Array(0));
    if (leaves.length === 1) return leafRef(leaves[0]);
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return nodeRef(rootRef(leaves.slice(0, k)), rootRef(leaves.slice(k)));
  }

  it('matches a direct implementation of the definition for 0..20 leaves', () => {
    for (let n = 0; n <= 20; n++) {
      const leaves = Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i} `.repeat(i + 1)));
      expect(merkleRoot(leaves).toString('hex'), `n=${n}`).toBe(rootRef(leaves).toString('hex'));
    }
    expect(merkleLeaf('x').toString('hex')).toBe(leafRef(Buffer.from('x')).toString('hex'));
  });

  it('the empty tree is BLAKE3 of the empty string', () => {
    expect(merkleRoot([]).toString('hex')).toBe('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  });
});
