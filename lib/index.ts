/**
 * atoma-node: a deterministic compute engine. Every kernel follows one canonical arithmetic
 * (DETERMINISM.md, docs/canonical-arithmetic.md), so every honest node gets the same bytes.
 */
export { AtomaError, type AtomaErrorCode } from './engine/errors.js';
export { type DType } from './engine/dtype.js';
export { Tensor, seeded, type Shape } from './engine/tensor.js';
export {
  matmul, matmulSync, add, mul, sum, rowSums, rmsnorm, softmax, unary, exp, log, tanh, sin, cos, silu, gelu,
  rope, attention, attentionSync, embedding, argmax,
  type MatmulOptions, type RopeOptions, type UnaryOp,
} from './engine/ops.js';
export { blake3, createHasher, hashStream, hashFile, merkleLeaf, merkleRoot, merkleRootOfLeafHashes, type Blake3Options } from './engine/hash.js';
export { mapFile } from './engine/files.js';
export { info, configure, copyBandwidth, CANONICAL_ARITHMETIC_VERSION, type EngineInfo, type Isa } from './engine/config.js';
