// Confidential requests: seal/open, wrong keys, tampering, replay, key rotation, attestation,
// and a confidential run whose plaintext exists only in the guest's worker.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import {
  seal, open, openRequest, sealResponse, NodeKeyring, LocalKeyDirectory, ReplayGuard, runConfidential, generateX25519,
  softwareAttestation, SoftwareAttestationVerifier, verifyAttestation, WasmFunction, exampleWasm, type SealedMessage,
} from '../lib/index.js';

const dir = () => mkdtempSync(join(tmpdir(), 'atoma-keys-'));
const nodeKey = () => {
  const k = generateX25519();
  return { pub: { keyId: k.keyId, publicKey: k.publicKey }, priv: k.privateKey };
};

describe('seal / open', () => {
  it('round trip: the node opens the request, the client opens the response', () => {
    const n = nodeKey();
    const { message, secret } = seal(Buffer.from('secret prompt'), n.pub);
    expect(JSON.stringify(message)).not.toContain('secret prompt');
    const req = openRequest(message, n.priv);
    expect(req.plaintext.toString()).toBe('secret prompt');
    const resp = sealResponse(Buffer.from('secret answer'), message, n.priv);
    expect(open(resp, secret).toString()).toBe('secret answer');
  });
  it('wrong key: another node key, another client', () => {
    const a = nodeKey();
    const b = nodeKey();
    const { message, secret } = seal(Buffer.from('x'), a.pub);
    expect(() => openRequest(message, b.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_AUTH' }));
    const other = seal(Buffer.from('y'), a.pub);
    const resp = sealResponse(Buffer.from('z'), message, a.priv);
    expect(() => open(resp, other.secret)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_AUTH' }));
    expect(open(resp, secret).toString()).toBe('z');
  });
  it('tampered ciphertext, header or hash fails authentication', () => {
    const n = nodeKey();
    const { message } = seal(Buffer.from('pay 10 to alice'), n.pub);
    const ct = Buffer.from(message.ciphertext, 'base64');
    ct[0] ^= 1;
    const tampered: SealedMessage[] = [
      { ...message, ciphertext: ct.toString('base64') },
      { ...message, timestamp: message.timestamp + 1 },
      { ...message, requestId: 'ab'.repeat(16) },
      { ...message, plaintextHash: '00'.repeat(32) },
    ];
    for (const t of tampered) expect(() => openRequest(t, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_AUTH' }));
    expect(() => openRequest({ ...message, nonce: 'short' }, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT' }));
  });
});

describe('replay and keys', () => {
  it('a request id runs once; stale timestamps are refused', () => {
    const g = new ReplayGuard(60_000);
    g.reserve('aa'.repeat(16), 1_000_000, 1_000_000);
    expect(() => g.reserve('aa'.repeat(16), 1_000_000, 1_000_500)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_REPLAY' }));
    expect(() => g.reserve('bb'.repeat(16), 1_000_000, 1_100_000)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_REPLAY' }));
    g.release('aa'.repeat(16));
    g.reserve('aa'.repeat(16), 1_000_000, 1_000_500);
  });
  it('rotation: old keys open during the grace period, then expire; the file survives reopening', () => {
    const path = join(dir(), 'keys.json');
    const t0 = 1_700_000_000_000;
    const ring = NodeKeyring.open(path, { lifetimeMs: 60_000, graceMs: 10_000, now: t0 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const k1 = ring.current();
    const { message } = seal(Buffer.from('before rotation'), k1, { now: t0 });
    expect(ring.rotateIfDue(t0 + 1000)).toBe(false);
    expect(ring.rotateIfDue(t0 + 60_000)).toBe(true);
    const k2 = ring.current();
    expect(k2.keyId).not.toBe(k1.keyId);
    expect(openRequest(message, ring.privateKeyDer(k1.keyId, t0 + 65_000)).plaintext.toString()).toBe('before rotation');
    expect(() => ring.privateKeyDer(k1.keyId, t0 + 70_001)).toThrow(expect.objectContaining({ code: 'ERR_KEY_EXPIRED' }));
    expect(() => ring.privateKeyDer('00'.repeat(16))).toThrow(expect.objectContaining({ code: 'ERR_KEY_UNKNOWN' }));
    const reopened = NodeKeyring.open(path, { lifetimeMs: 60_000, graceMs: 10_000 });
    expect(reopened.current().keyId).toBe(k2.keyId);
    expect(readFileSync(path, 'utf8')).toContain(k2.keyId);
  });
  it('publication and lookup, with a software attestation that says it proves nothing about hardware', async () => {
    const ring = NodeKeyring.open(join(dir(), 'k.json'));
    const identity = generateKeyPairSync('ed25519');
    const att = softwareAttestation(identity.privateKey, ring.current());
    const d = new LocalKeyDirectory();
    await d.publish({ nodeId: 'node-1', ...ring.current(), attestation: att });
    const rec = await d.lookup('node-1');
    expect(rec?.keyId).toBe(ring.current().keyId);
    const verdict = verifyAttestation(rec!.attestation!, [new SoftwareAttestationVerifier(identity.publicKey)]);
    expect(verdict.hardwareBacked).toBe(false);
    expect(verdict.statement).toMatch(/proves nothing about hardware/);
    const stranger = generateKeyPairSync('ed25519');
    expect(() => verifyAttestation(att, [new SoftwareAttestationVerifier(stranger.publicKey)])).toThrow(expect.objectContaining({ code: 'ERR_ATTESTATION' }));
    expect(() => verifyAttestation({ ...att, kind: 'sev-snp' }, [])).toThrow(expect.objectContaining({ code: 'ERR_ATTESTATION' }));
  });
});

describe('confidential run', () => {
  it('the guest sees the plaintext, the client gets the sealed outcome; replay and wrong key are refused', async () => {
    const ring = NodeKeyring.open(join(dir(), 'k.json'));
    const replay = new ReplayGuard();
    const fn = await WasmFunction.load(await exampleWasm('hash'));
    const { message, secret } = seal(Buffer.from('hello'), ring.current());
    const r = await runConfidential(fn, message, { keyring: ring, replay });
    expect(r.error).toBeNull();
    const outcome = JSON.parse(open(r.response!, secret).toString());
    expect(Buffer.from(outcome.stdout, 'base64').toString()).toBe('a430d84680aabd0b\n');
    expect(outcome.exitCode).toBe(0);
    expect(Number(outcome.fuelUsed)).toBeGreaterThan(0);
    const again = await runConfidential(fn, message, { keyring: ring, replay });
    expect(again.error?.code).toBe('ERR_SEAL_REPLAY');
    const stranger = generateX25519();
    const wrong = seal(Buffer.from('hello'), { keyId: stranger.keyId, publicKey: stranger.publicKey });
    expect((await runConfidential(fn, wrong.message, { keyring: ring, replay })).error?.code).toBe('ERR_KEY_UNKNOWN');
    // Sealed to a stranger's key but labelled with the node's key id: fails inside the worker.
    const forged = { ...wrong.message, keyId: ring.current().keyId };
    const f = await runConfidential(fn, forged, { keyring: ring, replay });
    expect(f.error?.code).toBe('ERR_SEAL_AUTH');
    expect(replay.size).toBe(1); // the forged id was released
  });
});
