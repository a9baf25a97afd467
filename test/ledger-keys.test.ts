/**
 * Node encryption keys on the ledger (publishKey events, lib/protocol/ledger/keys.ts): publish,
 * rotate and look up by time through the SQLite ledger and through the service on loopback; the
 * rules refuse unregistered nodes and malformed keys; the event log replays to the same keys; and
 * a client seals to the key it found on the ledger and the node opens it with its keyring.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3 } from '../lib/engine/hash.js';
import { Ledger, LedgerClient, serveLedger, apply, emptyState, signEvent, signerFromSeed, DEFAULT_PARAMS, type Event, type Signer, type State } from '../lib/protocol/index.js';
import { canonical } from '../lib/protocol/ledger/store.js';
import { LedgerKeyDirectory, ServiceKeyDirectory, publishKeyEvent } from '../lib/protocol/ledger/keys.js';
import { MAX_KEYS_PER_NODE } from '../lib/protocol/machine.js';
import { MAX_ATTESTATION } from '../lib/protocol/validate.js';
import { NodeKeyring, generateX25519, seal, open, openRequest, sealResponse, softwareAttestation, SoftwareAttestationVerifier, type NodeKeyRecord } from '../lib/crypto/index.js';

const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');
/** Node keys by id: a node id is its Ed25519 public key, and it signs what it publishes. */
const signers = new Map<string, Signer>();
const key = (...p: (string | number)[]) => { const k = signerFromSeed(hx(...p)); signers.set(k.publicKey, k); return k.publicKey; };
const signer = (node: string) => signers.get(node)!;
const T0 = Date.UTC(2026, 10, 26);
const HOUR = 3600_000;
const GRACE = 10 * 60_000;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'atoma-keys-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    return (e as AtomaError).code;
  }
  return 'no error';
}

function registerOn(submit: (e: Record<string, unknown>) => unknown, node: string) {
  submit({ type: 'deposit', account: node, amount: DEFAULT_PARAMS.minCollateral });
  submit(signEvent({ type: 'register', node, collateral: DEFAULT_PARAMS.minCollateral }, signer(node)));
}

async function registerVia(client: LedgerClient, node: string) {
  await client.submit({ type: 'deposit', account: node, amount: DEFAULT_PARAMS.minCollateral });
  await client.submit(signEvent({ type: 'register', node, collateral: DEFAULT_PARAMS.minCollateral }, signer(node)));
}

/** A keyring with a 1 h lifetime, created at T0. */
function ring(dir: string) {
  return NodeKeyring.open(join(dir, 'keys.json'), { now: T0, lifetimeMs: HOUR, graceMs: GRACE });
}

describe('keys on the embedded SQLite ledger', () => {
  it('publishes, rotates and looks up the key valid at a time; keeps the last 8; replays', async () => {
    const dir = tmp();
    let now = T0;
    const db = join(dir, 'l.db');
    const l = Ledger.open(db, { clock: () => (now += 1) });
    const node = key('node');
    registerOn((e) => l.submit(e), node);
    const keys = new LedgerKeyDirectory(l, signer(node));
    const r = ring(dir);
    const identity = generateKeyPairSync('ed25519');
    const first = r.current();
    await keys.publish({ nodeId: node, ...first, attestation: softwareAttestation(identity.privateKey, first, T0) });
    const second = r.rotate(T0 + HOUR);
    await keys.publish({ nodeId: node, ...second });

    expect(await keys.lookup(node, T0 - 1)).toBeUndefined();
    const a = await keys.lookup(node, T0 + 5);
    expect(a).toMatchObject({ nodeId: node, keyId: first.keyId, publicKey: first.publicKey, notBefore: first.notBefore, notAfter: first.notAfter });
    // The attestation survives the round trip through the ledger and still verifies.
    expect(new SoftwareAttestationVerifier(identity.publicKey).verify(a!.attestation!).keyId).toBe(first.keyId);
    const b = await keys.lookup(node, T0 + HOUR + 1);
    expect(b?.keyId).toBe(second.keyId);
    expect(b?.attestation).toBeUndefined();
    expect(await keys.lookup(node, second.notAfter)).toBeUndefined();
    expect(await keys.lookup(hx('someone else'), T0 + 5)).toBeUndefined();

    // Republishing the same record is done already; a changed record under that id is refused.
    const seq = l.state.seq;
    await keys.publish({ nodeId: node, ...second });
    expect(await codeOf(keys.publish({ nodeId: node, ...second, notAfter: second.notAfter + 1 }))).toBe('ERR_DUPLICATE');
    expect(l.state.seq).toBe(seq);

    // Rotate past the cap: the oldest keys are dropped, the newest is current.
    let last = second;
    for (let i = 2; i < 11; i++) await keys.publish({ nodeId: node, ...(last = r.rotate(T0 + i * HOUR)) });
    const history = await keys.history(node);
    expect(history).toHaveLength(MAX_KEYS_PER_NODE);
    expect(history.map((k) => k.keyId)).not.toContain(first.keyId);
    expect(history[history.length - 1].keyId).toBe(last.keyId);
    expect((await keys.lookup(node, T0 + 10 * HOUR + 1))?.keyId).toBe(last.keyId);

    // The log alone gives the same keys: stored state = replay, the pure rules agree, reopen agrees.
    expect(l.verify()).toBe(true);
    expect(canonical(l.replay().keys)).toBe(canonical(l.state.keys));
    let pure: State = emptyState();
    for (const { event } of l.events(0, 10_000)) pure = apply(pure, event as Event).state;
    expect(canonical(pure.keys)).toBe(canonical(l.state.keys));
    expect(l.events(0, 10_000).filter((x) => x.event.type === 'publishKey')).toHaveLength(11);
    const snapshot = canonical(l.state.keys);
    l.close();
    const again = Ledger.open(db);
    expect(canonical(again.state.keys)).toBe(snapshot);
    expect((await new LedgerKeyDirectory(again).lookup(node, T0 + 5 * HOUR + 1))?.keyId).toBe(history[history.length - 6].keyId);
    again.close();
  });

  it('refuses an unregistered node and malformed keys, changing nothing', async () => {
    const dir = tmp();
    const l = Ledger.open(join(dir, 'l.db'));
    const node = key('node');
    registerOn((e) => l.submit(e), node);
    const keys = new LedgerKeyDirectory(l, signer(node));
    const k = ring(dir).current();
    const good = publishKeyEvent({ nodeId: node, ...k });
    const before = canonical(l.state);

    const stranger = key('stranger');
    expect(await codeOf(new LedgerKeyDirectory(l, signer(stranger)).publish({ nodeId: stranger, ...k }))).toBe('ERR_NOT_FOUND');
    // A node cannot publish in another's name, nor can a directory without the node's key.
    expect(await codeOf(keys.publish({ nodeId: stranger, ...k }))).toBe('ERR_SIGNATURE');
    expect(await codeOf(new LedgerKeyDirectory(l).publish({ nodeId: node, ...k }))).toBe('ERR_SIGNATURE');
    expect(await codeOf(() => l.submit(good))).toBe('ERR_SIGNATURE');
    const other = generateX25519();
    const bad: [string, Promise<unknown> | (() => unknown)][] = [
      ['key id not derived from the key', () => keys.publish({ nodeId: node, ...k, keyId: other.keyId })],
      ['31-byte key', () => keys.publish({ nodeId: node, ...k, publicKey: Buffer.alloc(31, 7).toString('base64') })],
      ['node id not hex', () => keys.publish({ nodeId: 'node-1', ...k })],
      ['notAfter before notBefore', () => keys.publish({ nodeId: node, ...k, notAfter: k.notBefore })],
      ['63 hex digits', () => l.submit({ ...good, publicKey: (good.publicKey as string).slice(1) })],
      ['uppercase key id', () => l.submit({ ...good, keyId: (good.keyId as string).toUpperCase() })],
      ['all-zero point', () => l.submit({ ...good, publicKey: '0'.repeat(64), keyId: '66687aadf862bd776c8fc18b8e9f8e20' })],
      ['attestation too long', () => l.submit({ ...good, attestation: 'A'.repeat(MAX_ATTESTATION + 1) })],
      ['attestation not base64/hex', () => l.submit({ ...good, attestation: 'not base64!' })],
      ['attestation not a string', () => l.submit({ ...good, attestation: { kind: 'software' } })],
      ['unknown field', () => l.submit({ ...good, revoked: true })],
      ['client-set time', () => l.submit({ ...good, at: 5 })],
      ['negative notBefore', () => l.submit({ ...good, notBefore: -1 })],
    ];
    for (const [why, p] of bad) expect([why, await codeOf(p)]).toEqual([why, 'ERR_EVENT']);
    expect(canonical(l.state)).toBe(before);
    // The well-formed one is accepted (so the refusals above are about what they changed).
    expect(l.submit(signEvent(good, signer(node))).event.type).toBe('publishKey');
    expect(l.state.keys[node]).toHaveLength(1);
    // An attestation at the size limit is fine.
    const k2 = generateX25519();
    l.submit(signEvent({ ...good, keyId: k2.keyId, publicKey: k2.publicKey.toString('hex'), attestation: 'A'.repeat(MAX_ATTESTATION) }, signer(node)));
    // Unreadable attestation text is kept by the ledger but not handed out as an Attestation.
    expect((await keys.lookup(node, (good.notBefore as number) + 1))?.attestation).toBeUndefined();
    expect(l.verify()).toBe(true);
    l.close();
  });

  it('the pure rules and undo handle publishKey like the other tables', () => {
    const s0 = emptyState();
    const node = hx('n');
    let s = apply(s0, { type: 'genesis', at: 0, params: DEFAULT_PARAMS, beacon: hx('b') }).state;
    s = apply(s, { type: 'deposit', at: 1, account: node, amount: DEFAULT_PARAMS.minCollateral }).state;
    s = apply(s, { type: 'register', at: 1, node, collateral: DEFAULT_PARAMS.minCollateral }).state;
    const k = generateX25519();
    const e = { type: 'publishKey', at: 2, node, keyId: k.keyId, publicKey: k.publicKey.toString('hex'), notBefore: 2, notAfter: 100 };
    const next = apply(s, e).state;
    expect(s.keys[node]).toBeUndefined(); // the input state is untouched
    expect(next.keys[node]).toEqual([{ keyId: k.keyId, publicKey: k.publicKey.toString('hex'), notBefore: 2, notAfter: 100, publishedAt: 2 }]);
    expect(() => apply(next, e)).toThrow(/already published/);
  });
});

describe('keys through the ledger service on loopback', () => {
  it('publishes, rotates, looks up by time; refuses strangers and bad ids; checks what the service sends', async () => {
    const dir = tmp();
    let now = T0;
    const svc = await serveLedger({ db: join(dir, 's.db'), port: 0, host: '127.0.0.1', clock: () => (now += 1) });
    const client = new LedgerClient(svc.url);
    try {
      const node = key('svc node');
      await registerVia(client, node);
      const keys = new ServiceKeyDirectory(client, signer(node));
      const r = ring(dir);
      const first = r.current();
      await keys.publish({ nodeId: node, ...first });
      const second = r.rotate(T0 + HOUR);
      await keys.publish({ nodeId: node, ...second });
      await keys.publish({ nodeId: node, ...second }); // idempotent
      expect((await keys.lookup(node, T0 + 1))?.keyId).toBe(first.keyId);
      expect((await keys.lookup(node, T0 + HOUR))?.keyId).toBe(second.keyId);
      expect(await keys.lookup(node, T0 - 1)).toBeUndefined();
      expect((await keys.history(node)).map((k) => k.keyId)).toEqual([first.keyId, second.keyId]);
      // The service's view and the embedded ledger's agree.
      expect(await keys.lookup(node, T0 + 1)).toEqual(await new LedgerKeyDirectory(svc.ledger).lookup(node, T0 + 1));

      expect(await keys.lookup(hx('stranger'), T0 + 1)).toBeUndefined();
      const stranger = key('svc stranger');
      expect(await codeOf(new ServiceKeyDirectory(client, signer(stranger)).publish({ nodeId: stranger, ...first }))).toBe('ERR_NOT_FOUND');
      expect(await codeOf(keys.publish({ nodeId: stranger, ...first }))).toBe('ERR_SIGNATURE');
      expect(await codeOf(keys.publish({ nodeId: node, ...first, keyId: generateX25519().keyId }))).toBe('ERR_EVENT');
      expect(await codeOf(keys.lookup('zz'))).toBe('ERR_EVENT');
      const raw = await fetch(`${svc.url}/keys/${'A'.repeat(64)}`);
      expect(raw.status).toBe(400);
      expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('ERR_EVENT');
      expect((await fetch(`${svc.url}/keys/${hx('stranger')}`)).status).toBe(404);
      expect((await client.verify()).ok).toBe(true);
    } finally {
      client.close();
      await svc.close();
    }

    // A service that sends a key under an id not derived from it (or junk) is caught by the client.
    const other = generateX25519();
    const node = hx('n');
    const replies = [
      { node, keys: [{ keyId: other.keyId, publicKey: generateX25519().publicKey.toString('hex'), notBefore: 0, notAfter: 10, publishedAt: 0 }] },
      { node: hx('other'), keys: [] },
      { node, keys: 'none' },
      { node, keys: Array.from({ length: MAX_KEYS_PER_NODE + 1 }, () => ({ keyId: other.keyId, publicKey: other.publicKey.toString('hex'), notBefore: 0, notAfter: 10, publishedAt: 0 })) },
    ];
    let i = 0;
    const liar = createServer((_req, res) => res.end(JSON.stringify(replies[i++])));
    await new Promise<void>((ok) => liar.listen(0, '127.0.0.1', ok));
    const liarClient = new LedgerClient(`http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
    try {
      for (let j = 0; j < replies.length; j++) expect(await codeOf(new ServiceKeyDirectory(liarClient).lookup(node, 1))).toBe('ERR_LEDGER');
    } finally {
      liarClient.close();
      liar.closeAllConnections();
      await new Promise<void>((ok) => liar.close(() => ok()));
    }
  });
});

describe('end to end: seal to the key found on the ledger, open with the node keyring', () => {
  it('works before and after a rotation, and a request sealed to an expired key is refused', async () => {
    const dir = tmp();
    let now = T0;
    const svc = await serveLedger({ db: join(dir, 'e.db'), port: 0, host: '127.0.0.1', clock: () => (now += 1) });
    const client = new LedgerClient(svc.url);
    try {
      const node = key('e2e node');
      await registerVia(client, node);
      const r = ring(dir);
      const nodeSide = new LedgerKeyDirectory(svc.ledger, signer(node)); // the node publishes on its ledger
      const clientSide = new ServiceKeyDirectory(client); // the client reads through the service
      await nodeSide.publish({ nodeId: node, ...r.current() });

      const roundTrip = async (at: number, body: string) => {
        const key = (await clientSide.lookup(node, at)) as NodeKeyRecord;
        const { message, secret } = seal(Buffer.from(body), key, { now: at });
        const opened = openRequest(message, r.privateKeyDer(message.keyId, at));
        expect(opened.plaintext.toString()).toBe(body);
        const answer = sealResponse(Buffer.from(body.toUpperCase()), message, r.privateKeyDer(message.keyId, at));
        return { keyId: key.keyId, reply: open(answer, secret).toString(), message };
      };
      const before = await roundTrip(T0 + 1000, '{"prompt":"hello"}');
      expect(before.reply).toBe('{"PROMPT":"HELLO"}');

      const rotated = r.rotate(T0 + HOUR);
      await nodeSide.publish({ nodeId: node, ...rotated });
      const after = await roundTrip(T0 + HOUR + 1000, 'after rotation');
      expect(after.keyId).toBe(rotated.keyId);
      expect(after.keyId).not.toBe(before.keyId);
      expect(after.reply).toBe('AFTER ROTATION');
      // The old key opens for the grace period only; the ledger already sends clients to the new one.
      expect(openRequest(before.message, r.privateKeyDer(before.keyId, T0 + HOUR + 1)).plaintext.toString()).toBe('{"prompt":"hello"}');
      expect(await codeOf(() => r.privateKeyDer(before.keyId, T0 + HOUR + GRACE))).toBe('ERR_KEY_EXPIRED');
      // Sealed to the key of another node: the keyring does not know it.
      const { message: wrong } = seal(Buffer.from('x'), { keyId: generateX25519().keyId, publicKey: generateX25519().publicKey });
      expect(await codeOf(() => r.privateKeyDer(wrong.keyId, T0 + HOUR + 1))).toBe('ERR_KEY_UNKNOWN');
    } finally {
      client.close();
      await svc.close();
    }
  });
});
