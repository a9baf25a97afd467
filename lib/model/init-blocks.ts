/**
 * Seeded random blocks of a GGUF block type for init models: the quant bytes are drawn from
 * `x` (seeded values in [-1, 1)), and each block's scales are fixed so that its weights span
 * about [-scale, scale] and are finite. They are not a quantisation of anything: init models only
 * need valid, deterministic files of every type (the quantizer makes real ones).
 */
import { f32ToF16 } from '../engine/dtype.js';
import { BLOCK_TYPES, type BlockFormat } from './gguf/blocks.js';

/** [offset, value as a multiple of `scale`] of each f16 field of a block (mxfp4 has none). */
const SCALES: Record<BlockFormat, [number, number][]> = {
  q4_0: [[0, 1 / 8]], q4_1: [[0, 2 / 15], [2, -1]], q5_0: [[0, 1 / 16]], q5_1: [[0, 2 / 31], [2, -1]],
  q2_k: [[80, 2 / 45], [82, 1 / 15]], q3_k: [[108, 1 / 128]], q4_k: [[0, 2 / 945], [2, 1 / 63]],
  q5_k: [[0, 2 / 1953], [2, 1 / 63]], q6_k: [[208, 1 / 4096]], iq4_nl: [[0, 1 / 127]], iq4_xs: [[0, 1 / 4064]], mxfp4: [],
};

export function randomBlocks(format: BlockFormat, x: Float32Array, scale: number): Uint8Array {
  const t = BLOCK_TYPES[format];
  const out = new Uint8Array((x.length / t.weights) * t.bytes);
  // One byte per seeded value, reusing values cyclically when a block has more bytes than weights.
  for (let i = 0; i < out.length; i++) out[i] = Math.floor((x[i % x.length] + 1) * 128) & 255;
  const e = Math.min(254, Math.max(1, 128 + Math.round(Math.log2(scale / 12))));
  for (let b = 0; b < out.length / t.bytes; b++) {
    const at = b * t.bytes;
    for (const [off, k] of SCALES[format]) {
      const h = f32ToF16(scale * k);
      out[at + off] = h & 255;
      out[at + off + 1] = h >> 8;
    }
    if (format === 'mxfp4') out[at] = e;
  }
  return out;
}
