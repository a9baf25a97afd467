/**
 * X25519 key pairs of nodes and clients, as node:crypto KeyObjects, with raw 32-byte public keys
 * for the wire and the ledger. A key's id is the first 16 bytes of SHA-256 of its raw public
 * key, in hex: short enough for a header, long enough that ids never collide by chance.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { fail } from '../engine/errors.js';

/** The DER prefix of an X25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it. */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  keyId: string;
  /** Raw 32-byte public key. */
  publicKey: Buffer;
  privateKey: KeyObject;
}

export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 32);
}

/** The raw public key of a public or private X25519 KeyObject. */
export function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const spki = pub.export({ type: 'spki', format: 'der' });
  return Buffer.from(spki.subarray(SPKI_PREFIX.length));
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) fail('ERR_SEAL_FORMAT', 'an X25519 public key must be 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function privateKeyFromDer(der: Uint8Array): KeyObject {
  try {
    const k = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    if (k.asymmetricKeyType !== 'x25519') fail('ERR_SEAL_FORMAT', `expected an X25519 private key, got ${k.asymmetricKeyType}`);
    return k;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_SEAL_FORMAT') throw e;
    fail('ERR_SEAL_FORMAT', `not a PKCS#8 X25519 private key: ${(e as Error).message}`);
  }
}

/**
 * A fresh X25519 key pair.
 *
 * @example
 * const { keyId, publicKey } = generateX25519();
 */
export function generateX25519(): X25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = rawPublicKey(publicKey);
  return { keyId: keyIdOf(raw), publicKey: raw, privateKey };
}
