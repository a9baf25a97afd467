/**
 * Facts about Atoma's Move package on Sui, in one place, so that the transaction builders, the
 * event parser and the docs cannot drift apart.
 *
 * Source (read, not copied): atoma-network/atoma-contracts, file
 * sui/packages/atoma/sources/db.move at commit 9e53429730ced0e502b066a208659c47e004b921
 * (2025-04-11, "fix issue with calculate stack fee amount (#145)"):
 * https://github.com/atoma-network/atoma-contracts/blob/9e53429730ced0e502b066a208659c47e004b921/sui/packages/atoma/sources/db.move
 * Cross-checked against the Rust node's JSON shapes in atoma-network/atoma-node,
 * atoma-sui/src/events.rs and atoma-sui/src/client.rs at commit c5e7a0ab714e8cc67bfeb0bbbc73f8832114784e.
 */

/** The Move module inside the `atoma` package that holds the on-chain database. */
export const ATOMA_DB_MODULE = 'db';

/** `sui::random::Random`, the system randomness object (a shared object at address 0x8). */
export const SUI_RANDOM_OBJECT_ID = '0x0000000000000000000000000000000000000000000000000000000000000008';

/**
 * The contract requires `committed_stack_proof` and `stack_merkle_leaf` to be exactly this many
 * bytes (`BYTES_PER_HASH_COMMITMENT`); checking it here saves the gas of an aborted transaction.
 */
export const BYTES_PER_HASH_COMMITMENT = 32;

/**
 * Parameter kinds of the entry functions, in ABI order, with `&mut TxContext` left out (the
 * runtime supplies it). `db` is `&mut AtomaDb` (shared, mutable), `badge` is `&NodeBadge` or
 * `&mut NodeBadge` (owned), `random` is `&sui::random::Random` (shared, immutable).
 */
export const ENTRY_FUNCTIONS = {
  register_node_entry: ['db'],
  add_node_to_model: ['db', 'badge', 'ascii', 'u64'],
  subscribe_node_to_task: ['db', 'badge', 'u64', 'u64'],
  try_settle_stack: ['db', 'badge', 'u64', 'u64', 'vector<u8>', 'vector<u8>', 'random'],
  submit_stack_settlement_attestation: ['db', 'badge', 'u64', 'vector<u8>', 'vector<u8>'],
  start_attestation_dispute: ['db', 'badge', 'u64', 'vector<u8>'],
  claim_funds: ['db', 'badge', 'vector<u64>'],
  claim_funds_for_stacks: ['db', 'badge', 'vector<u64>', 'vector<u64>'],
} as const;

export type AtomaEntryFunction = keyof typeof ENTRY_FUNCTIONS;
