/**
 * The one error type of the engine. `code` is stable and machine-readable; the message names
 * the problem for a person.
 *
 * @example
 * try { await matmul(a, b); } catch (e) { if (e instanceof AtomaError && e.code === 'ERR_SHAPE') ... }
 */
export class AtomaError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'AtomaError';
    this.code = code;
  }
}

/** Error codes raised by the engine. */
export type AtomaErrorCode =
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_TYPE'
  | 'ERR_SIZE'
  | 'ERR_RANGE'
  | 'ERR_ALIAS'
  | 'ERR_ARGUMENT'
  | 'ERR_DETACHED'
  | 'ERR_DISPOSED'
  | 'ERR_UNKNOWN_ISA'
  | 'ERR_ISA_UNSUPPORTED'
  | 'ERR_BAD_THREADS'
  | 'ERR_IO'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_NO_CUDA'
  | 'ERR_UNKNOWN_DEVICE'
  | 'ERR_CUDA'
  | 'ERR_USAGE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_INTERNAL'
  // Sui ledger client (lib/protocol/sui/)
  | 'ERR_SUI_CONFIG'
  | 'ERR_SUI_KEY'
  | 'ERR_SUI_EVENT'
  | 'ERR_SUI_RPC'
  | 'ERR_SUI_CURSOR'
  // Quantized and half-precision weights (native/cpu/gemm_weights)
  | 'ERR_WEIGHT_BYTES'
  | 'ERR_WEIGHT_FORMAT'
  // Model files and tokenizers (lib/model/)
  | 'ERR_MODEL_FORMAT'
  | 'ERR_MODEL_UNSUPPORTED'
  | 'ERR_MODEL_SHAPE'
  | 'ERR_MODEL_MISSING_TENSOR'
  | 'ERR_TOKENIZER'
  // Protocol rules and ledgers (lib/protocol/)
  | 'ERR_EVENT'
  | 'ERR_NOT_FOUND'
  | 'ERR_DUPLICATE'
  | 'ERR_FUNDS'
  | 'ERR_NO_NODES'
  | 'ERR_PHASE'
  | 'ERR_MISMATCH'
  | 'ERR_NOT_SAMPLED'
  | 'ERR_LEDGER'
  | 'ERR_DEVNET'
  // Signed events, referees and request inputs on the ledger (lib/protocol/signing.ts, ledger/)
  | 'ERR_SIGNATURE'
  | 'ERR_REPLAY'
  | 'ERR_NOT_REFEREE'
  | 'ERR_FAUCET'
  | 'ERR_TOO_LARGE'
  | 'ERR_QUOTA'
  // WebAssembly functions and confidential requests (lib/wasm/, lib/crypto/)
  | 'ERR_WASM_INVALID'
  | 'ERR_WASM_FORBIDDEN_IMPORT'
  | 'ERR_WASM_TRAP'
  | 'ERR_WASM_OUT_OF_FUEL'
  | 'ERR_WASM_OUT_OF_MEMORY'
  | 'ERR_WASM_STACK_OVERFLOW'
  | 'ERR_WASM_TIMEOUT'
  | 'ERR_WASM_OUTPUT_LIMIT'
  | 'ERR_WASM_WORKER'
  | 'ERR_SEAL_FORMAT'
  | 'ERR_SEAL_AUTH'
  | 'ERR_SEAL_REPLAY'
  | 'ERR_KEY_UNKNOWN'
  | 'ERR_KEY_EXPIRED'
  | 'ERR_ATTESTATION'
  // The node: config, content cache, keys (lib/node/)
  | 'ERR_NODE_CONFIG'
  | 'ERR_NODE_KEY'
  | 'ERR_FETCH'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_BUSY'
  | 'ERR_TIMEOUT';

export function fail(code: AtomaErrorCode, message: string): never {
  throw new AtomaError(message, code);
}
