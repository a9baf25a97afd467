/**
 * The ledger among processes that do not trust each other: signed events (Ed25519, actor ids are
 * public keys), replay protection by nonce, referees named by genesis, request inputs stored on
 * the ledger (data availability). Every refusal has its typed error and leaves the stored state,
 * the log and the nonce table as they were; the service and the CLI expose the same rules.
 */
import { spawn } from 'node:child_process';
import { sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3 } from '../lib/engine/hash.js';
import {
  Ledger, LedgerClient, serveLedger, commitment, signEvent, signerFromSeed, generateSigner, eventDigest, checkSignature, preverifyEvent,
  MAX_INPUT, DEFAULT_PARAMS, type Signer,
} from '../lib/protocol/index.js';
import { signInput } from '../lib/protocol/ledger/inputs.js';
import { canonical } from '../lib/protocol/ledger/store.js';
import { cli, runCli } from './helpers.js';

const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');
const P = DEFAULT_PARAMS;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'atoma-signing-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    return (e as AtomaError).code;
  }
  return 'no error';
}
async function asyncCodeOf(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'no error', (e: unknown) => (e instanceof AtomaError ? e.code : `not an AtomaError: ${String(e)}`));
}

const referee = signerFromSeed(hx('referee'));
const client = signerFromSeed(hx('client'));
const nodes = [0, 1, 2].map((i) => signerFromSeed(hx('node', i)));
const byId = new Map<string, Signer>([referee, client, ...nodes].map((k) => [k.publicKey, k]));
const as = (e: Record<string, unknown>) => signEvent(e, byId.get((e.node ?? e.client ?? e.creator ?? e.referee) as string)!);
const task = hx('task');

/** Everything a refusal must leave as it was: the state, the log length and the seen nonces. */
function snapshot(l: Ledger): string {
  const nonces = l.db.prepare('SELECT actor, nonce, seq FROM nonces ORDER BY seq').all();
  const inputs = l.db.prepare('SELECT digest FROM inputs ORDER BY digest').all();
  return canonical({ state: l.state, events: l.events(0, 100_000).length, nonces, inputs });
}

/** A ledger with the referee in genesis, a funded client, a task (n = 2) and three subscribed nodes. */
function world(dir: string, opts: { faucet?: boolean } = {}) {
  let now = 1_000;
  const l = Ledger.open(join(dir, 'l.db'), { referees: [referee.publicKey], clock: () => (now += 1), ...opts });
  const fund = (account: string, amount: number) => (l.faucet ? l.submit({ type: 'deposit', account, amount }) : l.mint(account, amount));
  fund(client.publicKey, 10 ** 9);
  l.submit(as({ type: 'createTask', task, creator: client.publicKey, kind: 'inference', digest: hx('model'), security: { mode: 'sampling', n: 2 }, minReputation: 0 }));
  for (const k of nodes) {
    fund(k.publicKey, P.minCollateral);
    l.submit(as({ type: 'register', node: k.publicKey, collateral: P.minCollateral }));
    l.submit(as({ type: 'subscribe', node: k.publicKey, task, price: 5 }));
  }
  return l;
}

describe('signed events on the embedded ledger', () => {
  it('refuses forged, foreign-key, unsigned and altered events with ERR_SIGNATURE, changing nothing', () => {
    const l = world(tmp());
    const node = generateSigner();
    l.submit({ type: 'deposit', account: node.publicKey, amount: P.minCollateral });
    const good = signEvent({ type: 'register', node: node.publicKey, collateral: P.minCollateral }, node);
    expect(good.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(good.sig).toMatch(/^[0-9a-f]{128}$/);
    const before = snapshot(l);
    const flip = (hex: string, i: number) => hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1);
    // Signed by another key over exactly this event (the message is right, the signer is not).
    const other = generateSigner();
    const byOther = { ...good, sig: sign(null, eventDigest(good), other.privateKey).toString('hex') };
    const bad: [string, unknown][] = [
      ['forged signature (one bit changed)', { ...good, sig: flip(good.sig, 10) }],
      ['signature by another key', byOther],
      ['unsigned', { type: 'register', node: node.publicKey, collateral: P.minCollateral }],
      ['nonce without sig', { type: 'register', node: node.publicKey, collateral: P.minCollateral, nonce: good.nonce }],
      ['altered after signing', { ...good, collateral: P.minCollateral + 1 }],
      ['nonce changed after signing', { ...good, nonce: flip(good.nonce, 0) }],
      ['malformed sig', { ...good, sig: good.sig.slice(2) }],
      ['uppercase sig', { ...good, sig: good.sig.toUpperCase() }],
      ['not a curve point as actor', signEventAs({ type: 'register', node: 'ff'.repeat(32), collateral: P.minCollateral }, node)],
    ];
    for (const [why, e] of bad) {
      expect([why, codeOf(() => l.submit(e))]).toEqual([why, 'ERR_SIGNATURE']);
      expect(snapshot(l)).toBe(before);
    }
    // The same event through a batch: refused in its savepoint, the others applied.
    const batch = l.submitBatch([{ ...good, sig: flip(good.sig, 3) }, { type: 'deposit', account: client.publicKey, amount: 1 }]);
    expect(batch.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ERR_SIGNATURE', 'ok']);
    // And the real one is accepted, its signature logged with it.
    const { seq } = l.submit(good);
    const logged = l.events(seq, 1)[0].event as unknown as Record<string, unknown>;
    expect([logged.nonce, logged.sig]).toEqual([good.nonce, good.sig]);
    expect(checkSignature(logged)).toEqual({ actor: node.publicKey, nonce: good.nonce });
    // signEvent itself refuses to sign in another's name.
    expect(codeOf(() => signEvent({ type: 'register', node: other.publicKey, collateral: 1 }, node))).toBe('ERR_SIGNATURE');
    expect(codeOf(() => signEvent({ type: 'tick' }, node))).toBe('ERR_SIGNATURE');
    expect(l.verify()).toBe(true);
    l.close();
  });

  it('refuses a replayed (actor, nonce) with ERR_REPLAY: again, in one batch, after a restart, after losing the nonce table', () => {
    const dir = tmp();
    let l = world(dir);
    const [a] = nodes;
    const sub = as({ type: 'subscribe', node: a.publicKey, task, price: 6 });
    l.submit(sub);
    let before = snapshot(l);
    expect(codeOf(() => l.submit(sub))).toBe('ERR_REPLAY');
    expect(snapshot(l)).toBe(before);
    // The same nonce on a different, properly signed event is a replay too.
    const sameNonce = { type: 'subscribe', node: a.publicKey, task, price: 7, nonce: sub.nonce };
    const resigned = { ...sameNonce, sig: sign(null, eventDigest(sameNonce), a.privateKey).toString('hex') };
    expect(codeOf(() => l.submit(resigned))).toBe('ERR_REPLAY');
    expect(snapshot(l)).toBe(before);
    // Twice in one batch (one transaction): the second is the replay.
    const twice = as({ type: 'subscribe', node: a.publicKey, task, price: 8 });
    expect(l.submitBatch([twice, twice]).map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ERR_REPLAY']);
    // Another actor may use the same nonce (nonces are per actor).
    const b = nodes[1];
    const bSame = { type: 'subscribe', node: b.publicKey, task, price: 5, nonce: sub.nonce };
    l.submit({ ...bSame, sig: sign(null, eventDigest(bSame), b.privateKey).toString('hex') });
    l.close();
    // After a restart the seen nonces are still there (SQLite), and if the table is lost it is rebuilt from the log.
    l = Ledger.open(join(dir, 'l.db'));
    before = snapshot(l);
    expect(codeOf(() => l.submit(sub))).toBe('ERR_REPLAY');
    l.db.exec('DROP TABLE nonces');
    l.close();
    l = Ledger.open(join(dir, 'l.db'));
    expect(snapshot(l)).toBe(before);
    expect(codeOf(() => l.submit(sub))).toBe('ERR_REPLAY');
    expect(l.verify()).toBe(true);
    // A nonce table that disagrees with the log fails verification.
    l.db.prepare('DELETE FROM nonces WHERE actor = ? AND nonce = ?').run(a.publicKey, sub.nonce);
    expect(l.verify()).toBe(false);
    l.close();
  });

  it('only a referee named by genesis may post reexecuted (ERR_NOT_REFEREE), and it must sign it', () => {
    const l = world(tmp());
    expect(l.state.referees).toEqual([referee.publicKey]);
    const request = hx('request');
    const input = l.putInput(Buffer.from('{"prompt":[1,2,3],"maxTokens":2,"seed":1}'));
    const sampled = l.submit(as({ type: 'request', request, task, client: client.publicKey, maxPrice: 5, input })).effects.find((e) => e.type === 'sampled') as { nodes: string[] };
    const [x, y] = sampled.nodes;
    // Different trace lengths: the dispute goes straight to a full re-execution.
    const results = new Map([[x, { out: hx('out'), root: hx('root'), leaves: 4 }], [y, { out: hx('other'), root: hx('root2'), leaves: 5 }]]);
    for (const n of [x, y]) l.submit(as({ type: 'commit', request, node: n, commitment: commitment(results.get(n)!.out, results.get(n)!.root, results.get(n)!.leaves, n, hx('salt', n)) }));
    for (const n of [x, y]) {
      const r = results.get(n)!;
      l.submit(as({ type: 'reveal', request, node: n, outputDigest: r.out, traceRoot: r.root, traceLeaves: r.leaves, salt: hx('salt', n) }));
    }
    expect(l.state.requests[request].dispute?.stage).toBe('reexecute');
    const verdict = { type: 'reexecuted', request, outputDigest: hx('out'), traceRoot: hx('root'), traceLeaves: 4 };
    const before = snapshot(l);
    // A sampled node judging its own dispute, correctly signed with its key: not a referee.
    expect(codeOf(() => l.submit(signEvent({ ...verdict, referee: x }, byId.get(x)!)))).toBe('ERR_NOT_REFEREE');
    // The referee's id without its signature, or signed by someone else.
    expect(codeOf(() => l.submit({ ...verdict, referee: referee.publicKey }))).toBe('ERR_SIGNATURE');
    const forged = { ...verdict, referee: referee.publicKey, nonce: hx('n').slice(0, 32) };
    expect(codeOf(() => l.submit({ ...forged, sig: sign(null, eventDigest(forged), byId.get(x)!.privateKey).toString('hex') }))).toBe('ERR_SIGNATURE');
    expect(codeOf(() => l.submit(verdict))).toBe('ERR_EVENT'); // no referee named at all
    expect(snapshot(l)).toBe(before);
    const { effects } = l.submit(signEvent({ ...verdict, referee: referee.publicKey }, referee));
    expect(effects.find((e) => e.type === 'settled')).toMatchObject({ nodes: [x] });
    expect(l.closedRequest(request)?.request.input).toBe(input);
    expect(l.verify()).toBe(true);
    l.close();
  });

  it('stores request inputs (<= 1 MiB, ERR_TOO_LARGE) and refuses a request whose input is not stored', () => {
    const l = world(tmp());
    const bytes = Buffer.from(canonical({ prompt: [5, 6], maxTokens: 4, seed: 9, temperature: 0.8 }));
    const digest = l.putInput(bytes);
    expect(digest).toBe(blake3(bytes).toString('hex'));
    expect(l.putInput(bytes)).toBe(digest); // idempotent
    expect(l.getInput(digest)?.equals(bytes)).toBe(true);
    expect(l.getInput(hx('absent'))).toBeNull();
    expect(codeOf(() => l.getInput('zz'))).toBe('ERR_EVENT');
    const before = snapshot(l);
    expect(codeOf(() => l.putInput(Buffer.alloc(MAX_INPUT + 1, 1)))).toBe('ERR_TOO_LARGE');
    const missing = hx('not stored');
    let err: AtomaError | undefined;
    try {
      l.submit(as({ type: 'request', request: hx('r1'), task, client: client.publicKey, maxPrice: 5, input: missing }));
    } catch (e) {
      err = e as AtomaError;
    }
    expect(err?.code).toBe('ERR_EVENT');
    expect(err?.message).toContain(missing);
    // A request must name an input at all.
    expect(codeOf(() => l.submit(as({ type: 'request', request: hx('r1'), task, client: client.publicKey, maxPrice: 5 })))).toBe('ERR_EVENT');
    expect(snapshot(l)).toBe(before);
    // Exactly 1 MiB is fine; then the request goes through and records its input.
    const big = l.putInput(Buffer.alloc(MAX_INPUT, 2));
    l.submit(as({ type: 'request', request: hx('r1'), task, client: client.publicKey, maxPrice: 5, input: big }));
    expect(l.state.requests[hx('r1')].input).toBe(big);
    expect(l.verify()).toBe(true);
    l.close();
  });

  it('deposit is the faucet: refused without one (ERR_FAUCET), minted by the operator; tick and beacon are the ledger\'s own', () => {
    const l = world(tmp(), { faucet: false });
    const before = snapshot(l);
    const who = generateSigner();
    expect(codeOf(() => l.submit({ type: 'deposit', account: who.publicKey, amount: 5 }))).toBe('ERR_FAUCET');
    expect(codeOf(() => l.submit(signEvent({ type: 'deposit', account: who.publicKey, amount: 5 }, who)))).toBe('ERR_FAUCET');
    expect(codeOf(() => l.submit({ type: 'tick' }))).toBe('ERR_EVENT');
    expect(codeOf(() => l.submit({ type: 'beacon' }))).toBe('ERR_EVENT');
    expect(snapshot(l)).toBe(before);
    l.mint(who.publicKey, 5);
    expect(l.state.accounts[who.publicKey]).toBe(5);
    expect(l.verify()).toBe(true);
    l.close();
    // With the faucet, a deposit may be signed by its account (then it is checked) or not signed at all.
    const f = world(tmp());
    const signed = signEvent({ type: 'deposit', account: who.publicKey, amount: 3 }, who);
    f.submit(signed);
    expect(codeOf(() => f.submit(signed))).toBe('ERR_REPLAY');
    expect(codeOf(() => f.submit({ ...signed, amount: 4 }))).toBe('ERR_SIGNATURE');
    f.close();
  });

  it('verify() notices a logged signature that no longer verifies', () => {
    const l = world(tmp());
    expect(l.verify()).toBe(true);
    const row = l.db.prepare("SELECT seq, body FROM events WHERE body LIKE '%\"type\":\"subscribe\"%' LIMIT 1").get() as { seq: number; body: string };
    const e = JSON.parse(row.body);
    l.db.prepare('UPDATE events SET body = ? WHERE seq = ?').run(JSON.stringify({ ...e, price: e.price + 1 }), row.seq);
    expect(l.verify()).toBe(false);
    l.close();
  });
});

/** Signs over an event whose actor field is not the signer (signEvent refuses to). */
function signEventAs(e: Record<string, unknown>, k: Signer) {
  const body = { ...e, nonce: hx('nonce').slice(0, 32) };
  return { ...body, sig: sign(null, eventDigest(body), k.privateKey).toString('hex') };
}

describe('signed events and inputs through the service', () => {
  it('round-trips inputs (POST /inputs, GET /inputs/DIGEST), refuses forged and replayed events, logs signatures', async () => {
    const dir = tmp();
    const svc = await serveLedger({ db: join(dir, 's.db'), port: 0, referees: [referee.publicKey] });
    const c = new LedgerClient(svc.url);
    try {
      const bytes = Buffer.from(canonical({ prompt: [1, 2, 3], maxTokens: 8, seed: 7, temperature: 0.8 }));
      await c.submit({ type: 'deposit', account: client.publicKey, amount: 1000 });
      const digest = await c.putInput(bytes, client);
      expect(digest).toBe(blake3(bytes).toString('hex'));
      expect((await c.getInput(digest)).equals(bytes)).toBe(true);
      const raw = await fetch(`${svc.url}/inputs/${digest}`);
      expect(raw.headers.get('content-type')).toBe('application/octet-stream');
      expect(Buffer.from(await raw.arrayBuffer()).equals(bytes)).toBe(true);
      expect(await asyncCodeOf(c.getInput(hx('absent')))).toBe('ERR_NOT_FOUND');
      const absent = await fetch(`${svc.url}/inputs/${hx('absent')}`);
      expect(absent.status).toBe(404);
      expect(((await absent.json()) as { error: { code: string } }).error.code).toBe('ERR_NOT_FOUND');
      expect((await fetch(`${svc.url}/inputs/zz`)).status).toBe(400);
      const big = Buffer.alloc(MAX_INPUT + 1);
      const g = signInput(big, client);
      const tooBig = await fetch(`${svc.url}/inputs`, { method: 'POST', body: big, headers: { 'x-atoma-account': g.account, 'x-atoma-nonce': g.nonce, 'x-atoma-sig': g.sig } });
      expect(tooBig.status).toBe(413);
      expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('ERR_TOO_LARGE');
      expect(await asyncCodeOf(c.putInput(Buffer.alloc(MAX_INPUT + 1), client))).toBe('ERR_TOO_LARGE');
      expect((await c.putInput(new Uint8Array(0), client))).toBe(blake3(Buffer.alloc(0)).toString('hex'));

      const node = nodes[0];
      await c.submit({ type: 'deposit', account: node.publicKey, amount: P.minCollateral });
      const reg = signEvent({ type: 'register', node: node.publicKey, collateral: P.minCollateral }, node);
      const seqBefore = (await c.state()).seq;
      expect(await asyncCodeOf(c.submit({ ...reg, sig: reg.sig.replace(/^./, (d) => (d === '0' ? '1' : '0')) }))).toBe('ERR_SIGNATURE');
      expect(await asyncCodeOf(c.submit({ type: 'register', node: node.publicKey, collateral: P.minCollateral }))).toBe('ERR_SIGNATURE');
      expect((await c.state()).seq).toBe(seqBefore);
      const { seq } = await c.submit(reg);
      expect(await asyncCodeOf(c.submit(reg))).toBe('ERR_REPLAY');
      expect(await asyncCodeOf(c.submit({ type: 'tick' }))).toBe('ERR_EVENT');
      // GET /events shows who signed what.
      const [logged] = await c.events(seq, 1);
      expect(logged.event).toMatchObject({ type: 'register', node: node.publicKey, nonce: reg.nonce, sig: reg.sig });
      expect(checkSignature(logged.event as unknown as Record<string, unknown>)?.actor).toBe(node.publicKey);
      const state = await c.state();
      expect([state.referees, state.faucet]).toEqual([[referee.publicKey], true]);
      expect((await c.verify()).ok).toBe(true);
    } finally {
      c.close();
      await svc.close();
    }
  });

  it('preverifyEvent only ever vouches for a signature that verifies', async () => {
    const node = nodes[1];
    const good = signEvent({ type: 'register', node: node.publicKey, collateral: 5 }, node);
    const forged = { ...good, sig: good.sig.replace(/.$/, (d) => (d === '0' ? '1' : '0')) };
    await preverifyEvent(forged);
    expect(codeOf(() => checkSignature(forged))).toBe('ERR_SIGNATURE');
    await preverifyEvent(good);
    // Verified over the event as it was: an altered copy with the same sig is still checked.
    expect(codeOf(() => checkSignature({ ...good, collateral: 6 }))).toBe('ERR_SIGNATURE');
    expect(checkSignature(good)?.actor).toBe(node.publicKey);
    await preverifyEvent(null);
    await preverifyEvent({ type: 'tick' });
  });

  it('atoma ledger serve --referee KEY (repeatable) --no-faucet puts the referees in genesis', async () => {
    const dir = tmp();
    const other = signerFromSeed(hx('referee 2'));
    const child = spawn(process.execPath, [cli, 'ledger', 'serve', '--db', join(dir, 'c.db'), '--port', '0', '--referee', referee.publicKey, `--referee=${other.publicKey}`, '--no-faucet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => { buf += d; if (buf.includes('\n')) resolve(buf.split('\n')[0]); });
        child.once('exit', (code) => reject(new Error(`ledger serve exited with ${code}`)));
        setTimeout(() => reject(new Error('ledger serve did not start')), 20_000).unref();
      });
      const info = JSON.parse(line) as { url: string; referees: string[]; faucet: boolean };
      expect(info.referees).toEqual([referee.publicKey, other.publicKey]);
      expect(info.faucet).toBe(false);
      const c = new LedgerClient(info.url);
      expect(await asyncCodeOf(c.submit({ type: 'deposit', account: client.publicKey, amount: 1 }))).toBe('ERR_FAUCET');
      c.close();
    } finally {
      child.kill('SIGTERM');
    }
    const bad = runCli(['ledger', 'serve', '--db', join(dir, 'd.db'), '--referee', 'nothex']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/referee/);
  });
});
