/**
 * Object references as transaction inputs.
 *
 * A Sui transaction names every object it touches. Shared objects (AtomaDb, Random) need their
 * `initialSharedVersion`; owned objects (the NodeBadge) need (version, digest). When we know
 * those, the transaction is complete and `tx.build()` needs no network -- that is how the tests
 * build and check real bytes. When we only know the id, the SDK asks the RPC node at build time.
 */
import type { Transaction, TransactionObjectArgument } from '@mysten/sui/transactions';
import { fail } from '../../engine/errors.js';
import { sui } from './sdk.js';

/** A shared object: id, and (for offline building) the version at which it became shared. */
export interface SharedObjectSpec {
  objectId: string;
  initialSharedVersion?: bigint | number | string;
}

/** An owned object: id, and (for offline building) its current version and digest. */
export interface OwnedObjectSpec {
  objectId: string;
  version?: bigint | number | string;
  digest?: string;
}

const U64_MAX = (1n << 64n) - 1n;

/** Parses and normalizes an object id or address (`0x` + up to 64 hex digits). */
export function parseObjectId(value: unknown, what: string, code: 'ERR_SUI_CONFIG' | 'ERR_ARGUMENT' = 'ERR_ARGUMENT'): string {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(value)) {
    fail(code, `${what} must be a 0x-prefixed hex id of at most 64 digits, got ${JSON.stringify(value)}`);
  }
  return sui('utils').normalizeSuiObjectId(value);
}

/** Parses a u64 given as bigint, safe integer or decimal string. */
export function parseU64(value: unknown, what: string, code: 'ERR_RANGE' | 'ERR_SUI_CONFIG' = 'ERR_RANGE'): bigint {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) v = BigInt(value);
  else return fail(code, `${what} must be a u64 (bigint, safe integer or decimal string), got ${String(value)}`);
  if (v < 0n || v > U64_MAX) fail(code, `${what} = ${v} is outside the u64 range`);
  return v;
}

/** Checks an object digest: base58 of exactly 32 bytes. */
export function parseDigest(value: unknown, what: string, code: 'ERR_SUI_CONFIG' | 'ERR_ARGUMENT' = 'ERR_ARGUMENT'): string {
  let bytes: Uint8Array | undefined;
  if (typeof value === 'string') {
    try {
      bytes = sui('utils').fromBase58(value);
    } catch {
      bytes = undefined;
    }
  }
  if (bytes === undefined || bytes.length !== 32) fail(code, `${what} must be a base58 digest of 32 bytes`);
  return value as string;
}

/** Validates a shared-object spec (used by config parsing and by the builders). */
export function normalizeShared(spec: SharedObjectSpec, what: string, code: 'ERR_SUI_CONFIG' | 'ERR_ARGUMENT' = 'ERR_ARGUMENT'): SharedObjectSpec {
  if (typeof spec !== 'object' || spec === null) fail(code, `${what} must be an object reference`);
  const objectId = parseObjectId(spec.objectId, `${what}.objectId`, code);
  if (spec.initialSharedVersion === undefined) return { objectId };
  return {
    objectId,
    initialSharedVersion: parseU64(spec.initialSharedVersion, `${what}.initialSharedVersion`, code === 'ERR_SUI_CONFIG' ? code : 'ERR_RANGE'),
  };
}

/** Validates an owned-object spec: version and digest come together or not at all. */
export function normalizeOwned(spec: OwnedObjectSpec, what: string, code: 'ERR_SUI_CONFIG' | 'ERR_ARGUMENT' = 'ERR_ARGUMENT'): OwnedObjectSpec {
  if (typeof spec !== 'object' || spec === null) fail(code, `${what} must be an object reference`);
  const objectId = parseObjectId(spec.objectId, `${what}.objectId`, code);
  if ((spec.version === undefined) !== (spec.digest === undefined)) {
    fail(code, `${what}: give both version and digest (offline building) or neither (resolved by the RPC node)`);
  }
  if (spec.version === undefined) return { objectId };
  return {
    objectId,
    version: parseU64(spec.version, `${what}.version`, code === 'ERR_SUI_CONFIG' ? code : 'ERR_RANGE'),
    digest: parseDigest(spec.digest, `${what}.digest`, code),
  };
}

/** Adds a shared object input; fully specified if the initial shared version is known. */
export function sharedInput(tx: Transaction, spec: SharedObjectSpec, mutable: boolean, what: string): TransactionObjectArgument {
  const s = normalizeShared(spec, what);
  if (s.initialSharedVersion === undefined) return tx.object(s.objectId);
  return tx.object(sui('transactions').Inputs.SharedObjectRef({ objectId: s.objectId, initialSharedVersion: String(s.initialSharedVersion), mutable }));
}

/** Adds an owned object input; fully specified if version and digest are known. */
export function ownedInput(tx: Transaction, spec: OwnedObjectSpec, what: string): TransactionObjectArgument {
  const s = normalizeOwned(spec, what);
  if (s.version === undefined) return tx.object(s.objectId);
  return tx.object(sui('transactions').Inputs.ObjectRef({ objectId: s.objectId, version: String(s.version), digest: s.digest as string }));
}
