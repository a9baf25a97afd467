// Confidential requests: seal/open, wrong keys, tampering, replay, key rotation, attestation,
// and a confidential run whose plaintext exists only in the guest's worker.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  seal, open, openRequest, sealResponse, NodeKeyring, LocalKeyDirectory, ReplayGuard, runConfidential, generateX25519,
  softwareAttestation, SoftwareAttestationVerifier, verifyAttestation, WasmFunction, exampleWasm, type SealedMessage,
} from '../lib/index.js';
import { checkSealed, isLowOrderX25519 } from '../lib/crypto/seal.js';
import { blake3 } from '../lib/engine/hash.js';

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
  it('tampered ciphertext or header fails authentication', () => {
    const n = nodeKey();
    const { message } = seal(Buffer.from('pay 10 to alice'), n.pub);
    const ct = Buffer.from(message.ciphertext, 'base64');
    ct[0] ^= 1;
    const tampered: SealedMessage[] = [
      { ...message, ciphertext: ct.toString('base64') },
      { ...message, timestamp: message.timestamp + 1 },
      { ...message, requestId: 'ab'.repeat(16) },
      { ...message, salt: Buffer.alloc(16, 7).toString('base64') },
    ];
    for (const t of tampered) expect(() => openRequest(t, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_AUTH' }));
    expect(() => openRequest({ ...message, nonce: 'short' }, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT' }));
  });
  it('the envelope says nothing checkable about the plaintext: no SHA-256 or BLAKE3 of it, in hex or base64', () => {
    const n = nodeKey();
    // A low-entropy prompt an observer could guess and confirm against a hash in the clear.
    for (const guess of ['yes', 'no', '{"prompt":"is my partner cheating?"}']) {
      const p = Buffer.from(guess);
      const { message, secret } = seal(p, n.pub);
      const resp = sealResponse(p, message, n.priv);
      for (const m of [message, resp]) {
        const wire = JSON.stringify(m);
        for (const d of [createHash('sha256').update(p).digest(), blake3(p)]) {
          expect(wire).not.toContain(d.toString('hex'));
          expect(wire).not.toContain(d.toString('base64'));
          expect(wire).not.toContain(d.subarray(0, 16).toString('hex'));
        }
        expect(Object.keys(m).sort()).toEqual(['ciphertext', 'ephemeralPublicKey', 'keyId', 'kind', 'nonce', 'requestId', 'salt', 'timestamp', 'v']);
      }
      expect(open(resp, secret).toString()).toBe(guess);
    }
  });
  it('refuses version 1 envelopes (hash in the clear) and unknown fields', () => {
    const n = nodeKey();
    const { message } = seal(Buffer.from('x'), n.pub);
    const v1 = { ...message, v: 1, plaintextHash: createHash('sha256').update('x').digest('hex') };
    expect(() => openRequest(v1 as unknown as SealedMessage, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT', message: expect.stringMatching(/version 1/) }));
    const extra = { ...message, plaintextHash: 'ab'.repeat(32) };
    expect(() => checkSealed(extra, 'request')).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT', message: expect.stringMatching(/unknown field 'plaintextHash'/) }));
  });
  it('a low-order ephemeral key, in any encoding, is a typed format error, not an OpenSSL one', () => {
    const n = nodeKey();
    const { message } = seal(Buffer.from('x'), n.pub);
    const p = 2n ** 255n - 19n;
    const le = (x: bigint) => Buffer.from(Array.from({ length: 32 }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn)));
    const order8 = [325606250916557431795983626356110631294008115727848805560023387167927233504n, 39382357235489614581723060781553021112529911719440698176882885853963445705823n];
    // 0, 1, p-1, the two points of order 8, their non-canonical forms (u + p, top bit set).
    const bad = [0n, 1n, p - 1n, ...order8, p, p + 1n, 2n ** 255n, 2n ** 255n + 1n, order8[0] + 2n ** 255n].map(le);
    for (const k of bad) {
      expect(isLowOrderX25519(k)).toBe(true);
      const forged = { ...message, ephemeralPublicKey: k.toString('base64') };
      expect(() => openRequest(forged, n.priv)).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT', message: expect.stringMatching(/low-order/) }));
    }
    expect(isLowOrderX25519(Buffer.from(message.ephemeralPublicKey, 'base64'))).toBe(false);
    expect(isLowOrderX25519(le(9n))).toBe(false);
    expect(() => seal(Buffer.from('x'), { keyId: n.pub.keyId, publicKey: le(0n) })).toThrow(expect.objectContaining({ code: 'ERR_SEAL_FORMAT' }));
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
  it('a forged copy cannot burn the genuine request id, sent before it or at the same time', async () => {
    const ring = NodeKeyring.open(join(dir(), 'k.json'));
    const replay = new ReplayGuard();
    const fn = await WasmFunction.load(await exampleWasm('hash'));
    const { message, secret } = seal(Buffer.from('hello'), ring.current());
    // The all-zero ephemeral key: refused as malformed before the id is recorded.
    const zero = await runConfidential(fn, { ...message, ephemeralPublicKey: Buffer.alloc(32).toString('base64') }, { keyring: ring, replay });
    expect(zero.error?.code).toBe('ERR_SEAL_FORMAT');
    expect(replay.size).toBe(0);
    // An altered copy that reaches the worker just ahead of the genuine one: the genuine one waits
    // for its outcome (authentication failed, id released) and then runs.
    const ct = Buffer.from(message.ciphertext, 'base64');
    ct[0] ^= 1;
    const [forged, genuine] = await Promise.all([
      runConfidential(fn, { ...message, ciphertext: ct.toString('base64') }, { keyring: ring, replay }),
      runConfidential(fn, message, { keyring: ring, replay }),
    ]);
    expect(forged.error?.code).toBe('ERR_SEAL_AUTH');
    expect(genuine.error).toBeNull();
    expect(Buffer.from(JSON.parse(open(genuine.response!, secret).toString()).stdout, 'base64').toString()).toBe('a430d84680aabd0b\n');
    // Now the id is used: a second genuine copy, alone or concurrent, is a replay.
    const [a, b] = await Promise.all([runConfidential(fn, message, { keyring: ring, replay }), runConfidential(fn, message, { keyring: ring, replay })]);
    expect([a.error?.code, b.error?.code]).toEqual(['ERR_SEAL_REPLAY', 'ERR_SEAL_REPLAY']);
  });
});
