/**
 * atoma-node: a deterministic compute engine. Every kernel follows one canonical arithmetic
 * (DETERMINISM.md, docs/canonical-arithmetic.md), so every honest node gets the same bytes.
 */
export * from './engine/index.js';
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
export * from './node/index.js';
