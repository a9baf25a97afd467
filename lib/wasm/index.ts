/** Public API of the WebAssembly function runner (docs/wasm.md). */
export {
  WasmFunction, runWasm, resultDigestOf, DEFAULT_FUEL, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS,
  type WasmLoadOptions, type WasmRunOptions, type WasmResult, type WasmErrorCode,
} from './runner.js';
export { assembleWat, exampleWasm, WASM_EXAMPLES, type WasmExample } from './assemble.js';
export { ALLOWED_IMPORTS } from './policy.js';
export { MAX_CALL_DEPTH } from './instrument.js';
export { RANDOM_STREAM } from './wasi.js';
