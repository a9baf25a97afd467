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
export { DeviceTensor, toDevice, device, deviceTensorsBuilt, type DeviceMatmulOptions, type DeviceSamplingOptions, type DeviceUnaryOp } from './engine/device-tensor.js';
export { blake3, createHasher, hashStream, hashFile, merkleLeaf, merkleRoot, merkleRootOfLeafHashes, type Blake3Options } from './engine/hash.js';
export { mapFile } from './engine/files.js';
export { info, configure, copyBandwidth, CANONICAL_ARITHMETIC_VERSION, type EngineInfo, type Isa, type Device } from './engine/config.js';
export * from './protocol/sui/index.js';
export { loadModel, readGguf, writeGguf, encodeGguf, ggufValue, initModel, readSafetensors, BpeTokenizer, GgufValueType, type GgufFile, type GgufEntry, type GgufTensorInfo, type GgufSpec, type GgufTensorSpec, type InitOptions } from './model/index.js';
export type { LlamaConfig, LoadedModel, ModelWeights, Tokenizer, Weight, WeightFormat } from './model/types.js';
export { ropeInvFreqs, ropeFreqDivisors, llama3Divisors, type RopeScaling } from './model/index.js';
export { LlamaModel, generate, sample, recomputeLeaf, KvCache, linear, type GenerateRequest, type GenerateResult, type SamplingParams } from './model/inference.js';
export { apply as applyProtocolEvent, emptyState, sampleNodes, commitment, Trace, Ledger, serveLedger, LedgerClient, simulate, DEFAULT_PARAMS, type Params, type State as ProtocolState, type Event as ProtocolEvent, type Effect as ProtocolEffect } from './protocol/index.js';
// WebAssembly functions (lib/wasm/) and confidential requests (lib/crypto/)
export * from './wasm/index.js';
export * from './crypto/index.js';
export { LedgerKeyDirectory, ServiceKeyDirectory } from './protocol/index.js';
export { signEvent, checkSignature, generateSigner, signerFromSeed, MAX_INPUT, type Signer } from './protocol/index.js';
// The node: config, content cache, HTTP API, response signatures (lib/node/)
export { AtomaNode, type NodeOptions } from './node/node.js';
export { loadConfig, parseConfig, type NodeConfig, type TaskConfig, type FunctionConfig } from './node/config.js';
export { ContentCache } from './node/cache.js';
export { verifyResponse, requestHash, signedBytes, loadOrCreateNodeKey, type SignedFields } from './node/keys.js';
export { submitRequest, type RequestOptions, type RequestOutcome } from './node/requester.js';
export { ServicePort, EmbeddedPort, openLedgerPort, type LedgerPort } from './node/ledger-port.js';
export { encodeAssignment, decodeAssignment } from './node/assignment-input.js';
export { wasmAssignment, encodeWasmAssignment, decodeWasmAssignment, type WasmAssignment } from './node/wasm-assignment.js';
export { refusalResult, refusalOf, REFUSAL_CODES, type RefusalCode } from './node/refusal.js';
export { runDevnet, type DevnetOptions, type DevnetReport } from './node/devnet.js';
