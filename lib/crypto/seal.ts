/**
 * Sealing (Atoma's confidential scheme): the client draws an ephemeral X25519 key, agrees a
 * secret with the node's published key, derives an AES-256-GCM key with HKDF-SHA256 over a fresh
 * salt, and encrypts under a fresh 12-byte nonce. The header -- key id, ephemeral key, salt,
 * nonce, request id and timestamp -- is the GCM additional data, so changing any of it fails
 * authentication. The header says nothing about the plaintext: version 1 carried its SHA-256 in
 * the clear, which let anyone confirm a guessed low-entropy prompt, and GCM's tag already
 * authenticates the plaintext. The node answers with the same agreed secret under a different
 * HKDF label and a fresh salt and nonce, bound to the request id. An ephemeral key of low order
 * (whose shared secret is all zeros, whatever the node's key) is refused as malformed before the
 * node records anything. docs/wasm.md has the exact byte layout.
 */
import { createCipheriv, createDecipheriv, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { AtomaError, fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { generateX25519, privateKeyFromDer, publicKeyFromRaw, rawPublicKey } from './keys.js';

/** The envelope format; version 1 (plaintext hash in the clear) is refused. */
export const SEAL_VERSION: 2 = 2;

/** A sealed request or response: JSON-safe (base64 and hex strings). */
export interface SealedMessage {
  v: typeof SEAL_VERSION;
  kind: 'request' | 'response';
  /** Id of the node key the request was sealed to. */
  keyId: string;
  /** The client's ephemeral X25519 public key, raw, base64. */
  ephemeralPublicKey: string;
  /** HKDF salt, 16 bytes, base64. */
  salt: string;
  /** AES-GCM nonce, 12 bytes, base64. */
  nonce: string;
  /** 16 random bytes, hex, chosen by the client; the response carries the same. */
  requestId: string;
  /** Milliseconds since the epoch when the client sealed the request. */
  timestamp: number;
  /** Ciphertext followed by the 16-byte GCM tag, base64. */
  ciphertext: string;
}

/** The node's published encryption key, as a client sees it. */
export interface RecipientKey {
  keyId: string;
  /** Raw X25519 public key (32 bytes) or its base64. */
  publicKey: Uint8Array | string;
}

/** What the client keeps to open the response: never sent. */
export interface SealSecret {
  requestId: string;
  keyId: string;
  ephemeralPrivateKey: KeyObject;
  recipientPublicKey: Buffer;
}

function aad(m: Omit<SealedMessage, 'ciphertext'>): Buffer {
  return Buffer.from(`atoma-seal/v${m.v}|${m.kind}|${m.keyId}|${m.ephemeralPublicKey}|${m.salt}|${m.nonce}|${m.requestId}|${m.timestamp}`);
}

function deriveKey(shared: Buffer, salt: Buffer, kind: 'request' | 'response', keyId: string, ephemeralPublicKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, salt, `atoma-seal/v${SEAL_VERSION} ${kind} ${keyId} ${ephemeralPublicKey}`, 32));
}

const P25519 = 2n ** 255n - 19n;
/**
 * The u-coordinates (mod p) of the X25519 points of order 1, 2, 4 and 8 (the list libsodium
 * refuses). With any of them the shared secret is all zeros whatever the private key, so a
 * message made with one proves nothing about its sender.
 */
const LOW_ORDER = new Set([
  0n, 1n, P25519 - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** True for a raw X25519 public key of low order, in any of its encodings (X25519 ignores the top bit and reduces mod p). */
export function isLowOrderX25519(raw: Uint8Array): boolean {
  let u = 0n;
  for (let i = 31; i >= 0; i--) u = (u << 8n) | BigInt(raw[i]);
  return LOW_ORDER.has((u & ((1n << 255n) - 1n)) % P25519);
}

/** X25519 with a typed refusal: OpenSSL throws its own error when the result is all zeros. */
function agree(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  try {
    return diffieHellman({ privateKey, publicKey });
  } catch (e) {
    fail('ERR_SEAL_AUTH', `sealed message: no shared secret with this key (${(e as Error).message})`);
  }
}

const FIELDS = new Set(['v', 'kind', 'keyId', 'ephemeralPublicKey', 'salt', 'nonce', 'requestId', 'timestamp', 'ciphertext']);

function b64(s: unknown, bytes: number | null, name: string): Buffer {
  if (typeof s !== 'string') fail('ERR_SEAL_FORMAT', `sealed message: ${name} must be a base64 string`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s || (bytes !== null && b.length !== bytes)) fail('ERR_SEAL_FORMAT', `sealed message: ${name} must be ${bytes ?? 'some'} bytes of canonical base64`);
  return b;
}

/** Checks the shape of a sealed message from the wire. */
export function checkSealed(m: unknown, kind: 'request' | 'response'): SealedMessage {
  const x = m as SealedMessage;
  if (typeof m !== 'object' || m === null) fail('ERR_SEAL_FORMAT', 'sealed message: not an object');
  if (x.v !== SEAL_VERSION) fail('ERR_SEAL_FORMAT', `sealed message: unsupported version ${brief(x.v)}`);
  if (x.kind !== kind) fail('ERR_SEAL_FORMAT', `sealed message: expected a ${kind}, got ${brief(x.kind)}`);
  for (const k of Object.keys(x)) if (!FIELDS.has(k)) fail('ERR_SEAL_FORMAT', `sealed message: unknown field '${k.slice(0, 40)}'`);
  if (typeof x.keyId !== 'string' || !/^[0-9a-f]{32}$/.test(x.keyId)) fail('ERR_SEAL_FORMAT', 'sealed message: keyId must be 32 hex digits');
  if (typeof x.requestId !== 'string' || !/^[0-9a-f]{32}$/.test(x.requestId)) fail('ERR_SEAL_FORMAT', 'sealed message: requestId must be 32 hex digits');
  if (!Number.isSafeInteger(x.timestamp) || x.timestamp < 0) fail('ERR_SEAL_FORMAT', 'sealed message: timestamp must be milliseconds since the epoch');
  if (isLowOrderX25519(b64(x.ephemeralPublicKey, 32, 'ephemeralPublicKey'))) fail('ERR_SEAL_FORMAT', 'sealed message: ephemeralPublicKey is a low-order X25519 point (it agrees no secret)');
  b64(x.salt, 16, 'salt');
  b64(x.nonce, 12, 'nonce');
  if (b64(x.ciphertext, null, 'ciphertext').length < 16) fail('ERR_SEAL_FORMAT', 'sealed message: ciphertext shorter than the GCM tag');
  return x;
}

function encrypt(key: Buffer, header: Omit<SealedMessage, 'ciphertext'>, plaintext: Uint8Array): SealedMessage {
  const c = createCipheriv('aes-256-gcm', key, Buffer.from(header.nonce, 'base64'));
  c.setAAD(aad(header));
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { ...header, ciphertext: body.toString('base64') };
}

function decrypt(key: Buffer, m: SealedMessage): Buffer {
  const body = Buffer.from(m.ciphertext, 'base64');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(m.nonce, 'base64'));
  d.setAAD(aad(m));
  d.setAuthTag(body.subarray(body.length - 16));
  let plain: Buffer;
  try {
    plain = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
  } catch {
    fail('ERR_SEAL_AUTH', `sealed ${m.kind} ${m.requestId}: authentication failed (wrong key, or the message was altered)`);
  }
  return plain;
}

/**
 * Client side: seals a request body to a node's published key. Keep `secret` to open the answer.
 *
 * @example
 * const { message, secret } = seal(Buffer.from('{"prompt":"hi"}'), nodeKey);
 * const answer = open(await send(message), secret);
 */
export function seal(plaintext: Uint8Array, recipient: RecipientKey, opts: { now?: number } = {}): { message: SealedMessage; secret: SealSecret } {
  if (!(plaintext instanceof Uint8Array)) fail('ERR_TYPE', 'seal: plaintext must be bytes');
  const pub = typeof recipient.publicKey === 'string' ? Buffer.from(recipient.publicKey, 'base64') : Buffer.from(recipient.publicKey);
  const nodeKey = publicKeyFromRaw(pub);
  const eph = generateX25519();
  if (isLowOrderX25519(pub)) fail('ERR_SEAL_FORMAT', `seal: node key ${recipient.keyId} is a low-order X25519 point`);
  const shared = agree(eph.privateKey, nodeKey);
  const header = {
    v: SEAL_VERSION, kind: 'request' as const, keyId: recipient.keyId, ephemeralPublicKey: eph.publicKey.toString('base64'),
    salt: randomBytes(16).toString('base64'), nonce: randomBytes(12).toString('base64'), requestId: randomBytes(16).toString('hex'),
    timestamp: opts.now ?? Date.now(),
  };
  const key = deriveKey(shared, Buffer.from(header.salt, 'base64'), 'request', header.keyId, header.ephemeralPublicKey);
  return {
    message: encrypt(key, header, plaintext),
    secret: { requestId: header.requestId, keyId: header.keyId, ephemeralPrivateKey: eph.privateKey, recipientPublicKey: pub },
  };
}

/**
 * Client side: opens the node's sealed response to a request sealed with `seal`.
 * Throws ERR_SEAL_AUTH (wrong secret, altered message) or ERR_SEAL_FORMAT.
 */
export function open(response: SealedMessage, secret: SealSecret): Buffer {
  const m = checkSealed(response, 'response');
  if (m.requestId !== secret.requestId || m.keyId !== secret.keyId) fail('ERR_SEAL_AUTH', `sealed response ${m.requestId}: not the answer to request ${secret.requestId}`);
  const shared = agree(secret.ephemeralPrivateKey, publicKeyFromRaw(secret.recipientPublicKey));
  if (m.ephemeralPublicKey !== rawPublicKey(secret.ephemeralPrivateKey).toString('base64')) fail('ERR_SEAL_AUTH', 'sealed response: made for another client key');
  return decrypt(deriveKey(shared, Buffer.from(m.salt, 'base64'), 'response', m.keyId, m.ephemeralPublicKey), m);
}

function nodeShared(m: SealedMessage, privateKey: KeyObject | Uint8Array): Buffer {
  const k = privateKey instanceof Uint8Array ? privateKeyFromDer(privateKey) : privateKey;
  return agree(k, publicKeyFromRaw(Buffer.from(m.ephemeralPublicKey, 'base64')));
}

/**
 * Node side (inside the executing worker): opens a request with the node key it names. Every
 * failure is an ERR_SEAL_* AtomaError: runConfidential frees a request id exactly on those, so a
 * stray error type here would let a forged copy burn the genuine request's id.
 */
export function openRequest(request: SealedMessage, privateKey: KeyObject | Uint8Array): { plaintext: Buffer; requestId: string } {
  try {
    const m = checkSealed(request, 'request');
    const shared = nodeShared(m, privateKey);
    return { plaintext: decrypt(deriveKey(shared, Buffer.from(m.salt, 'base64'), 'request', m.keyId, m.ephemeralPublicKey), m), requestId: m.requestId };
  } catch (e) {
    if (e instanceof AtomaError && e.code.startsWith('ERR_SEAL')) throw e;
    fail('ERR_SEAL_AUTH', `sealed request: cannot be opened (${(e as Error)?.message ?? String(e)})`);
  }
}

/** Node side (inside the executing worker): seals the response to the client of `request`. */
export function sealResponse(plaintext: Uint8Array, request: SealedMessage, privateKey: KeyObject | Uint8Array): SealedMessage {
  const m = checkSealed(request, 'request');
  const shared = nodeShared(m, privateKey);
  const header = {
    v: SEAL_VERSION, kind: 'response' as const, keyId: m.keyId, ephemeralPublicKey: m.ephemeralPublicKey,
    salt: randomBytes(16).toString('base64'), nonce: randomBytes(12).toString('base64'), requestId: m.requestId,
    timestamp: m.timestamp,
  };
  return encrypt(deriveKey(shared, Buffer.from(header.salt, 'base64'), 'response', header.keyId, header.ephemeralPublicKey), header, plaintext);
}

