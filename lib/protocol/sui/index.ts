/**
 * Public surface of the Sui ledger client (Atoma's `atoma::db` Move module). See docs/sui.md.
 */
export { SuiLedgerClient, type OfflineGas, type ExecutionResult } from './client.js';
export { parseSuiConfig, loadSuiConfig, DEFAULT_GAS_BUDGET, type SuiLedgerConfig } from './config.js';
export { loadSuiKey, type SuiKeySource } from './keys.js';
export {
  parseAtomaEvent, parseAtomaEventFields, atomaEventName, ATOMA_EVENT_SCHEMAS,
  type AtomaEvent, type AtomaEventName, type AtomaEventFields, type SuiEventId,
} from './events.js';
export { AtomaEventPoller, type EventQuerySource, type EventPage, type PollResult, type RetryPolicy } from './poller.js';
export { SqliteCursorStore } from './cursor-store.js';
export {
  buildRegisterNode, buildAddNodeToModel, buildSubscribeNodeToTask, buildTrySettleStack, buildSubmitStackSettlementAttestation,
  buildStartAttestationDispute, buildClaimFunds, buildClaimFundsForStacks, type AtomaCallContext,
} from './transactions.js';
export { type SharedObjectSpec, type OwnedObjectSpec } from './objects.js';
export { ATOMA_DB_MODULE, ENTRY_FUNCTIONS, SUI_RANDOM_OBJECT_ID, BYTES_PER_HASH_COMMITMENT } from './abi.js';
