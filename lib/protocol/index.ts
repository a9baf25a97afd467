/** The protocol's public surface: rules, sampling, commitments, traces, ledger, simulator. */
export { apply, applyInPlace, emptyState, eligibleNodes, escrowFor, payment, nextBeacon, nextDeadline, MAX_KEYS_PER_NODE, type Applied, type Change } from './machine.js';
export { sampleNodes, sampleSorted } from './sampling.js';
export { commitment } from './commitment.js';
export { auditAmounts } from './accounting.js';
export { Trace, splitPoint, interiorHash } from './trace.js';
export { validateEvent, MAX_ATTESTATION, MAX_REFEREES } from './validate.js';
export { signEvent, checkSignature, preverifyEvent, eventDigest, canonicalJson, actorOf, generateSigner, signerFromSeed, rawPublicKey, EVENT_SIGNATURE_CONTEXT, type Signer } from './signing.js';
export { DEFAULT_PARAMS, type Params } from './params.js';
export { Ledger, MAX_INPUT, DEFAULT_INPUT_QUOTA, type LedgerOptions, type SubmitResult } from './ledger/store.js';
export { serveLedger, type LedgerService, type ServiceOptions } from './ledger/service.js';
export { LedgerClient, type ClientEvent } from './ledger/client.js';
export { signInput, type InputGrant } from './ledger/inputs.js';
export { LedgerKeyDirectory, ServiceKeyDirectory, publishKeyEvent } from './ledger/keys.js';
export { simulate, type SimulationOptions, type SimulationReport } from './simulate.js';
export type * from './types.js';
