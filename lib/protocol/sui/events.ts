/**
 * Parsing `atoma::db` events as the Sui JSON-RPC returns them (`queryEvents` → `SuiEvent`), into
 * typed objects.
 *
 * How Sui renders Move values in `parsedJson` (and therefore what we accept):
 * u64 → decimal string; u8/u16 → JSON number; ID/address → "0x…" hex string; vector<u8> → array
 * of numbers 0..255; std::ascii::String → string; Option<T> → null or the value; a struct such as
 * NodeSmallId { inner: u64 } → { "inner": "42" }.
 *
 * Event layouts come from db.move (see abi.ts for the source commit). Sui package upgrades cannot
 * change an existing struct's layout, so a missing or extra field means we are reading the wrong
 * package or a corrupted response: both are ERR_SUI_EVENT, never a silent default.
 */
import { fail } from '../../engine/errors.js';
import { brief } from '../../engine/brief.js';
import { ATOMA_DB_MODULE } from './abi.js';
import { sui } from './sdk.js';

/** Move field types that occur in the db events, and their TypeScript images. */
interface KindToTs {
  u64: bigint;
  u16: number;
  u8: number;
  id: string;
  address: string;
  bytes: Uint8Array;
  ascii: string;
  /** NodeSmallId / TaskSmallId / StackSmallId: `{ inner: u64 }`. */
  smallId: bigint;
  /** vector<NodeSmallId>. */
  smallIds: bigint[];
  /** EchelonId: `{ id: u64 }`. */
  echelonId: bigint;
  /** TaskRole / SecurityLevel: `{ inner: u16 }`. */
  u16Inner: number;
  'option<ascii>': string | null;
  'option<u8>': number | null;
}
type Kind = keyof KindToTs;

/** Field layouts of the db events, keyed by Move field name, in declaration order. */
export const ATOMA_EVENT_SCHEMAS = {
  PublishedEvent: { db: 'id', manager_badge: 'id' },
  NodeRegisteredEvent: { badge_id: 'id', node_small_id: 'smallId' },
  NewKeyRotationEvent: { key_rotation_counter: 'u64', epoch: 'u64', nonce: 'u64' },
  NodePublicKeyCommittmentEvent: {
    epoch: 'u64', key_rotation_counter: 'u64', node_id: 'smallId', new_public_key: 'bytes', device_type: 'u16', evidence_bytes: 'bytes',
  },
  NodeSubscribedToModelEvent: { node_small_id: 'smallId', model_name: 'ascii', echelon_id: 'echelonId' },
  NodeSubscribedToTaskEvent: {
    task_small_id: 'smallId', node_small_id: 'smallId', price_per_one_million_compute_units: 'u64', max_num_compute_units: 'u64',
  },
  NodeSubscriptionUpdatedEvent: {
    node_small_id: 'smallId', task_small_id: 'smallId', price_per_one_million_compute_units: 'u64', max_num_compute_units: 'u64',
  },
  NodeUnsubscribedFromTaskEvent: { task_small_id: 'smallId', node_small_id: 'smallId' },
  TaskRegisteredEvent: {
    task_id: 'id', task_small_id: 'smallId', role: 'u16Inner', model_name: 'option<ascii>', security_level: 'u16Inner', minimum_reputation_score: 'option<u8>',
  },
  TaskDeprecationEvent: { task_id: 'id', task_small_id: 'smallId', epoch: 'u64' },
  TaskRemovedEvent: { task_id: 'id', task_small_id: 'smallId', removed_at_epoch: 'u64' },
  StackCreatedEvent: {
    stack_id: 'id', stack_small_id: 'smallId', owner: 'address', task_small_id: 'smallId', selected_node_id: 'smallId',
    num_compute_units: 'u64', price_per_one_million_compute_units: 'u64',
  },
  StackTrySettleEvent: {
    stack_small_id: 'smallId', selected_node_id: 'smallId', requested_attestation_nodes: 'smallIds', committed_stack_proof: 'bytes',
    stack_merkle_leaf: 'bytes', num_claimed_compute_units: 'u64',
  },
  NewStackSettlementAttestationEvent: {
    stack_small_id: 'smallId', attestation_node_id: 'smallId', committed_stack_proof: 'bytes', stack_merkle_leaf: 'bytes',
  },
  StackSettlementTicketEvent: {
    stack_small_id: 'smallId', selected_node_id: 'smallId', num_claimed_compute_units: 'u64', requested_attestation_nodes: 'smallIds',
    dispute_settled_at_epoch: 'u64', committed_stack_proof: 'bytes',
  },
  StackSettlementTicketClaimedEvent: {
    stack_small_id: 'smallId', selected_node_id: 'smallId', attestation_nodes: 'smallIds', num_claimed_compute_units: 'u64', user_refund_amount: 'u64',
  },
  StackAttestationDisputeEvent: {
    stack_small_id: 'smallId', attestation_commitment: 'bytes', attestation_node_id: 'smallId', original_node_id: 'smallId', original_commitment: 'bytes',
  },
  ClaimedStackEvent: { stack_small_id: 'smallId', selected_node_id: 'smallId', num_claimed_compute_units: 'u64', user_refund_amount: 'u64' },
} as const satisfies Record<string, Record<string, Kind>>;

export type AtomaEventName = keyof typeof ATOMA_EVENT_SCHEMAS;

type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type FieldsOf<S extends Record<string, Kind>> = { [K in keyof S & string as Camel<K>]: KindToTs[S[K]] };

/** The typed fields of one event, camelCased (`stack_small_id` → `stackSmallId`). */
export type AtomaEventFields<N extends AtomaEventName> = FieldsOf<(typeof ATOMA_EVENT_SCHEMAS)[N]>;

/** Position of an event on chain: also the queryEvents cursor. */
export interface SuiEventId {
  txDigest: string;
  eventSeq: string;
}

/** One parsed event: a discriminated union on `name`. */
export type AtomaEvent = {
  [N in AtomaEventName]: {
    name: N;
    /** Full Move type, e.g. `0x…::db::StackCreatedEvent`. */
    type: string;
    id: SuiEventId;
    sender: string;
    timestampMs: bigint | null;
    fields: AtomaEventFields<N>;
  };
}[AtomaEventName];

/** The subset of the JSON-RPC `SuiEvent` we read. */
export interface RawSuiEvent {
  id: SuiEventId;
  type: string;
  sender: string;
  parsedJson: unknown;
  timestampMs?: string | null;
  [extra: string]: unknown;
}

function bad(where: string, msg: string): never {
  return fail('ERR_SUI_EVENT', `${where}: ${msg}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const U64_MAX = (1n << 64n) - 1n;

function u64(v: unknown, where: string): bigint {
  // Sui renders u64 as a decimal string because JSON numbers lose precision above 2^53.
  if (typeof v !== 'string') bad(where, `u64 must arrive as a decimal string, got ${typeof v}`);
  if (!/^(0|[1-9][0-9]{0,19})$/.test(v)) bad(where, `"${v}" is not a decimal u64`);
  const n = BigInt(v);
  if (n > U64_MAX) bad(where, `${v} exceeds u64`);
  return n;
}

function uint(v: unknown, bits: 8 | 16, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** bits) bad(where, `expected a u${bits} number, got ${brief(v)}`);
  return v;
}

function hexId(v: unknown, where: string): string {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(v)) bad(where, `expected a 0x-hex id/address, got ${brief(v)}`);
  return sui('utils').normalizeSuiAddress(v);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of keys) if (!(k in obj)) bad(where, `missing field "${k}"`);
  for (const k of Object.keys(obj)) if (!keys.includes(k)) bad(where, `unexpected field "${k}"`);
}

function inner(v: unknown, key: 'inner' | 'id', where: string): unknown {
  if (!isRecord(v)) bad(where, `expected { ${key}: … }, got ${brief(v)}`);
  exactKeys(v, [key], where);
  return v[key];
}

function decode(kind: Kind, v: unknown, where: string): KindToTs[Kind] {
  switch (kind) {
    case 'u64':
      return u64(v, where);
    case 'u16':
      return uint(v, 16, where);
    case 'u8':
      return uint(v, 8, where);
    case 'id':
    case 'address':
      return hexId(v, where);
    case 'bytes': {
      if (!Array.isArray(v)) bad(where, `vector<u8> must be an array of numbers, got ${typeof v}`);
      const out = new Uint8Array(v.length);
      v.forEach((b, i) => (out[i] = uint(b, 8, `${where}[${i}]`)));
      return out;
    }
    case 'ascii':
      if (typeof v !== 'string' || !/^[\x00-\x7f]*$/.test(v)) bad(where, `expected an ASCII string, got ${brief(v)}`);
      return v;
    case 'smallId':
      return u64(inner(v, 'inner', where), `${where}.inner`);
    case 'smallIds':
      if (!Array.isArray(v)) bad(where, `vector<NodeSmallId> must be an array, got ${typeof v}`);
      return v.map((e, i) => u64(inner(e, 'inner', `${where}[${i}]`), `${where}[${i}].inner`));
    case 'echelonId':
      return u64(inner(v, 'id', where), `${where}.id`);
    case 'u16Inner':
      return uint(inner(v, 'inner', where), 16, `${where}.inner`);
    case 'option<ascii>':
      return v === null ? null : (decode('ascii', v, where) as string);
    case 'option<u8>':
      return v === null ? null : uint(v, 8, where);
  }
}

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Validates `parsedJson` of a db event named `name` and returns its typed, camelCased fields.
 *
 * @example
 * const f = parseAtomaEventFields('StackCreatedEvent', event.parsedJson);
 * f.stackSmallId; // bigint
 */
export function parseAtomaEventFields<N extends AtomaEventName>(name: N, json: unknown): AtomaEventFields<N> {
  const schema: Record<string, Kind> = ATOMA_EVENT_SCHEMAS[name];
  if (schema === undefined) bad(String(name), 'not an atoma::db event');
  if (!isRecord(json)) bad(name, `parsedJson must be an object, got ${json === null ? 'null' : typeof json}`);
  exactKeys(json, Object.keys(schema), name);
  const out: Record<string, unknown> = {};
  for (const [field, kind] of Object.entries(schema)) out[camel(field)] = decode(kind, json[field], `${name}.${field}`);
  return out as AtomaEventFields<N>;
}

const TYPE_RE = /^(0x[0-9a-fA-F]{1,64})::([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Splits an event type and returns the event name if it is an `atoma::db` event of the given
 * package that we know, else null.
 */
export function atomaEventName(type: string, packageId: string): AtomaEventName | null {
  const m = TYPE_RE.exec(type);
  if (m === null) return null;
  const { normalizeSuiAddress } = sui('utils');
  if (normalizeSuiAddress(m[1]) !== normalizeSuiAddress(packageId) || m[2] !== ATOMA_DB_MODULE) return null;
  return Object.hasOwn(ATOMA_EVENT_SCHEMAS, m[3]) ? (m[3] as AtomaEventName) : null;
}

/**
 * Parses one `SuiEvent` from queryEvents into a typed AtomaEvent. `packageId` is the package
 * that defines the event types (the original package id, stable across upgrades).
 *
 * @example
 * const ev = parseAtomaEvent(page.data[0], cfg.eventPackageId);
 * if (ev.name === 'StackTrySettleEvent') console.log(ev.fields.numClaimedComputeUnits);
 */
export function parseAtomaEvent(event: unknown, packageId: string): AtomaEvent {
  if (!isRecord(event)) bad('event', 'must be an object');
  const type = event.type;
  if (typeof type !== 'string') bad('event', 'missing "type"');
  const where = `event ${type}`;
  const m = TYPE_RE.exec(type);
  if (m === null) bad(where, 'type is not a non-generic struct tag addr::module::Name');
  const { normalizeSuiAddress } = sui('utils');
  if (normalizeSuiAddress(m[1]) !== normalizeSuiAddress(packageId)) bad(where, `not from package ${normalizeSuiAddress(packageId)}`);
  if (m[2] !== ATOMA_DB_MODULE) bad(where, `not from module ${ATOMA_DB_MODULE}`);
  const name = atomaEventName(type, packageId);
  if (name === null) bad(where, `unknown ${ATOMA_DB_MODULE} event "${m[3]}"`);

  const id = event.id;
  if (!isRecord(id)) bad(where, 'missing "id"');
  if (typeof id.txDigest !== 'string') bad(where, 'id.txDigest must be a string');
  let digestLen = -1;
  try {
    digestLen = sui('utils').fromBase58(id.txDigest).length;
  } catch {
    digestLen = -1;
  }
  if (digestLen !== 32) bad(where, 'id.txDigest must be a base58 digest of 32 bytes');
  const eventSeq = u64(id.eventSeq, `${where} id.eventSeq`).toString();
  const sender = hexId(event.sender, `${where} sender`);
  const ts = event.timestampMs;
  const timestampMs = ts === undefined || ts === null ? null : u64(ts, `${where} timestampMs`);

  return {
    name,
    type,
    id: { txDigest: id.txDigest, eventSeq },
    sender,
    timestampMs,
    fields: parseAtomaEventFields(name, event.parsedJson),
  } as AtomaEvent;
}
