/**
 * Schema checks for events. Everything that reaches the rules passes through here first, from the
 * network, the embedded ledger or a replay, so the rules can trust field types. A bad event gets
 * an AtomaError with code ERR_EVENT that names the field; unknown fields are refused too, so a
 * client cannot smuggle a timestamp or entropy the ledger stamps itself.
 */
import { createHash } from 'node:crypto';
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { isHex32 } from './ids.js';
import { MAX_AMOUNT, type Params, DEFAULT_PARAMS } from './params.js';
import type { Event, EventType } from './types.js';

type FieldKind = 'hex' | 'amount' | 'count' | 'time' | 'kind' | 'security' | 'params' | 'keyId' | 'attestation' | 'referees' | 'nonce' | 'sig';

/** Longest attestation a publishKey event may carry (characters): evidence is small, the log is forever. */
export const MAX_ATTESTATION = 4096;
const KEY_ID = /^[0-9a-f]{32}$/;
/** Base64 (standard or url-safe, padded or not) or hex: opaque text the ledger does not interpret. */
const ATTESTATION = /^[A-Za-z0-9+/_=-]+$/;
/** Most referee keys a genesis may name (the court is small; the list is in every replay). */
export const MAX_REFEREES = 64;
const NONCE = /^[0-9a-f]{32}$/;
const SIG = /^[0-9a-f]{128}$/;
/** The signature fields (lib/protocol/signing.ts) every participant event may carry. */
const SIGNED = { nonce: 'nonce', sig: 'sig' } as const;

const FIELDS: Record<EventType, Record<string, FieldKind>> = {
  genesis: { params: 'params', beacon: 'hex', referees: 'referees' },
  deposit: { account: 'hex', amount: 'amount', ...SIGNED },
  register: { node: 'hex', collateral: 'amount', ...SIGNED },
  addCollateral: { node: 'hex', amount: 'amount', ...SIGNED },
  createTask: { task: 'hex', creator: 'hex', kind: 'kind', digest: 'hex', security: 'security', minReputation: 'count', ...SIGNED },
  subscribe: { node: 'hex', task: 'hex', price: 'amount', ...SIGNED },
  unsubscribe: { node: 'hex', task: 'hex', ...SIGNED },
  publishKey: { node: 'hex', keyId: 'keyId', publicKey: 'hex', notBefore: 'time', notAfter: 'time', attestation: 'attestation', ...SIGNED },
  request: { request: 'hex', task: 'hex', client: 'hex', maxPrice: 'amount', minNodes: 'count', input: 'hex', entropy: 'hex', ...SIGNED },
  commit: { request: 'hex', node: 'hex', commitment: 'hex', ...SIGNED },
  reveal: { request: 'hex', node: 'hex', outputDigest: 'hex', traceRoot: 'hex', traceLeaves: 'count', salt: 'hex', ...SIGNED },
  bisect: { request: 'hex', node: 'hex', left: 'hex', right: 'hex', ...SIGNED },
  reexecuted: { request: 'hex', referee: 'hex', leafHash: 'hex', outputDigest: 'hex', traceRoot: 'hex', traceLeaves: 'count', ...SIGNED },
  beacon: { entropy: 'hex' },
  tick: {},
};

/**
 * Fields that may be left out. A signature (nonce, sig) is optional for the rules: whether an
 * event must be signed is decided when the ledger admits it (ledger/store.ts, signing.ts), so the
 * rules, the simulator and a replay run the same on signed and unsigned logs.
 */
const OPTIONAL = new Set(['reexecuted.leafHash', 'reexecuted.outputDigest', 'reexecuted.traceRoot', 'reexecuted.traceLeaves', 'request.minNodes', 'publishKey.attestation', 'genesis.referees',
  ...Object.entries(FIELDS).flatMap(([t, f]) => ('sig' in f ? [`${t}.nonce`, `${t}.sig`] : []))]);

/** Fields the ledger stamps; a client never sends them. */
export const STAMPED: Partial<Record<EventType, string[]>> = { request: ['entropy'], beacon: ['entropy'], genesis: ['beacon'] };

export const EVENT_TYPES = Object.keys(FIELDS) as EventType[];

/** Per type, built once: the fields to check (with `at`) and the fields the ledger stamps. */
const CHECKS = new Map(EVENT_TYPES.map((t) => [t, {
  entries: Object.entries({ ...FIELDS[t], at: 'time' as FieldKind }),
  stamped: new Set([...(STAMPED[t] ?? []), 'at']),
}]));

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkParams(v: unknown): Params {
  if (!isObject(v)) fail('ERR_EVENT', 'genesis.params must be an object');
  const out: Record<string, number> = {};
  for (const key of Object.keys(DEFAULT_PARAMS)) {
    const x = v[key];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > MAX_AMOUNT) fail('ERR_EVENT', `genesis.params.${key} must be a non-negative integer`);
    out[key] = x;
  }
  for (const key of Object.keys(v)) if (!(key in DEFAULT_PARAMS)) fail('ERR_EVENT', `genesis.params: unknown field '${key}'`);
  for (const key of ['protocolFeeBps', 'attesterSurchargeBps', 'timeoutSlashBps', 'disputeSlashBps', 'disputeRewardBps']) {
    if (out[key] > 10_000) fail('ERR_EVENT', `genesis.params.${key} must be at most 10000 basis points`);
  }
  if (out.defaultSampleSize < 1 || out.defaultSampleSize > out.maxSampleSize) fail('ERR_EVENT', 'genesis.params.defaultSampleSize must be in 1..maxSampleSize');
  return out as unknown as Params;
}

function checkField(type: string, name: string, kind: FieldKind, v: unknown): unknown {
  const where = `${type}.${name}`;
  switch (kind) {
    case 'hex':
      if (!isHex32(v)) fail('ERR_EVENT', `${where} must be 64 lowercase hex digits`);
      return v;
    case 'amount':
    case 'count':
    case 'time':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_AMOUNT) fail('ERR_EVENT', `${where} must be an integer in 0..2^50`);
      return v;
    case 'kind':
      if (v !== 'inference' && v !== 'wasm') fail('ERR_EVENT', `${where} must be 'inference' or 'wasm'`);
      return v;
    case 'security': {
      if (!isObject(v)) fail('ERR_EVENT', `${where} must be {mode:'none'} or {mode:'sampling', n}`);
      if (v.mode === 'none' && Object.keys(v).length === 1) return { mode: 'none' };
      if (v.mode === 'sampling' && Object.keys(v).every((k) => k === 'mode' || k === 'n')) {
        const n = v.n;
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > 1024) fail('ERR_EVENT', `${where}.n must be an integer in 1..1024`);
        return { mode: 'sampling', n };
      }
      fail('ERR_EVENT', `${where} must be {mode:'none'} or {mode:'sampling', n}`);
    }
    case 'params':
      return checkParams(v);
    case 'keyId':
      if (typeof v !== 'string' || !KEY_ID.test(v)) fail('ERR_EVENT', `${where} must be 32 lowercase hex digits`);
      return v;
    case 'referees': {
      if (!Array.isArray(v) || v.length > MAX_REFEREES) fail('ERR_EVENT', `${where} must be a list of at most ${MAX_REFEREES} Ed25519 public keys`);
      for (const k of v) if (!isHex32(k)) fail('ERR_EVENT', `${where} entries must be 64 lowercase hex digits`);
      if (new Set(v).size !== v.length) fail('ERR_EVENT', `${where} names a referee twice`);
      return [...v];
    }
    // A malformed signature is a signature problem, whatever stage finds it.
    case 'nonce':
      if (typeof v !== 'string' || !NONCE.test(v)) fail('ERR_SIGNATURE', `${where} must be 32 lowercase hex digits`);
      return v;
    case 'sig':
      if (typeof v !== 'string' || !SIG.test(v)) fail('ERR_SIGNATURE', `${where} must be 128 lowercase hex digits (an Ed25519 signature)`);
      return v;
    case 'attestation':
      if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ATTESTATION || !ATTESTATION.test(v)) {
        fail('ERR_EVENT', `${where} must be 1..${MAX_ATTESTATION} characters of base64 or hex`);
      }
      return v;
  }
}

/**
 * A checked copy of an event. `stamped: false` (the network) refuses `at` and the ledger-stamped
 * fields; `stamped: true` (the rules, replay) requires them.
 */
export function validateEvent(input: unknown, { stamped = true } = {}): Event {
  if (!isObject(input)) fail('ERR_EVENT', 'an event must be a JSON object');
  const type = input.type;
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(FIELDS, type)) fail('ERR_EVENT', `unknown event type ${brief(type)}`);
  const fields = FIELDS[type as EventType];
  const { entries, stamped: stampedFields } = CHECKS.get(type as EventType)!;
  const out: Record<string, unknown> = { type };
  for (const key of Object.keys(input)) {
    if (key === 'type') continue;
    if (!(key in fields) && key !== 'at') fail('ERR_EVENT', `${type}: unknown field '${key}'`);
    if (!stamped && stampedFields.has(key)) fail('ERR_EVENT', `${type}.${key} is set by the ledger, not by a client`);
  }
  for (const [name, kind] of entries) {
    const v = input[name];
    if (v === undefined) {
      if (OPTIONAL.has(`${type}.${name}`) || (!stamped && stampedFields.has(name))) continue;
      fail('ERR_EVENT', `${type}.${name} is missing`);
    }
    out[name] = checkField(type, name, kind, v);
  }
  if (type === 'reexecuted') {
    const full = ['outputDigest', 'traceRoot', 'traceLeaves'].filter((k) => out[k] !== undefined).length;
    if (!((out.leafHash !== undefined && full === 0) || (out.leafHash === undefined && full === 3))) {
      fail('ERR_EVENT', 'reexecuted: give leafHash (leaf mode) or outputDigest, traceRoot and traceLeaves (full mode)');
    }
  }
  if (type === 'publishKey') {
    // The key id is derived from the key (lib/crypto/keys.ts keyIdOf), so a client that finds a
    // key by id cannot be handed a different key under that id.
    const id = createHash('sha256').update(Buffer.from(out.publicKey as string, 'hex')).digest('hex').slice(0, 32);
    if (out.keyId !== id) fail('ERR_EVENT', 'publishKey.keyId must be the first 16 bytes of SHA-256 of publicKey');
    if (/^0+$/.test(out.publicKey as string)) fail('ERR_EVENT', 'publishKey.publicKey must not be the all-zero (low-order) X25519 point');
    if ((out.notAfter as number) <= (out.notBefore as number)) fail('ERR_EVENT', 'publishKey.notAfter must be after notBefore');
  }
  if (type === 'request' && out.minNodes === undefined) out.minNodes = 1;
  if (type === 'genesis' && out.referees === undefined) out.referees = [];
  return out as unknown as Event;
}
