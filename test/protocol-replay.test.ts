/**
 * The rules run in place (machine.ts applyInPlace) in time independent of the number of nodes.
 * These tests pin that change to the rules as they were: digests recorded from the copy-on-write
 * machine before the change (event log with effects, final state, simulator report) must come out
 * unchanged, from both the in-place and the pure path; undo must restore a state exactly; and the
 * SQLite ledger must take the in-memory state back when the database refuses a write.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blake3 } from '../lib/engine/hash.js';
import { apply, applyInPlace, emptyState, eligibleNodes, simulate, commitment, Ledger, DEFAULT_PARAMS, signEvent, signerFromSeed, type Event, type Effect, type State, type SimulationOptions, type Applied, type RequestRecord } from '../lib/protocol/index.js';
import { canonical } from '../lib/protocol/ledger/store.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');

/**
 * Recorded with the rules before the in-place change (every table copied per event). `state` is
 * the digest of the final state without the `keys` table, which came later (publishKey events,
 * lib/protocol/ledger/keys.ts): these scenarios publish no key, so that table is empty and the
 * rest of the state must hash as recorded. `full` pins the whole state, `keys: {}` included: its
 * serialization gained `"keys":{}`, and that is the only difference.
 */
/**
 * Referees (genesis `referees`, `reexecuted.referee`) and request inputs (`request.input`, kept in
 * the request record) came after these digests were recorded. The simulator now sends them; taking
 * exactly those fields out must give back the recorded bytes, so nothing else changed.
 */
/**
 * The commitment came to cover traceLeaves later still (136 bytes instead of 128). Every
 * commitment the simulator makes is opened by a reveal in its log (a copier's is a copy of one
 * that is), so each maps back to the form it was recorded in: BLAKE3(out || root || node || salt).
 */
type Legacy = Map<string, string>;
function legacyCommitments(events: readonly Event[]): Legacy {
  const m: Legacy = new Map();
  for (const e of events) {
    if (e.type !== 'reveal') continue;
    m.set(commitment(e.outputDigest, e.traceRoot, e.traceLeaves, e.node, e.salt), blake3(Buffer.from(e.outputDigest + e.traceRoot + e.node + e.salt, 'hex')).toString('hex'));
  }
  return m;
}
function legacyEvent(e: Event, c: Legacy): unknown {
  const x = e as unknown as Record<string, unknown>;
  if (e.type === 'genesis') { const { referees: _r, ...rest } = x; return rest; }
  if (e.type === 'request') { const { input: _i, ...rest } = x; return rest; }
  if (e.type === 'reexecuted') { const { referee: _r, ...rest } = x; return rest; }
  if (e.type === 'commit') return { ...e, commitment: c.get(e.commitment) ?? e.commitment };
  return e;
}
function legacyRecord(r: RequestRecord, c: Legacy): object {
  const { input: _i, ...rest } = r;
  return { ...rest, slots: r.slots.map((x) => (x.commitment === undefined ? x : { ...x, commitment: c.get(x.commitment) ?? x.commitment })) };
}
function legacyEffects(fx: readonly Effect[], c: Legacy): unknown[] {
  return fx.map((x) => (x.type === 'closed' ? { ...x, request: legacyRecord(x.request, c) } : x));
}
function legacyState(st: State, c: Legacy): Record<string, unknown> {
  const { referees: _r, ...rest } = st;
  return { ...rest, requests: Object.fromEntries(Object.entries(st.requests).map(([id, r]) => [id, legacyRecord(r, c)])) };
}

const RECORDED: { options: SimulationOptions; events: number; log: string; state: string; full: string; report: string }[] = [
  { options: { nodes: 10, sample: 3, byzantine: 2, requests: 3000 }, events: 35870,
    log: '13ac7eb5d6b52db8bafb245a13131b1b9df2c5c68c3c059beea84a39376b4bad', state: 'd63542c5f6a97f47b33e1af1b2cb21920e1f3252f6f24c0050bd0c3af09d4e60',
    full: '5525d4e26eba4c4d52ef432512ac2712c3856d143a80788b138f89dabc6c5c11', report: 'fc6ecb3881290f6470a25ed8bf5040406d4be575ba910346b8882eed5fa5a6db' },
  { options: { nodes: 50, sample: 5, byzantine: 15, requests: 1500, behavior: 'mixed' }, events: 28779,
    log: 'ab31a7464e6b745af7914a6f3e050749c984b84490d4fafbdd827c68ff461aaf', state: '8cfa416b7b0f9e145492cfccda5e759e5f32cea6bd40595b2749463badc58abc',
    full: '54abba07a8eaad37606defbd132f5cf4526b2d468d5bee00c89d26cf538065aa', report: 'e839a8a813b66f0cd5075bd0654473e15c0dc7cbd6005681f09be7f719a9cff5' },
  { options: { nodes: 7, sample: 3, byzantine: 3, requests: 800, behavior: 'silent' }, events: 9613,
    log: '4d0c00c4e956138ccb605e2d5f0b783e236cf4f3d9d4501e276c813d6aaa1798', state: '972ac3b2f3dd38d8389f34625ba55a77da86af31c65b04938aaf2d711f0a22ab',
    full: 'e2b62435d9e1f2ce8b4017525f51c65fa81d6ebfeb40a71cc61fdedc9e9576c1', report: '9cc7aed7d84b99e205fe4a392acfaff0087296eef1bd9923f8217d336ec9fb86' },
  { options: { nodes: 20, sample: 4, byzantine: 6, requests: 800, behavior: 'copy', seed: 7 }, events: 10881,
    log: '7e91c2b24b1b343a3518960228b8ed3d5d98bbbfa4d4c8e4d92fa9fe7385144a', state: '8363442a2874bdccb7502c912da304e89715fdd43a4b1f3565d7ea7b2d175c49',
    full: '0b54e5822d6e8884c43e0c835cd404296309c1b65222618db1999fb48e7d91cb', report: 'd8d00fcb39cfdb91b00a7aad0d3f4194a57428f5ab0b63bd43523ea939045c38' },
  { options: { nodes: 1000, sample: 3, byzantine: 300, requests: 300, behavior: 'mixed', seed: 3 }, events: 6542,
    log: 'c2a2fc7b48505625e9c99e6bbce76ebebba3f697c5eb8d78778c5e737603c5af', state: 'e2363f3a9c9cd2a0a627d8f35cee6e4ecc9caa15ed65d74724bc043c0f960b17',
    full: '158a64ae95ed4458fed4ca97e2b2621541431e019b48017444fe8ab17cd3fcfd', report: '4a715a031496d4437c1482149ea67aa321c592f3a23101febfc1155668b8d026' },
];

describe('in-place rules give the recorded results', () => {
  for (const x of RECORDED) {
    it(`${JSON.stringify(x.options)}: same log, effects, state and report`, () => {
      const h = createHash('sha256');
      const events: Event[] = [];
      const effects: Effect[][] = [];
      const report: Partial<ReturnType<typeof simulate>> = simulate({ ...x.options, onStep: (e, fx) => { events.push(e); effects.push([...fx]); } });
      const c = legacyCommitments(events);
      events.forEach((e, i) => h.update(JSON.stringify(legacyEvent(e, c)) + '\n' + JSON.stringify(legacyEffects(effects[i], c)) + '\n'));
      delete report.seconds;
      delete report.requestsPerSecond;
      expect(events.length).toBe(x.events);
      expect(h.digest('hex')).toBe(x.log);
      expect(sha(JSON.stringify(report))).toBe(x.report);
      // The same log replayed through the pure path and through a fresh in-place state.
      let pure = emptyState();
      const inPlace = emptyState();
      for (const e of events) {
        pure = apply(pure, e).state;
        applyInPlace(inPlace, e);
      }
      for (const st of [pure, inPlace]) {
        expect(st.referees).toEqual([hx('referee', x.options.seed ?? 1)]);
        const { keys, ...rest } = legacyState(st, c);
        expect(keys).toEqual({});
        expect(sha(canonical(rest))).toBe(x.state);
        expect(sha(canonical(legacyState(st, c)))).toBe(x.full);
      }
    });
  }
});

describe('undo', () => {
  it('takes events back exactly, in reverse order, and the node index follows', () => {
    const events: Event[] = [];
    simulate({ nodes: 12, sample: 3, byzantine: 4, requests: 40, behavior: 'mixed', onStep: (e) => events.push(e) });
    const state = emptyState();
    const cut = 200;
    for (const e of events.slice(0, cut)) applyInPlace(state, e);
    const snapshot = canonical(state);
    const undos: Applied[] = [];
    for (const e of events.slice(cut)) undos.push(applyInPlace(state, e));
    expect(canonical(state)).not.toBe(snapshot);
    for (const a of undos.reverse()) a.undo();
    expect(canonical(state)).toBe(snapshot);
    // The eligibility index must agree with a fresh scan of the restored table.
    const task = Object.values(state.tasks)[0];
    const fresh: State = JSON.parse(JSON.stringify(state));
    expect(eligibleNodes(state, task, 10)).toEqual(eligibleNodes(fresh, task, 10));
    // And the rest of the log replays to the same end as before.
    for (const e of events.slice(cut)) applyInPlace(state, e);
    let pure = emptyState();
    for (const e of events) pure = apply(pure, e).state;
    expect(canonical(state)).toBe(canonical(pure));
  });

  it('a refused event changes nothing, including a register undone after it was written', () => {
    const state = emptyState();
    applyInPlace(state, { type: 'genesis', at: 0, params: DEFAULT_PARAMS, beacon: hx('b') });
    const task = hx('task');
    applyInPlace(state, { type: 'createTask', at: 1, task, creator: hx('c'), kind: 'wasm', digest: hx('d'), security: { mode: 'sampling', n: 2 }, minReputation: 0 });
    for (let i = 0; i < 3; i++) {
      applyInPlace(state, { type: 'deposit', at: 2, account: hx('n', i), amount: DEFAULT_PARAMS.minCollateral });
      applyInPlace(state, { type: 'register', at: 2, node: hx('n', i), collateral: DEFAULT_PARAMS.minCollateral });
      applyInPlace(state, { type: 'subscribe', at: 2, node: hx('n', i), task, price: 5 });
    }
    expect(eligibleNodes(state, state.tasks[task], 5)).toHaveLength(3);
    const snapshot = canonical(state);
    for (const bad of [
      { type: 'register', at: 3, node: hx('poor'), collateral: DEFAULT_PARAMS.minCollateral },
      { type: 'subscribe', at: 3, node: hx('n', 0), task: hx('nope'), price: 1 },
      { type: 'request', at: 3, request: hx('r'), task, client: hx('broke'), maxPrice: 5, minNodes: 1, input: hx('in'), entropy: hx('e') },
      { type: 'deposit', at: 1, account: hx('a'), amount: 1 },
    ]) expect(() => applyInPlace(state, bad)).toThrow();
    expect(canonical(state)).toBe(snapshot);
    // A node registered and then undone leaves the draw as it was.
    applyInPlace(state, { type: 'deposit', at: 4, account: hx('late'), amount: DEFAULT_PARAMS.minCollateral });
    const reg = applyInPlace(state, { type: 'register', at: 4, node: hx('late'), collateral: DEFAULT_PARAMS.minCollateral });
    const sub = applyInPlace(state, { type: 'subscribe', at: 4, node: hx('late'), task, price: 5 });
    expect(eligibleNodes(state, state.tasks[task], 5)).toHaveLength(4);
    sub.undo();
    reg.undo();
    expect(eligibleNodes(state, state.tasks[task], 5)).toEqual([hx('n', 0), hx('n', 1), hx('n', 2)].sort());
  });
});

describe('node index', () => {
  it('follows subscribe, unsubscribe, price changes, slashing and new nodes after it was built', () => {
    const state = emptyState();
    let at = 0;
    const step = (e: Record<string, unknown>) => applyInPlace(state, { ...e, at: (at += 1) });
    step({ type: 'genesis', params: DEFAULT_PARAMS, beacon: hx('b') });
    const [t1, t2] = [hx('t1'), hx('t2')];
    for (const task of [t1, t2]) step({ type: 'createTask', task, creator: hx('c'), kind: 'wasm', digest: hx('d'), security: { mode: 'sampling', n: 2 }, minReputation: 0 });
    const ids = Array.from({ length: 8 }, (_, i) => hx('n', i));
    for (const [i, id] of ids.entries()) {
      step({ type: 'deposit', account: id, amount: 2 * DEFAULT_PARAMS.minCollateral });
      step({ type: 'register', node: id, collateral: DEFAULT_PARAMS.minCollateral });
      step({ type: 'subscribe', node: id, task: i % 2 ? t1 : t2, price: 1 + i });
    }
    const same = () => {
      const fresh: State = JSON.parse(JSON.stringify(state));
      for (const task of [t1, t2]) for (const max of [0, 3, 6, 100]) expect(eligibleNodes(state, state.tasks[task], max)).toEqual(eligibleNodes(fresh, fresh.tasks[task], max));
    };
    same(); // builds the index and both price columns
    step({ type: 'subscribe', node: ids[0], task: t1, price: 2 });
    step({ type: 'subscribe', node: ids[1], task: t1, price: 50 });
    step({ type: 'unsubscribe', node: ids[3], task: t1 });
    step({ type: 'deposit', account: hx('new'), amount: DEFAULT_PARAMS.minCollateral });
    step({ type: 'register', node: hx('new'), collateral: DEFAULT_PARAMS.minCollateral });
    step({ type: 'subscribe', node: hx('new'), task: t2, price: 1 });
    same();
    step({ type: 'deposit', account: hx('client'), amount: 10 ** 9 });
    const request = hx('r');
    step({ type: 'request', request, task: t1, client: hx('client'), maxPrice: 100, minNodes: 1, input: hx('in'), entropy: hx('e') });
    at += DEFAULT_PARAMS.commitMs + 1;
    step({ type: 'tick' }); // both sampled nodes time out: slashed below the minimum collateral
    same();
  });
});

describe('ledger with in-place rules', () => {
  it('a write the database refuses takes the in-memory state back; the ledger goes on and verifies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-ledger-undo-'));
    try {
      let now = 1_000;
      const l = Ledger.open(join(dir, 'l.db'), { clock: () => (now += 1) });
      // Participants sign their events (ids are their public keys); deposits come from the faucet.
      const keys = new Map<string, ReturnType<typeof signerFromSeed>>();
      const key = (...p: (string | number)[]) => { const k = signerFromSeed(hx(...p)); keys.set(k.publicKey, k); return k.publicKey; };
      const as = (e: Record<string, unknown>) => signEvent(e, keys.get((e.node ?? e.client ?? e.creator) as string)!);
      const client = key('client');
      const task = hx('task');
      l.submit({ type: 'deposit', account: client, amount: 10 ** 9 });
      l.submit(as({ type: 'createTask', task, creator: client, kind: 'wasm', digest: hx('m'), security: { mode: 'sampling', n: 2 }, minReputation: 0 }));
      for (let i = 0; i < 4; i++) {
        const node = key('n', i);
        l.submit({ type: 'deposit', account: node, amount: DEFAULT_PARAMS.minCollateral });
        l.submit(as({ type: 'register', node, collateral: DEFAULT_PARAMS.minCollateral }));
        l.submit(as({ type: 'subscribe', node, task, price: 3 }));
      }
      const request = hx('req');
      const input = l.putInput(Buffer.from('the input'));
      const sampled = l.submit(as({ type: 'request', request, task, client, maxPrice: 3, input })).effects.find((e) => e.type === 'sampled') as { nodes: string[] };
      const out = hx('o'), tr = hx('t');
      for (const n of sampled.nodes) l.submit(as({ type: 'commit', request, node: n, commitment: commitment(out, tr, 1, n, hx('s', n)) }));
      // The database refuses to record the closed request: the settling reveal must leave no trace.
      l.db.exec("CREATE TRIGGER no_close BEFORE INSERT ON closed BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END");
      const [first, last] = sampled.nodes;
      l.submit(as({ type: 'reveal', request, node: first, outputDigest: out, traceRoot: tr, traceLeaves: 1, salt: hx('s', first) }));
      const before = canonical(l.state);
      const lastReveal = as({ type: 'reveal', request, node: last, outputDigest: out, traceRoot: tr, traceLeaves: 1, salt: hx('s', last) });
      const r = l.submitBatch([{ type: 'deposit', account: client, amount: 5 }, lastReveal]);
      expect(r.map((x) => x.ok)).toEqual([true, false]);
      expect(r[1].ok ? '' : r[1].error.message).toMatch(/refused by test trigger/);
      expect(l.state.requests[request]).toBeDefined();
      expect(l.state.accounts[client]).toBe(JSON.parse(before).accounts[client] + 5);
      expect(l.verify()).toBe(true);
      l.db.exec('DROP TRIGGER no_close');
      // The refused reveal left no nonce behind either: the same signed event goes through now.
      const settled = l.submit(lastReveal);
      expect(settled.effects.some((e) => e.type === 'settled')).toBe(true);
      expect(l.verify()).toBe(true);
      l.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
