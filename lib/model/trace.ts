/**
 * The execution trace of a generation: one leaf per (step, layer), the tensor encoding of that
 * layer's output rows for the step's new positions (step 0 = the whole prompt, however it was
 * chunked; step s >= 1 = the one row of decode step s). traceRoot is the Merkle root of the leaf
 * hashes in (step, layer) order. Two nodes that disagree bisect their leaves to the first
 * differing (step, layer); the referee answers that leaf (node/executor.ts refereeLeaf).
 * recomputeLeaf recomputes one leaf from given layer input rows.
 */
import { fail } from '../engine/errors.js';
import { createHasher, merkleLeaf, merkleRootOfLeafHashes } from '../engine/hash.js';
import { Tensor, canonicalF32Bytes, encodingHeader } from '../engine/tensor.js';
import type { LlamaModel } from './llama.js';

export interface TraceLeaf {
  index: number;
  step: number;
  layer: number;
  /** merkleLeaf(Tensor.encode()) of the layer's output rows, hex. */
  hex: string;
}

/** The leaf hash of `rows` output rows [rows, D] of one layer at one step. */
export function leafHash(rows: Float32Array, dim: number): Buffer {
  return merkleLeaf(new Tensor('f32', [rows.length / dim, dim], rows).encode());
}

/**
 * leafHash of `rows` x `dim` values that arrive in pieces (a prompt prefilled chunk by chunk):
 * the same hash, without keeping the rows. The encoding's header only needs the final shape.
 *
 * @example
 * const h = new LeafHasher(promptLength, D); for (const chunk of chunks) h.push(chunk); h.digest();
 */
export class LeafHasher {
  readonly #hasher = createHasher();
  #left: number;

  constructor(rows: number, dim: number) {
    this.#hasher.update(Uint8Array.of(0)).update(encodingHeader('f32', [rows, dim]));
    this.#left = rows * dim;
  }

  push(values: Float32Array): void {
    if (values.length > this.#left) fail('ERR_INTERNAL', `LeafHasher: ${values.length} values pushed, ${this.#left} expected`);
    this.#hasher.update(canonicalF32Bytes(values));
    this.#left -= values.length;
  }

  digest(): Buffer {
    if (this.#left !== 0) fail('ERR_INTERNAL', `LeafHasher: ${this.#left} values missing`);
    return this.#hasher.digest();
  }
}

/** The trace root over leaf hashes in (step, layer) order. */
export function traceRoot(leaves: readonly Uint8Array[]): string {
  return merkleRootOfLeafHashes(leaves).toString('hex');
}

/** The leaves of steps [s0, s1) x layers [l0, l1) of a trace of `layers` layers per step. */
export function selectLeaves(leaves: readonly Uint8Array[], layers: number, steps: [number, number], range: [number, number]): TraceLeaf[] {
  const out: TraceLeaf[] = [];
  const nSteps = leaves.length / layers;
  for (let s = Math.max(0, steps[0]); s < Math.min(nSteps, steps[1]); s++) {
    for (let l = Math.max(0, range[0]); l < Math.min(layers, range[1]); l++) {
      const index = s * layers + l;
      out.push({ index, step: s, layer: l, hex: Buffer.from(leaves[index]).toString('hex') });
    }
  }
  return out;
}

/**
 * Recomputes the leaf of (step, layer) from the agreed state: `input` holds the layer's input rows
 * for ALL positions 0..end of that step (layer-1 outputs, or the embeddings for layer 0) and
 * `newFrom` the first position of the step. Because every kernel is row-independent and K/V rows
 * depend only on their own input row, running the layer once over all positions gives exactly
 * the bytes the incremental run produced.
 *
 * @example
 * const leaf = recomputeLeaf(model, 3, agreedInputRows, promptLength + step - 1);
 */
export function recomputeLeaf(model: LlamaModel, layer: number, input: Float32Array, newFrom: number): { hash: Buffer; rows: Float32Array } {
  const D = model.config.embeddingLength;
  const positions = input.length / D;
  if (!Number.isInteger(positions) || positions < 1) fail('ERR_SHAPE', `layer input must hold whole rows of ${D} values`);
  if (!Number.isInteger(newFrom) || newFrom < 0 || newFrom >= positions) fail('ERR_RANGE', `newFrom ${newFrom} is outside 0..${positions - 1}`);
  const cache = model.newCache();
  cache.reserve(positions);
  const out = model.layer(layer, input, [{ cache, n: positions }]);
  const rows = out.subarray(newFrom * D);
  return { hash: leafHash(rows, D), rows };
}
