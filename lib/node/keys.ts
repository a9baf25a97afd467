/**
 * The node key (Ed25519) and the signature a node puts on every response.
 *
 * Signed bytes (docs/node.md, "Signatures"): the 32-byte BLAKE3 of the canonical JSON (keys
 * sorted, no spaces) of {v: 1, model, requestHash, outputDigest, traceRoot}, where model is the
 * model's BLAKE3 digest and requestHash the BLAKE3 hex of the exact HTTP request body. A client
 * holding its own request body and the node's public key can check the answer with
 * verifyResponse, without trusting the transport.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { canonical } from '../protocol/ledger/store.js';

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NodeKey {
  privateKey: KeyObject;
  /** Raw 32-byte public key, hex. */
  publicKey: string;
}

/** What a response signature covers. */
export interface SignedFields {
  model: string;
  requestHash: string;
  outputDigest: string;
  traceRoot: string;
}

/**
 * Loads the node key (PKCS#8 PEM), creating it with mode 0600 when absent. A key readable by
 * group or others is refused: whoever reads it can sign answers in the node's name.
 *
 * @example
 * const key = loadOrCreateNodeKey('node.key');
 */
export function loadOrCreateNodeKey(path: string): NodeKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const { privateKey } = generateKeyPairSync('ed25519');
    // 'wx': never overwrite a key another process created meanwhile.
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) fail('ERR_NODE_KEY', `${path}: mode ${mode.toString(8)} lets others read the node key; chmod 600 it`);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (e) {
    fail('ERR_NODE_KEY', `${path}: not a PEM private key: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') fail('ERR_NODE_KEY', `${path}: expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  return { privateKey: key, publicKey: rawPublicKeyHex(key) };
}

function rawPublicKeyHex(key: KeyObject): string {
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return Buffer.from(der.subarray(SPKI_PREFIX.length)).toString('hex');
}

/** The 32 bytes a response signature signs. */
export function signedBytes(f: SignedFields): Buffer {
  return blake3(canonical({ v: 1, model: f.model, requestHash: f.requestHash, outputDigest: f.outputDigest, traceRoot: f.traceRoot }));
}

/** BLAKE3 hex of a request body, as it went over the wire. */
export function requestHash(body: Uint8Array | string): string {
  return blake3(typeof body === 'string' ? Buffer.from(body, 'utf8') : body).toString('hex');
}

export function signResponse(key: NodeKey, f: SignedFields): string {
  return sign(null, signedBytes(f), key.privateKey).toString('hex');
}

/**
 * Checks a node's signature on a response (hex signature, hex raw public key).
 *
 * @example
 * const ok = verifyResponse({ model, requestHash: requestHash(body), outputDigest, traceRoot }, sig, nodePublicKey);
 */
export function verifyResponse(f: SignedFields, signature: string, publicKey: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(publicKey) || !/^[0-9a-f]{128}$/.test(signature)) return false;
  const pub = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKey, 'hex')]), format: 'der', type: 'spki' });
  return verify(null, signedBytes(f), pub, Buffer.from(signature, 'hex'));
}
