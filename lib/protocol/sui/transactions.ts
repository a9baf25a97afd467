/**
 * Programmable-transaction builders for the entry functions of `atoma::db`, one per function,
 * with the argument order and Move types of the real ABI (see abi.ts for the source).
 *
 * Each builder appends one Move call to a Transaction (a fresh one by default), so several calls
 * can share one transaction and one gas payment. Inputs are validated here -- u64 range, 32-byte
 * commitments, ASCII model names -- because a bad argument otherwise costs gas for an abort.
 */
import type { Transaction, TransactionObjectArgument } from '@mysten/sui/transactions';
import { fail } from '../../engine/errors.js';
import { ATOMA_DB_MODULE, BYTES_PER_HASH_COMMITMENT, ENTRY_FUNCTIONS, SUI_RANDOM_OBJECT_ID, type AtomaEntryFunction } from './abi.js';
import { ownedInput, parseObjectId, parseU64, sharedInput, type OwnedObjectSpec, type SharedObjectSpec } from './objects.js';
import { sui } from './sdk.js';

/** What every call needs: which package to call and the AtomaDb shared object. */
export interface AtomaCallContext {
  /** Package id to call (after an upgrade: the newest version's id). */
  packageId: string;
  /** The AtomaDb shared object; passed as `&mut AtomaDb`. */
  atomaDb: SharedObjectSpec;
  /** `sui::random::Random` (0x8); only `try_settle_stack` takes it. Defaults to 0x8 resolved by the RPC node. */
  random?: SharedObjectSpec;
}

type U64Like = bigint | number | string;

/** The owned NodeBadge plus the call-specific arguments. */
interface WithBadge {
  nodeBadge: OwnedObjectSpec;
}

function bytesArg(value: unknown, what: string, exactLength?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) fail('ERR_TYPE', `${what} must be a Uint8Array`);
  if (exactLength !== undefined && value.length !== exactLength) {
    fail('ERR_SIZE', `${what} must be exactly ${exactLength} bytes (contract constant BYTES_PER_HASH_COMMITMENT), got ${value.length}`);
  }
  return value;
}

function u64Vector(values: unknown, what: string): bigint[] {
  if (!Array.isArray(values)) fail('ERR_TYPE', `${what} must be an array of u64`);
  return values.map((v, i) => parseU64(v, `${what}[${i}]`));
}

/** A fresh transaction, from the SDK loaded on first use (sdk.ts). */
function newTransaction(): Transaction {
  return new (sui('transactions').Transaction)();
}

/** Appends `package::db::fn(args)`; checks the argument count against the ABI table. */
function call(
  tx: Transaction,
  ctx: AtomaCallContext,
  fn: AtomaEntryFunction,
  args: (tx: Transaction) => TransactionObjectArgument[],
): Transaction {
  const pkg = parseObjectId(ctx.packageId, 'packageId');
  const built = [sharedInput(tx, ctx.atomaDb, true, 'atomaDb'), ...args(tx)];
  if (built.length !== ENTRY_FUNCTIONS[fn].length) {
    fail('ERR_INTERNAL', `${fn}: built ${built.length} arguments, ABI has ${ENTRY_FUNCTIONS[fn].length}`);
  }
  tx.moveCall({ target: `${pkg}::${ATOMA_DB_MODULE}::${fn}`, typeArguments: [], arguments: built });
  return tx;
}

/**
 * `register_node_entry(self: &mut AtomaDb, ctx)`: registers the sender as a node; the contract
 * transfers a new NodeBadge to the sender and emits `NodeRegisteredEvent`.
 */
export function buildRegisterNode(ctx: AtomaCallContext, tx: Transaction = newTransaction()): Transaction {
  return call(tx, ctx, 'register_node_entry', () => []);
}

/** `add_node_to_model(self, node_badge: &mut NodeBadge, model_name: ascii::String, echelon: u64)`. */
export function buildAddNodeToModel(
  ctx: AtomaCallContext,
  args: WithBadge & { modelName: string; echelon: U64Like },
  tx: Transaction = newTransaction(),
): Transaction {
  // ascii::String: Sui rejects non-ASCII bytes when it deserializes the argument.
  if (typeof args.modelName !== 'string' || !/^[\x00-\x7f]*$/.test(args.modelName)) {
    fail('ERR_ARGUMENT', 'modelName must be an ASCII string (Move type std::ascii::String)');
  }
  const echelon = parseU64(args.echelon, 'echelon');
  return call(tx, ctx, 'add_node_to_model', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.string(args.modelName),
    t.pure.u64(echelon),
  ]);
}

/** `subscribe_node_to_task(self, node_badge: &mut NodeBadge, task_small_id: u64, price_per_one_million_compute_units: u64)`. */
export function buildSubscribeNodeToTask(
  ctx: AtomaCallContext,
  args: WithBadge & { taskSmallId: U64Like; pricePerOneMillionComputeUnits: U64Like },
  tx: Transaction = newTransaction(),
): Transaction {
  const task = parseU64(args.taskSmallId, 'taskSmallId');
  const price = parseU64(args.pricePerOneMillionComputeUnits, 'pricePerOneMillionComputeUnits');
  // The contract aborts with EInvalidPricePerComputeUnit on 0.
  if (price === 0n) fail('ERR_RANGE', 'pricePerOneMillionComputeUnits must be > 0');
  return call(tx, ctx, 'subscribe_node_to_task', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.u64(task),
    t.pure.u64(price),
  ]);
}

/**
 * `try_settle_stack(self, node_badge: &NodeBadge, stack_small_id: u64, num_claimed_compute_units: u64,
 * committed_stack_proof: vector<u8>, stack_merkle_leaf: vector<u8>, random: &Random, ctx)`.
 */
export function buildTrySettleStack(
  ctx: AtomaCallContext,
  args: WithBadge & {
    stackSmallId: U64Like;
    numClaimedComputeUnits: U64Like;
    committedStackProof: Uint8Array;
    stackMerkleLeaf: Uint8Array;
  },
  tx: Transaction = newTransaction(),
): Transaction {
  const stack = parseU64(args.stackSmallId, 'stackSmallId');
  const units = parseU64(args.numClaimedComputeUnits, 'numClaimedComputeUnits');
  const proof = bytesArg(args.committedStackProof, 'committedStackProof', BYTES_PER_HASH_COMMITMENT);
  const leaf = bytesArg(args.stackMerkleLeaf, 'stackMerkleLeaf', BYTES_PER_HASH_COMMITMENT);
  const random = ctx.random ?? { objectId: SUI_RANDOM_OBJECT_ID };
  return call(tx, ctx, 'try_settle_stack', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.u64(stack),
    t.pure.u64(units),
    t.pure.vector('u8', proof),
    t.pure.vector('u8', leaf),
    // `&Random`: the Sui runtime requires Random to be passed immutably.
    sharedInput(t, random, false, 'random'),
  ]);
}

/**
 * `submit_stack_settlement_attestation(self, node_badge: &NodeBadge, stack_small_id: u64,
 * committed_stack_proof: vector<u8>, stack_merkle_leaf: vector<u8>, ctx)`.
 */
export function buildSubmitStackSettlementAttestation(
  ctx: AtomaCallContext,
  args: WithBadge & { stackSmallId: U64Like; committedStackProof: Uint8Array; stackMerkleLeaf: Uint8Array },
  tx: Transaction = newTransaction(),
): Transaction {
  const stack = parseU64(args.stackSmallId, 'stackSmallId');
  const proof = bytesArg(args.committedStackProof, 'committedStackProof', BYTES_PER_HASH_COMMITMENT);
  const leaf = bytesArg(args.stackMerkleLeaf, 'stackMerkleLeaf', BYTES_PER_HASH_COMMITMENT);
  return call(tx, ctx, 'submit_stack_settlement_attestation', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.u64(stack),
    t.pure.vector('u8', proof),
    t.pure.vector('u8', leaf),
  ]);
}

/**
 * `start_attestation_dispute(self, node_badge: &NodeBadge, stack_small_id: u64, attestation_commitment: vector<u8>)`.
 * The contract does not check the commitment's length, so neither do we (beyond "non-empty").
 */
export function buildStartAttestationDispute(
  ctx: AtomaCallContext,
  args: WithBadge & { stackSmallId: U64Like; attestationCommitment: Uint8Array },
  tx: Transaction = newTransaction(),
): Transaction {
  const stack = parseU64(args.stackSmallId, 'stackSmallId');
  const commitment = bytesArg(args.attestationCommitment, 'attestationCommitment');
  if (commitment.length === 0) fail('ERR_SIZE', 'attestationCommitment must not be empty');
  return call(tx, ctx, 'start_attestation_dispute', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.u64(stack),
    t.pure.vector('u8', commitment),
  ]);
}

/** `claim_funds(self, node_badge: &NodeBadge, settled_ticket_ids: vector<u64>, ctx)`: ids are stack small ids. */
export function buildClaimFunds(
  ctx: AtomaCallContext,
  args: WithBadge & { settledTicketIds: U64Like[] },
  tx: Transaction = newTransaction(),
): Transaction {
  const ids = u64Vector(args.settledTicketIds, 'settledTicketIds');
  if (ids.length === 0) fail('ERR_ARGUMENT', 'settledTicketIds must not be empty');
  return call(tx, ctx, 'claim_funds', (t) => [ownedInput(t, args.nodeBadge, 'nodeBadge'), t.pure.vector('u64', ids)]);
}

/**
 * `claim_funds_for_stacks(self, node_badge: &NodeBadge, stack_small_ids: vector<u64>,
 * num_compute_units_per_stack_to_claim: vector<u64>, ctx)`: the confidential-compute path.
 */
export function buildClaimFundsForStacks(
  ctx: AtomaCallContext,
  args: WithBadge & { stackSmallIds: U64Like[]; numComputeUnitsPerStackToClaim: U64Like[] },
  tx: Transaction = newTransaction(),
): Transaction {
  const ids = u64Vector(args.stackSmallIds, 'stackSmallIds');
  const units = u64Vector(args.numComputeUnitsPerStackToClaim, 'numComputeUnitsPerStackToClaim');
  // Mirrors the contract's EInvalidNumClaimedComputeUnitsPerStack length check.
  if (ids.length !== units.length) fail('ERR_SHAPE', `stackSmallIds (${ids.length}) and numComputeUnitsPerStackToClaim (${units.length}) differ in length`);
  if (ids.length === 0) fail('ERR_ARGUMENT', 'stackSmallIds must not be empty');
  return call(tx, ctx, 'claim_funds_for_stacks', (t) => [
    ownedInput(t, args.nodeBadge, 'nodeBadge'),
    t.pure.vector('u64', ids),
    t.pure.vector('u64', units),
  ]);
}
