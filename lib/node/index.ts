/**
 * The node's public surface (`atoma-node/node`): config, content cache, HTTP API, response
 * signatures, the ledger ports and the devnet. It sits at the top of the layers and loads them all.
 */
export { AtomaNode, type NodeOptions } from './node.js';
export { loadConfig, parseConfig, type NodeConfig, type TaskConfig, type FunctionConfig } from './config.js';
export { ContentCache } from './cache.js';
export { verifyResponse, requestHash, signedBytes, loadOrCreateNodeKey, type SignedFields } from './keys.js';
export { submitRequest, type RequestOptions, type RequestOutcome } from './requester.js';
export { ServicePort, EmbeddedPort, openLedgerPort, type LedgerPort } from './ledger-port.js';
export { encodeAssignment, decodeAssignment } from './assignment-input.js';
export { wasmAssignment, encodeWasmAssignment, decodeWasmAssignment, type WasmAssignment } from './wasm-assignment.js';
export { refusalResult, refusalOf, REFUSAL_CODES, type RefusalCode } from './refusal.js';
export { runDevnet, type DevnetOptions, type DevnetReport } from './devnet.js';
