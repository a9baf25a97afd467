/**
 * Attestations bind a node's encryption key to something a client can check. Each kind has its
 * verifier. Only a software attestation exists: the node's Ed25519 identity key signs the
 * encryption key. It proves who published the key, and nothing about hardware: the operator
 * of a node with a software attestation can read every plaintext it serves.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { fail } from '../engine/errors.js';

export const SOFTWARE_STATEMENT =
  'software attestation: the node identity key signed this encryption key. It proves nothing about hardware; the node operator can read the plaintext of every request.';

export interface Attestation {
  kind: string;
  keyId: string;
  /** Raw X25519 public key, base64. */
  publicKey: string;
  issuedAt: number;
  /** Kind-specific evidence, base64. */
  evidence: string;
}

export interface AttestationVerdict {
  kind: string;
  keyId: string;
  /** True only for a hardware-rooted kind (none exists yet). */
  hardwareBacked: boolean;
  /** What the attestation does and does not prove, in words for a person. */
  statement: string;
}

export interface AttestationVerifier {
  readonly kind: string;
  /** Throws ERR_ATTESTATION when the evidence does not hold. */
  verify(att: Attestation): AttestationVerdict;
}

function message(att: Omit<Attestation, 'evidence'>): Buffer {
  return Buffer.from(`atoma-attestation/${att.kind}/v1|${att.keyId}|${att.publicKey}|${att.issuedAt}`);
}

/**
 * Signs a node key with the node's Ed25519 identity key.
 *
 * @example
 * const att = softwareAttestation(identity.privateKey, ring.current());
 * new SoftwareAttestationVerifier(identity.publicKey).verify(att).hardwareBacked // false
 */
export function softwareAttestation(identityKey: KeyObject, key: { keyId: string; publicKey: string }, issuedAt = Date.now()): Attestation {
  if (identityKey.asymmetricKeyType !== 'ed25519') fail('ERR_ATTESTATION', 'a software attestation is signed with an Ed25519 identity key');
  const body = { kind: 'software', keyId: key.keyId, publicKey: key.publicKey, issuedAt };
  return { ...body, evidence: sign(null, message(body), identityKey).toString('base64') };
}

/** Verifies software attestations against the node's registered Ed25519 identity key. */
export class SoftwareAttestationVerifier implements AttestationVerifier {
  readonly kind = 'software';
  private readonly identity: KeyObject;
  constructor(identityPublicKey: KeyObject | Uint8Array) {
    this.identity = identityPublicKey instanceof Uint8Array
      ? createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), identityPublicKey]), format: 'der', type: 'spki' })
      : identityPublicKey;
  }
  verify(att: Attestation): AttestationVerdict {
    if (att.kind !== this.kind) fail('ERR_ATTESTATION', `software verifier given a ${att.kind} attestation`);
    const ok = verify(null, message(att), this.identity, Buffer.from(att.evidence, 'base64'));
    if (!ok) fail('ERR_ATTESTATION', `software attestation of key ${att.keyId}: the signature does not verify`);
    return { kind: this.kind, keyId: att.keyId, hardwareBacked: false, statement: SOFTWARE_STATEMENT };
  }
}

/** Verifies with the verifier registered for the attestation's kind; ERR_ATTESTATION if none. */
export function verifyAttestation(att: Attestation, verifiers: readonly AttestationVerifier[]): AttestationVerdict {
  const v = verifiers.find((x) => x.kind === att.kind);
  if (!v) fail('ERR_ATTESTATION', `no verifier for attestation kind '${att.kind}' (known: ${verifiers.map((x) => x.kind).join(', ') || 'none'})`);
  return v.verify(att);
}
