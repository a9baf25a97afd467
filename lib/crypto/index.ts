/** Public API of confidential requests (docs/wasm.md, "Confidential requests"). */
export { seal, open, openRequest, sealResponse, type SealedMessage, type RecipientKey, type SealSecret } from './seal.js';
export { generateX25519, keyIdOf, type X25519KeyPair } from './keys.js';
export { NodeKeyring, type PublishedKey, type KeyringOptions } from './keyring.js';
export { LocalKeyDirectory, type KeyDirectory, type NodeKeyRecord } from './directory.js';
export { ReplayGuard } from './replay.js';
export { runConfidential, type ConfidentialResult } from './confidential.js';
export { softwareAttestation, SoftwareAttestationVerifier, verifyAttestation, SOFTWARE_STATEMENT, type Attestation, type AttestationVerdict, type AttestationVerifier } from './attestation.js';
