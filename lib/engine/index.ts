/**
 * The engine's public surface (`atoma-node/engine`): tensors, canonical ops, hashing, device
 * selection and the typed error. It loads the native addon and nothing from the layers above, so
 * a consumer that only computes pays for no ledger, Sui or SQLite code.
 */
export { AtomaError, type AtomaErrorCode } from './errors.js';
export { type DType } from './dtype.js';
export { Tensor, seeded, type Shape } from './tensor.js';
export {
  matmul, matmulSync, add, mul, sum, rowSums, rmsnorm, softmax, unary, exp, log, tanh, sin, cos, silu, gelu,
  rope, attention, attentionSync, embedding, argmax,
  type MatmulOptions, type RopeOptions, type UnaryOp,
} from './ops.js';
export { DeviceTensor, toDevice, device, deviceTensorsBuilt, type DeviceMatmulOptions, type DeviceSamplingOptions, type DeviceUnaryOp } from './device-tensor.js';
export { blake3, createHasher, hashStream, hashFile, merkleLeaf, merkleRoot, merkleRootOfLeafHashes, type Blake3Options } from './hash.js';
export { mapFile } from './files.js';
export { info, configure, copyBandwidth, CANONICAL_ARITHMETIC_VERSION, type EngineInfo, type Isa, type Device } from './config.js';
