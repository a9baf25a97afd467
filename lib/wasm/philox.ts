/**
 * Philox4x32-10 in plain JavaScript, word for word the engine's generator
 * (native/canon/philox.h, DETERMINISM.md section 1). The guest's random_get draws from it inside
 * the worker: a worker can be terminated at any instant (the wall-clock guard), and a
 * termination that lands inside an addon call aborts the whole process, so the worker makes no
 * native calls while the guest runs. test/wasm-hostile.test.ts checks it against the addon.
 */

/** High 32 bits of the 64-bit product of two u32s (exact: 16-bit halves keep every term below 2^53). */
function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lh = aLo * bHi, hl = aHi * bLo;
  const mid = ((aLo * bLo) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (aHi * bHi + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 of the counter (c0..c3) under the key (k0, k1), written into `out` (4 words). */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(0xd2511f53, c0), lo0 = Math.imul(0xd2511f53, c0) >>> 0;
    const hi1 = mulhi32(0xcd9e8d57, c2), lo1 = Math.imul(0xcd9e8d57, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}
