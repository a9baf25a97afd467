import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3 } from '../lib/engine/hash.js';
import { Ledger, LedgerClient, serveLedger, commitment, signEvent, signerFromSeed, DEFAULT_PARAMS, type Effect, type Signer } from '../lib/protocol/index.js';
import { canonical } from '../lib/protocol/ledger/store.js';
const root = join(import.meta.dirname, '..');

const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');
const tmp = () => mkdtempSync(join(tmpdir(), 'atoma-ledger-'));
const P = DEFAULT_PARAMS;

/** Participants' keys by id (ids are Ed25519 public keys, from fixed seeds). */
const keys = new Map<string, Signer>();
const key = (...p: (string | number)[]) => { const k = signerFromSeed(hx(...p)); keys.set(k.publicKey, k); return k.publicKey; };
/** An event signed by its actor (node, client or creator). */
const as = (e: Record<string, unknown>) => signEvent(e, keys.get((e.node ?? e.client ?? e.creator) as string)!);

function populate(submit: (e: Record<string, unknown>) => { effects: Effect[] }, nodes = 5) {
  const ids = Array.from({ length: nodes }, (_, i) => key('n', i));
  const client = key('client'), task = hx('task');
  submit({ type: 'deposit', account: client, amount: 10 ** 9 });
  submit(as({ type: 'createTask', task, creator: client, kind: 'wasm', digest: hx('mod'), security: { mode: 'sampling', n: 3 }, minReputation: 0 }));
  for (const id of ids) {
    submit({ type: 'deposit', account: id, amount: P.minCollateral });
    submit(as({ type: 'register', node: id, collateral: P.minCollateral }));
    submit(as({ type: 'subscribe', node: id, task, price: 7 }));
  }
  return { ids, client, task };
}

describe('embedded SQLite ledger', () => {
  it('persists, rebuilds the state by replaying the log, and refuses bad events without change', () => {
    const dir = tmp();
    try {
      const db = join(dir, 'l.db');
      let l = Ledger.open(db);
      const { client, task } = populate((e) => l.submit(e));
      const request = hx('req');
      const input = l.putInput(Buffer.from('{"prompt":[1,2,3]}'));
      const { effects } = l.submit(as({ type: 'request', request, task, client, maxPrice: 7, input }));
      expect(l.state.requests[request].input).toBe(input);
      const nodes = (effects.find((e) => e.type === 'sampled') as { nodes: string[] }).nodes;
      const out = hx('o'), tr = hx('t');
      for (const n of nodes) l.submit(as({ type: 'commit', request, node: n, commitment: commitment(out, tr, 4, n, hx('s', n)) }));
      for (const n of nodes) l.submit(as({ type: 'reveal', request, node: n, outputDigest: out, traceRoot: tr, traceLeaves: 4, salt: hx('s', n) }));
      expect(l.state.requests[request]).toBeUndefined();
      expect(l.closedRequest(request)?.outcome).toBe('settled');
      const seq = l.state.seq;
      const refused: [unknown, string][] = [[{ type: 'deposit', account: client, amount: 1, at: 5 }, 'ERR_EVENT'], [as({ type: 'request', request, task, client, maxPrice: 7, input }), 'ERR_DUPLICATE'],
        [{ type: 'genesis' }, 'ERR_EVENT'], [{ type: 'tick' }, 'ERR_EVENT'], ['x', 'ERR_EVENT'], [as({ type: 'register', node: key('z'), collateral: P.minCollateral }), 'ERR_FUNDS']];
      for (const [bad, code] of refused) {
        let err: unknown;
        try { l.submit(bad); } catch (e) { err = e; }
        expect(err).toBeInstanceOf(AtomaError);
        expect((err as AtomaError).code).toBe(code);
      }
      expect(l.state.seq).toBe(seq);
      const batch = l.submitBatch([{ type: 'deposit', account: client, amount: 1 }, { type: 'deposit', account: 'bad', amount: 1 }, { type: 'deposit', account: client, amount: 2 }]);
      expect(batch.map((r) => r.ok)).toEqual([true, false, true]);
      expect(l.verify()).toBe(true);
      const snapshot = canonical(l.state);
      l.close();
      l = Ledger.open(db);
      expect(canonical(l.state)).toBe(snapshot);
      expect(canonical(l.replay())).toBe(snapshot);
      l.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('loses no acknowledged commit when the process is killed with SIGKILL mid-transaction', async () => {
    const dir = tmp();
    try {
      const db = join(dir, 'crash.db');
      const script = `
        import { Ledger } from ${JSON.stringify(join(root, 'dist/protocol/index.js'))};
        const l = Ledger.open(${JSON.stringify(db)});
        for (let b = 0; b < 1e6; b++) {
          const rs = l.submitBatch(Array.from({ length: 500 }, (_, i) => ({ type: 'deposit', account: '${hx('acct')}', amount: 1 })));
          process.stdout.write(rs[rs.length - 1].seq + '\\n');
        }`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const acked: number[] = [];
      await new Promise<void>((resolve) => {
        let buf = '';
        child.stdout.on('data', (c: Buffer) => {
          buf += c;
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const x of lines) acked.push(Number(x));
          if (acked.length >= 8 && !child.killed) { child.kill('SIGKILL'); resolve(); }
        });
        child.on('exit', () => resolve());
      });
      await new Promise((r) => child.once('exit', r).once('close', r) && setTimeout(r, 2000));
      const last = Math.max(...acked);
      const l = Ledger.open(db);
      expect(l.state.seq).toBeGreaterThan(last);
      // Batches are atomic: a whole number of 500-event batches after genesis, nothing partial.
      expect((l.state.seq - 1) % 500).toBe(0);
      expect(l.state.accounts[hx('acct')]).toBe(l.state.seq - 1);
      expect(l.events(last, 1)[0].seq).toBe(last);
      expect(l.verify()).toBe(true);
      l.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('ledger service over loopback', () => {
  it('serves events with typed errors, validates network input, streams over WebSocket', async () => {
    const dir = tmp();
    const svc = await serveLedger({ db: join(dir, 's.db'), port: 0 });
    const c = new LedgerClient(svc.url);
    try {
      const streamed: number[] = [];
      const stop = c.stream(0, (item) => streamed.push(item.seq));
      const log: { effects: Effect[] }[] = [];
      const queue: Promise<unknown>[] = [];
      // populate() is synchronous-looking: chain the submissions in order.
      let chain: Promise<unknown> = Promise.resolve();
      populate((e) => { chain = chain.then(() => c.submit(e as never)).then((r) => log.push(r as { effects: Effect[] })); queue.push(chain); return { effects: [] }; });
      await chain;
      expect((await c.state()).nodes).toBe(5);
      const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: AtomaError) => e.code);
      expect(await codeOf(c.submit({ type: 'deposit', account: hx('a'), amount: 1, at: 3 }))).toBe('ERR_EVENT');
      expect(await codeOf(c.submit({ type: 'request', request: hx('r'), task: hx('task'), client: key('client'), maxPrice: 7, input: hx('i'), entropy: hx('x') }))).toBe('ERR_EVENT');
      expect(await codeOf(c.submit({ type: 'nope' }))).toBe('ERR_EVENT');
      expect(await codeOf(c.get('nodes', 'zz'))).toBe('ERR_EVENT');
      expect(await codeOf(c.get('nodes', hx('missing')))).toBe('ERR_NOT_FOUND');
      const raw = (body: string, type = 'application/json') => new Promise<number>((resolve, reject) => {
        const req = httpRequest(svc.url + '/events', { method: 'POST', headers: { 'content-type': type } }, (res) => { res.resume(); resolve(res.statusCode!); });
        req.on('error', reject);
        req.end(body);
      });
      expect(await raw('{not json')).toBe(400);
      expect(await raw('{}', 'text/plain')).toBe(415);
      expect(await raw(JSON.stringify({ type: 'tick', pad: 'x'.repeat(100_000) }))).toBe(413);
      // 50 concurrent deposits: group commit, all acknowledged with distinct sequence numbers.
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => c.submit({ type: 'deposit', account: hx('acct', i), amount: i + 1 })));
      expect(new Set(rs.map((r) => r.seq)).size).toBe(50);
      const input = await c.putInput(Buffer.from('input bytes'), keys.get(key('client'))!);
      const { effects } = await c.submit(as({ type: 'request', request: hx('rq'), task: hx('task'), client: key('client'), maxPrice: 7, input }));
      expect(effects[0].type).toBe('sampled');
      expect((await c.verify()).ok).toBe(true);
      const seq = (await c.state()).seq as number;
      for (let i = 0; i < 100 && streamed.length < seq; i++) await new Promise((r) => setTimeout(r, 20));
      stop();
      expect(streamed).toEqual(Array.from({ length: seq }, (_, i) => i));
    } finally {
      c.close();
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
