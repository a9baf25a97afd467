/**
 * Signed ledger events. On a network of processes that do not trust each other an event is only
 * worth as much as the key behind it: every event a participant sends is signed by its actor (the
 * node, the client, the task creator, the referee), whose id *is* its Ed25519 public key (32 raw
 * bytes, 64 lowercase hex digits). The ledger checks the signature when it admits the event and
 * keeps it in the log, so anyone reading the log sees who signed what.
 *
 * Signed message (docs/protocol.md, "Signed events"):
 *   digest = BLAKE3-derive-key("atoma-node 2026-11 ledger event v1", canonical JSON of the event
 *            without `sig` and without the fields the ledger stamps (`at`, `entropy`))
 *   sig    = Ed25519(private key, digest)            (64 bytes, 128 lowercase hex)
 * Canonical JSON: object keys sorted (by UTF-16 code units), no whitespace, JSON.stringify's
 * escaping of strings; numbers are safe integers. `nonce` (16 random bytes, 32 hex) is inside the
 * signed message, so a replayed event carries a nonce the ledger has already seen.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { blake3 } from '../engine/hash.js';
import { isHex32 } from './ids.js';
import type { EventType } from './types.js';

export const EVENT_SIGNATURE_CONTEXT = 'atoma-node 2026-11 ledger event v1';

/** Who signs an event: an id (raw Ed25519 public key, hex) and its private key. A NodeKey fits. */
export interface Signer {
  publicKey: string;
  privateKey: KeyObject;
}

/**
 * The field that names each event's actor (whose key must sign it). `deposit` names the account
 * it credits: a deposit may be signed by it, but need not be (the faucet decides, docs/protocol.md).
 * genesis, tick and beacon are written by the ledger itself and carry no signature.
 */
export const ACTOR_FIELD: Partial<Record<EventType, string>> = {
  deposit: 'account',
  register: 'node', addCollateral: 'node', subscribe: 'node', unsubscribe: 'node', publishKey: 'node',
  commit: 'node', reveal: 'node', bisect: 'node',
  request: 'client',
  createTask: 'creator',
  reexecuted: 'referee',
};

/**
 * The actor field of an event type from the wire. Indexing ACTOR_FIELD with the raw value would
 * convert it to a key: a list nested 6,000 deep overflows the stack (an untyped RangeError out of
 * preverifyEvent, which must never throw), and 'constructor' finds Object.prototype's.
 */
function actorField(type: unknown): string | undefined {
  return typeof type === 'string' && Object.hasOwn(ACTOR_FIELD, type) ? ACTOR_FIELD[type as EventType] : undefined;
}

/** Events a participant must sign (every actor event but the faucet's deposit). */
export const SIGNED_TYPES: ReadonlySet<EventType> = new Set((Object.keys(ACTOR_FIELD) as EventType[]).filter((t) => t !== 'deposit'));

/** Fields outside the signed message: the signature itself and what the ledger stamps. */
const UNSIGNED_FIELDS = new Set(['sig', 'at', 'entropy']);

const NONCE = /^[0-9a-f]{32}$/;
const SIG = /^[0-9a-f]{128}$/;
/** DER prefixes of an Ed25519 SubjectPublicKeyInfo and of a PKCS#8 private key (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** JSON with object keys sorted and no whitespace (the byte form every signature covers). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/** The 32 bytes an event's signature signs (see the file comment). */
export function eventDigest(event: Record<string, unknown>): Buffer {
  const body: Record<string, unknown> = {};
  for (const k of Object.keys(event)) if (!UNSIGNED_FIELDS.has(k) && event[k] !== undefined) body[k] = event[k];
  return blake3(canonicalJson(body), { context: EVENT_SIGNATURE_CONTEXT });
}

/** The raw public key (64 hex) of an Ed25519 key object (private or public). */
export function rawPublicKey(key: KeyObject): string {
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return Buffer.from(der.subarray(SPKI_PREFIX.length)).toString('hex');
}

/** A fresh Ed25519 signer. */
export function generateSigner(): Signer {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

/** The signer of a 32-byte Ed25519 seed (hex or bytes): the same seed always gives the same id. */
export function signerFromSeed(seed: Uint8Array | string): Signer {
  const raw = typeof seed === 'string' ? Buffer.from(seed, 'hex') : Buffer.from(seed);
  if (raw.length !== 32 || (typeof seed === 'string' && !isHex32(seed))) fail('ERR_ARGUMENT', 'signerFromSeed: the seed must be 32 bytes (64 lowercase hex digits)');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

/** Public key objects by id: building one from DER costs about as much as a verification. */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 100_000;

function publicKeyOf(id: string): KeyObject | undefined {
  let k = publicKeys.get(id);
  if (k) return k;
  try {
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(id, 'hex')]), format: 'der', type: 'spki' });
  } catch {
    return undefined; // not a point on the curve: no signature can verify
  }
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear();
  publicKeys.set(id, k);
  return k;
}

/** Whether `sig` (128 hex) is the Ed25519 signature of `digest` by `id` (a raw public key, 64 hex). */
export function verifiesAs(id: string, digest: Uint8Array, sig: string): boolean {
  if (!isHex32(id) || typeof sig !== 'string' || !SIG.test(sig)) return false;
  const key = publicKeyOf(id);
  try {
    return key !== undefined && verify(null, digest, key, Buffer.from(sig, 'hex'));
  } catch {
    return false;
  }
}

/**
 * Signatures already verified off the main thread (preverifyEvent): sig -> the digest it was
 * verified over. The digest covers the actor field, so an entry stands for exactly one (actor,
 * message, signature) triple that verified; an entry is used once. Bounded: cleared when full.
 */
const preverified = new Map<string, string>();
const MAX_PREVERIFIED = 100_000;

/**
 * Verifies an event's signature on libuv's thread pool (node:crypto's asynchronous verify), so a
 * service can check many signatures in parallel with its event loop; a later `checkSignature` of
 * the same event then costs a digest instead of an Ed25519 verification. Never rejects: an event
 * that does not verify here is simply checked (and refused) by `checkSignature`.
 *
 * @example
 * await preverifyEvent(body);   // then ledger.submit(body): admission skips the verification
 */
export function preverifyEvent(event: unknown): Promise<void> {
  if (typeof event !== 'object' || event === null) return Promise.resolve();
  const e = event as Record<string, unknown>;
  const field = actorField(e.type);
  const actor = field ? e[field] : undefined;
  if (!isHex32(actor) || typeof e.sig !== 'string' || !SIG.test(e.sig) || typeof e.nonce !== 'string' || !NONCE.test(e.nonce)) return Promise.resolve();
  const key = publicKeyOf(actor);
  if (!key) return Promise.resolve();
  let digest: Buffer;
  try {
    digest = eventDigest(e);
  } catch {
    return Promise.resolve();
  }
  const sig = e.sig;
  return new Promise((resolve) => {
    verify(null, digest, key, Buffer.from(sig, 'hex'), (err, ok) => {
      if (!err && ok) {
        if (preverified.size >= MAX_PREVERIFIED) preverified.clear();
        preverified.set(sig, digest.toString('hex'));
      }
      resolve();
    });
  });
}

/**
 * Signs an event as its actor: adds a fresh `nonce` and the `sig` over both (any old `nonce` and
 * `sig` are replaced). The actor field must name the signer; a ledger-stamped field (`at`,
 * `entropy`) is not part of what a client sends and is refused.
 *
 * @example
 * const key = generateSigner();   // or a NodeKey from lib/node/keys.ts
 * await client.submit(signEvent({ type: 'register', node: key.publicKey, collateral: 1_000_000 }, key));
 */
export function signEvent<T extends Record<string, unknown>>(event: T, signer: Signer): T & { nonce: string; sig: string } {
  const unsigned = withNonce(event, signer);
  const sig = sign(null, eventDigest(unsigned), signer.privateKey).toString('hex');
  return { ...unsigned, sig } as T & { nonce: string; sig: string };
}

/** The event with a fresh nonce (and no old sig), after checking the signer is its actor. */
function withNonce(event: Record<string, unknown>, signer: Signer): Record<string, unknown> {
  const type = event.type as EventType;
  const field = actorField(type);
  if (!field) fail('ERR_SIGNATURE', `signEvent: ${brief(type)} events are not signed by a participant`);
  if (!isHex32(signer?.publicKey)) fail('ERR_SIGNATURE', 'signEvent: signer.publicKey must be 64 lowercase hex digits');
  if (event[field] !== signer.publicKey) fail('ERR_SIGNATURE', `signEvent: ${type}.${field} must be the signer's public key`);
  if ('at' in event || 'entropy' in event) fail('ERR_EVENT', `signEvent: ${type}: at and entropy are stamped by the ledger`);
  const { sig: _old, ...rest } = event;
  return { ...rest, nonce: randomBytes(16).toString('hex') };
}

/** The id an event is signed by (its actor field), or undefined for ledger events. */
export function actorOf(event: Record<string, unknown>): string | undefined {
  const field = actorField(event.type);
  const v = field ? event[field] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * Checks an event's signature against its actor id; throws ERR_SIGNATURE (missing, malformed or
 * not verifying). An unsigned `deposit` passes (the faucet decides on deposits); a signed one is
 * checked like any other. Returns the (actor, nonce) pair the ledger records against replays, or
 * undefined for an unsigned deposit.
 *
 * @example
 * const { actor, nonce } = checkSignature(event)!;
 */
export function checkSignature(event: Record<string, unknown>): { actor: string; nonce: string } | undefined {
  const type = event.type as EventType;
  const field = actorField(type);
  if (!field) return undefined;
  const { nonce, sig } = event;
  if (nonce === undefined && sig === undefined) {
    if (SIGNED_TYPES.has(type)) fail('ERR_SIGNATURE', `${type} must be signed by its ${field} (nonce and sig missing)`);
    return undefined;
  }
  if (typeof nonce !== 'string' || !NONCE.test(nonce)) fail('ERR_SIGNATURE', `${type}.nonce must be 32 lowercase hex digits`);
  if (typeof sig !== 'string' || !SIG.test(sig)) fail('ERR_SIGNATURE', `${type}.sig must be 128 lowercase hex digits (an Ed25519 signature)`);
  const actor = event[field];
  if (!isHex32(actor)) fail('ERR_SIGNATURE', `${type}.${field} must be an Ed25519 public key (64 lowercase hex digits)`);
  const key = publicKeyOf(actor);
  let ok = false;
  try {
    const digest = eventDigest(event);
    const done = preverified.get(sig);
    if (done !== undefined) preverified.delete(sig);
    ok = key !== undefined && (done === digest.toString('hex') || verify(null, digest, key, Buffer.from(sig, 'hex')));
  } catch {
    ok = false;
  }
  if (!ok) fail('ERR_SIGNATURE', `${type}: the signature does not verify against ${field} ${actor}`);
  return { actor, nonce };
}
