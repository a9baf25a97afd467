/**
 * Signed input uploads: storing request input bytes on the ledger service is done for an account
 * that signs for them, so storage is charged to someone who holds money on the ledger and every
 * upload is attributable (docs/protocol.md, "Request inputs").
 *
 * A grant is the account's Ed25519 signature over the event-signing digest (signing.ts
 * `eventDigest`) of `{type: "putInput", account, digest, size, nonce}`: the bytes' BLAKE3 digest,
 * their length, and a fresh 16-byte nonce the ledger records against replays. `putInput` is not an
 * event type, so no event signature passes as a grant and no grant as an event.
 * Over HTTP the grant travels in the headers of `POST /inputs` (the body stays the raw bytes):
 *   x-atoma-account: 64 hex   x-atoma-nonce: 32 hex   x-atoma-sig: 128 hex
 */
import { randomBytes, sign } from 'node:crypto';
import { fail } from '../../engine/errors.js';
import { blake3 } from '../../engine/hash.js';
import { isHex32 } from '../ids.js';
import { eventDigest, verifiesAs, type Signer } from '../signing.js';

/** An account's signature authorising the storage of one input. */
export interface InputGrant {
  account: string;
  nonce: string;
  sig: string;
}

/** The HTTP headers that carry a grant. */
export const GRANT_HEADERS = { account: 'x-atoma-account', nonce: 'x-atoma-nonce', sig: 'x-atoma-sig' } as const;

const NONCE = /^[0-9a-f]{32}$/;

function grantDigest(digest: string, size: number, account: string, nonce: string): Buffer {
  return eventDigest({ type: 'putInput', account, digest, size, nonce });
}

/**
 * Signs the storage of `bytes` as `signer`'s account.
 *
 * @example
 * const grant = signInput(bytes, clientKey);
 * ledger.putSignedInput(bytes, grant);     // or LedgerClient.putInput(bytes, clientKey)
 */
export function signInput(bytes: Uint8Array, signer: Signer): InputGrant {
  if (!isHex32(signer?.publicKey)) fail('ERR_SIGNATURE', 'signInput: signer.publicKey must be 64 lowercase hex digits');
  const nonce = randomBytes(16).toString('hex');
  const digest = blake3(bytes).toString('hex');
  const sig = sign(null, grantDigest(digest, bytes.byteLength, signer.publicKey, nonce), signer.privateKey).toString('hex');
  return { account: signer.publicKey, nonce, sig };
}

/** Checks a grant's form (not its signature): ERR_SIGNATURE naming the bad field. */
export function checkGrantForm(grant: unknown): InputGrant {
  const g = grant as Partial<InputGrant> | null;
  if (typeof g !== 'object' || g === null) fail('ERR_SIGNATURE', 'an input upload must be signed by a funded account (account, nonce, sig)');
  if (!isHex32(g.account)) fail('ERR_SIGNATURE', 'input grant: account must be an Ed25519 public key (64 lowercase hex digits)');
  if (typeof g.nonce !== 'string' || !NONCE.test(g.nonce)) fail('ERR_SIGNATURE', 'input grant: nonce must be 32 lowercase hex digits');
  if (typeof g.sig !== 'string' || !/^[0-9a-f]{128}$/.test(g.sig)) fail('ERR_SIGNATURE', 'input grant: sig must be 128 lowercase hex digits (an Ed25519 signature)');
  return { account: g.account, nonce: g.nonce, sig: g.sig };
}

/** Checks that a grant is its account's signature for these bytes (digest and size); ERR_SIGNATURE otherwise. */
export function checkInputGrant(digest: string, size: number, grant: unknown): InputGrant {
  const g = checkGrantForm(grant);
  if (!verifiesAs(g.account, grantDigest(digest, size, g.account, g.nonce), g.sig)) {
    fail('ERR_SIGNATURE', `input grant: the signature does not verify against account ${g.account} for input ${digest} (${size} bytes)`);
  }
  return g;
}
