import { describe, expect, it } from 'vitest';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3 } from '../lib/engine/hash.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, emptyState, commitment, sampleNodes, Trace, DEFAULT_PARAMS, simulate, auditAmounts, escrowFor, Ledger, type State, type Effect } from '../lib/protocol/index.js';

const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');
const P = DEFAULT_PARAMS;
/** The referee genesis names, and a request input digest (the rules only record it). */
const REF = hx('referee');
const IN = hx('input');

/** A small world: N nodes subscribed to one sampling task, a funded client. */
function world(N: number, n: number, minReputation = 0) {
  let state: State = emptyState();
  let at = 0;
  const effects: Effect[] = [];
  const step = (e: Record<string, unknown>, dt = 1) => {
    const t = apply(state, { ...e, at: (at += dt) });
    state = t.state;
    effects.push(...t.effects);
    return t.effects;
  };
  step({ type: 'genesis', params: P, beacon: hx('beacon'), referees: [REF] });
  const nodes = Array.from({ length: N }, (_, i) => hx('node', i));
  const client = hx('client');
  const task = hx('task');
  step({ type: 'deposit', account: client, amount: 10 ** 12 });
  step({ type: 'createTask', task, creator: client, kind: 'inference', digest: hx('model'), security: { mode: 'sampling', n }, minReputation });
  for (const id of nodes) {
    step({ type: 'deposit', account: id, amount: P.minCollateral });
    step({ type: 'register', node: id, collateral: P.minCollateral });
    step({ type: 'subscribe', node: id, task, price: 100 });
  }
  return { get state() { return state; }, step, nodes, client, task, effects, time: () => at };
}

const honest = Trace.fromLeaves(Array.from({ length: 12 }, (_, i) => `step${i >> 1}/layer${i & 1}`));
const forgedAt = (k: number) => Trace.fromLeaves(Array.from({ length: 12 }, (_, i) => (i >= k ? 'forged' : '') + `step${i >> 1}/layer${i & 1}`));
const OUT = hx('out');

function commitReveal(w: ReturnType<typeof world>, request: string, traces: Map<string, Trace>, out = OUT) {
  const req = w.state.requests[request];
  for (const s of req.slots) {
    const t = traces.get(s.node) ?? honest;
    w.step({ type: 'commit', request, node: s.node, commitment: commitment(t === honest ? out : hx('bad'), t.root(), t.length, s.node, hx('salt', s.node)) });
  }
  for (const s of req.slots) {
    const t = traces.get(s.node) ?? honest;
    w.step({ type: 'reveal', request, node: s.node, outputDigest: t === honest ? out : hx('bad'), traceRoot: t.root(), traceLeaves: t.length, salt: hx('salt', s.node) });
  }
}

function code(fn: () => unknown): string {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(AtomaError); return (e as AtomaError).code; }
  return 'no error';
}

describe('protocol rules', () => {
  it('agreement settles: the client is charged, nodes paid with the attester surcharge, fee to treasury', () => {
    const w = world(20, 5);
    const before = w.state.accounts[w.client];
    w.step({ type: 'request', request: hx('r1'), task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('e1') });
    const sampled = w.state.requests[hx('r1')].slots.map((s) => s.node);
    expect(w.state.requests[hx('r1')].input).toBe(IN);
    expect(w.state.referees).toEqual([REF]);
    expect(new Set(sampled).size).toBe(5);
    commitReveal(w, hx('r1'), new Map());
    expect(w.state.requests[hx('r1')]).toBeUndefined();
    const paid = w.effects.filter((e) => e.type === 'paid');
    expect(paid.map((p) => p.amount)).toEqual([100, 110, 110, 110, 110]);
    const total = 540, fee = Math.ceil(total / 100);
    expect(before - w.state.accounts[w.client]).toBe(total + fee);
    expect(w.state.treasury).toBe(fee);
    for (const id of sampled) expect(w.state.nodes[id].reputation).toBe(P.initialReputation + 1);
    // Conservation: balances + collateral + escrow + treasury = minted.
    const sum = Object.values(w.state.accounts).reduce((a, b) => a + b, 0) + Object.values(w.state.nodes).reduce((a, n) => a + n.collateral, 0) + w.state.treasury;
    expect(sum).toBe(w.state.minted);
    expect(auditAmounts(w.state)).toEqual([]);
  });

  it('a node serves only subscribed tasks, with enough reputation; fewer eligible than n samples them all', () => {
    const w = world(4, 10, 50);
    expect(code(() => w.step({ type: 'commit', request: hx('nope'), node: w.nodes[0], commitment: hx('c') }))).toBe('ERR_NOT_FOUND');
    w.step({ type: 'unsubscribe', node: w.nodes[0], task: w.task });
    const eff = w.step({ type: 'request', request: hx('r'), task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('e') });
    const s = eff.find((e) => e.type === 'sampled')!;
    expect(s.type === 'sampled' && s.nodes.length).toBe(3);
    expect(s.type === 'sampled' && s.nodes.includes(w.nodes[0])).toBe(false);
    expect(code(() => w.step({ type: 'request', request: hx('r2'), task: w.task, client: w.client, maxPrice: 100, minNodes: 4, input: IN, entropy: hx('e') }))).toBe('ERR_NO_NODES');
    expect(code(() => w.step({ type: 'request', request: hx('r3'), task: w.task, client: w.client, maxPrice: 99, minNodes: 1, input: IN, entropy: hx('e') }))).toBe('ERR_NO_NODES');
  });

  it('a missed commit deadline slashes 10% and samples a replacement; a missed reveal too', () => {
    const w = world(12, 3);
    const request = hx('r');
    w.step({ type: 'request', request, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('e') });
    const [a, b, c] = w.state.requests[request].slots.map((s) => s.node);
    w.step({ type: 'commit', request, node: a, commitment: commitment(OUT, honest.root(), 12, a, hx('salt', a)) });
    w.step({ type: 'commit', request, node: b, commitment: commitment(OUT, honest.root(), 12, b, hx('salt', b)) });
    expect(code(() => w.step({ type: 'commit', request, node: c, commitment: hx('x') }, P.commitMs + 10))).toBe('ERR_PHASE');
    const eff = w.step({ type: 'tick' }, P.commitMs + 10);
    expect(eff.find((e) => e.type === 'slashed')).toMatchObject({ node: c, amount: P.minCollateral / 10, reason: 'timeout' });
    const rep = eff.find((e) => e.type === 'replaced')!;
    expect(rep.type === 'replaced' && rep.node && ![a, b, c].includes(rep.node)).toBe(true);
    expect(w.state.nodes[c].reputation).toBe(P.initialReputation - P.reputationTimeout);
    const d = (rep as { node: string }).node;
    w.step({ type: 'commit', request, node: d, commitment: commitment(OUT, honest.root(), 12, d, hx('salt', d)) });
    expect(w.state.requests[request].phase).toBe('reveal');
    w.step({ type: 'reveal', request, node: a, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: 12, salt: hx('salt', a) });
    const eff2 = w.step({ type: 'tick' }, P.revealMs + 10);
    expect(eff2.filter((e) => e.type === 'slashed').map((e) => (e as { node: string }).node).sort()).toEqual([b, d].sort());
    expect(w.state.requests[request].phase).toBe('commit');
  });

  it('commit-reveal: hiding (salted, node-bound) and binding (no other opening, copies cannot open)', () => {
    const w = world(10, 3);
    const request = hx('r');
    w.step({ type: 'request', request, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('e') });
    const [a, b, c] = w.state.requests[request].slots.map((s) => s.node);
    const ca = commitment(OUT, honest.root(), 12, a, hx('salt', a));
    // Same result, different node or salt: unrelated commitments; nothing about the output shows.
    expect(commitment(OUT, honest.root(), 12, b, hx('salt', a))).not.toBe(ca);
    expect(commitment(OUT, honest.root(), 12, a, hx('salt2', a))).not.toBe(ca);
    expect(commitment(OUT, honest.root(), 13, a, hx('salt', a))).not.toBe(ca);
    // The byte layout of docs/protocol.md: 136 bytes, the leaf count as u64 little-endian.
    const leaves = Buffer.alloc(8);
    leaves.writeBigUInt64LE(12n);
    expect(ca).toBe(blake3(Buffer.concat([Buffer.from(OUT, 'hex'), Buffer.from(honest.root(), 'hex'), leaves, Buffer.from(a, 'hex'), Buffer.from(hx('salt', a), 'hex')])).toString('hex'));
    expect(code(() => commitment(OUT, honest.root(), -1, a, hx('salt', a)))).toBe('ERR_EVENT');
    w.step({ type: 'commit', request, node: a, commitment: ca });
    w.step({ type: 'commit', request, node: b, commitment: ca }); // b copies a's commitment
    w.step({ type: 'commit', request, node: c, commitment: commitment(OUT, honest.root(), 12, c, hx('salt', c)) });
    expect(code(() => w.step({ type: 'reveal', request, node: b, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: 12, salt: hx('salt', a) }))).toBe('ERR_MISMATCH');
    expect(code(() => w.step({ type: 'reveal', request, node: a, outputDigest: hx('other'), traceRoot: honest.root(), traceLeaves: 12, salt: hx('salt', a) }))).toBe('ERR_MISMATCH');
    expect(code(() => w.step({ type: 'reveal', request, node: a, outputDigest: OUT, traceRoot: forgedAt(3).root(), traceLeaves: 12, salt: hx('salt', a) }))).toBe('ERR_MISMATCH');
    // The leaf count is bound too: chosen at reveal time it would pick how a dispute runs.
    for (const leaves of [0, 11, 13, 2 ** 20]) {
      expect(code(() => w.step({ type: 'reveal', request, node: a, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: leaves, salt: hx('salt', a) }))).toBe('ERR_MISMATCH');
    }
    w.step({ type: 'reveal', request, node: a, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: 12, salt: hx('salt', a) });
    expect(code(() => w.step({ type: 'reveal', request, node: a, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: 12, salt: hx('salt', a) }))).toBe('ERR_DUPLICATE');
  });

  for (const k of [0, 5, 7, 11]) {
    it(`dispute bisection finds the first differing leaf (${k}) of real Merkle traces and slashes the wrong side`, () => {
      const w = world(10, 3);
      const request = hx('r', k);
      w.step({ type: 'request', request, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('e', k) });
      const [a, b, c] = w.state.requests[request].slots.map((s) => s.node);
      const forged = forgedAt(k);
      const traces = new Map([[c, forged]]);
      commitReveal(w, request, traces);
      expect(w.state.requests[request].phase).toBe('dispute');
      const tr = (n: string) => traces.get(n) ?? honest;
      let reexec: Effect | undefined;
      for (let round = 0; round < 10 && !reexec; round++) {
        const x = w.state.requests[request].dispute!;
        for (const side of [x.a, x.b]) {
          // A side cannot change its story: children that do not hash to its root are refused.
          expect(code(() => w.step({ type: 'bisect', request, node: side.nodes[0], left: hx('l'), right: hx('r') }))).toBe('ERR_MISMATCH');
          const [left, right] = tr(side.nodes[0]).children(x.lo, x.hi);
          const eff = w.step({ type: 'bisect', request, node: side.nodes[0], left, right });
          reexec = eff.find((e) => e.type === 'reexecute');
        }
      }
      expect(reexec).toMatchObject({ type: 'reexecute', mode: 'leaf', leafIndex: k });
      // The referee's re-execution: recompute leaf k from the agreed prefix (checked against the honest trace here).
      const prefix = (reexec as { agreedPrefix: { start: number; end: number; root: string }[] }).agreedPrefix;
      expect(prefix.reduce((n, p) => (expect(p.start).toBe(n), p.end), 0)).toBe(k);
      for (const p of prefix) expect(p.root).toBe(honest.root(p.start, p.end));
      const before = w.state.nodes[c].collateral;
      const eff = w.step({ type: 'reexecuted', request, referee: REF, leafHash: honest.leaf(k) });
      expect(eff.find((e) => e.type === 'slashed')).toMatchObject({ node: c, amount: before, reason: 'dispute' });
      expect(w.state.nodes[c].collateral).toBe(0);
      const settled = eff.find((e) => e.type === 'settled')!;
      expect(settled).toMatchObject({ outputDigest: OUT, nodes: [a, b] });
      const rewards = eff.filter((e) => e.type === 'rewarded');
      expect(rewards.map((r) => (r as { node: string }).node)).toEqual([a, b]);
      expect(rewards[0].type === 'rewarded' && rewards[0].amount).toBe(before * P.disputeRewardBps / 10_000 / 2);
      expect(w.state.nodes[c].reputation).toBe(P.initialReputation - P.reputationDispute);
    });
  }

  it('a majority that is wrong still loses: the referee decides, not the vote', () => {
    const w = world(10, 3);
    const request = hx('rm');
    w.step({ type: 'request', request, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('em') });
    const [a, b, c] = w.state.requests[request].slots.map((s) => s.node);
    const forged = forgedAt(4);
    const traces = new Map([[a, forged], [b, forged]]);
    commitReveal(w, request, traces);
    for (let round = 0; round < 10 && w.state.requests[request]?.dispute?.stage === 'bisect'; round++) {
      const x = w.state.requests[request].dispute!;
      for (const side of [x.a, x.b]) w.step({ type: 'bisect', request, node: side.nodes[0], ...Object.fromEntries((traces.get(side.nodes[0]) ?? honest).children(x.lo, x.hi).map((v, i) => [i ? 'right' : 'left', v])) });
    }
    // Only a referee genesis named may judge; a re-execution without a referee is malformed.
    const before = w.state;
    expect(code(() => w.step({ type: 'reexecuted', request, referee: hx('impostor'), leafHash: forged.leaf(4) }))).toBe('ERR_NOT_REFEREE');
    expect(code(() => w.step({ type: 'reexecuted', request, leafHash: forged.leaf(4) }))).toBe('ERR_EVENT');
    expect(w.state).toBe(before);
    const eff = w.step({ type: 'reexecuted', request, referee: REF, leafHash: honest.leaf(4) });
    expect(eff.find((e) => e.type === 'settled')).toMatchObject({ outputDigest: OUT, nodes: [c] });
    expect(w.state.nodes[a].collateral + w.state.nodes[b].collateral).toBe(0);
  });

  it('a side that misses a bisection deadline loses; different trace lengths go to full re-execution', () => {
    const w = world(10, 2);
    const request = hx('rt');
    w.step({ type: 'request', request, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('et') });
    const [a, b] = w.state.requests[request].slots.map((s) => s.node);
    commitReveal(w, request, new Map([[b, forgedAt(2)]]));
    const x = w.state.requests[request].dispute!;
    const side = x.a.nodes.includes(a) ? x.a : x.b;
    const [left, right] = honest.children(x.lo, x.hi);
    w.step({ type: 'bisect', request, node: side.nodes[0], left, right });
    const eff = w.step({ type: 'tick' }, P.bisectRoundMs + 5);
    expect(eff.find((e) => e.type === 'slashed')).toMatchObject({ node: b, reason: 'dispute' });
    expect(eff.find((e) => e.type === 'settled')).toMatchObject({ nodes: [a] });

    const r2 = hx('rl');
    w.step({ type: 'request', request: r2, task: w.task, client: w.client, maxPrice: 100, minNodes: 1, input: IN, entropy: hx('el') });
    const [p, q] = w.state.requests[r2].slots.map((s) => s.node);
    const short = Trace.fromLeaves(['x']);
    commitReveal(w, r2, new Map([[q, short]]));
    const re = w.effects.filter((e) => e.type === 'reexecute').pop();
    expect(re).toMatchObject({ mode: 'full', request: r2 });
    expect(code(() => w.step({ type: 'reexecuted', request: r2, referee: REF, leafHash: honest.leaf(0) }))).toBe('ERR_EVENT');
    const eff2 = w.step({ type: 'reexecuted', request: r2, referee: REF, outputDigest: OUT, traceRoot: honest.root(), traceLeaves: 12 });
    expect(eff2.find((e) => e.type === 'settled')).toMatchObject({ nodes: [p] });
  });

  it('malformed events get typed errors and leave the state as it was', () => {
    const w = world(3, 2);
    const s = w.state;
    const bad: unknown[] = [null, 7, [], {}, { type: 'nope' }, { type: 'deposit', at: 1e9, account: 'xyz', amount: 1 },
      { type: 'deposit', at: 1e9, account: hx('a'), amount: -1 }, { type: 'deposit', at: 1e9, account: hx('a'), amount: 1.5 },
      { type: 'deposit', at: 1e9, account: hx('a'), amount: 1, extra: 1 }, { type: 'deposit', account: hx('a'), amount: 1 },
      { type: 'createTask', at: 1e9, task: hx('t'), creator: hx('c'), kind: 'gpu', digest: hx('d'), security: { mode: 'none' }, minReputation: 0 },
      { type: 'createTask', at: 1e9, task: hx('t'), creator: hx('c'), kind: 'wasm', digest: hx('d'), security: { mode: 'sampling', n: 0 }, minReputation: 0 }];
    for (const e of bad) expect(code(() => apply(s, e))).toBe('ERR_EVENT');
    expect(code(() => apply(s, { type: 'deposit', at: 0, account: hx('a'), amount: 1 }))).toBe('ERR_EVENT'); // time goes back
    expect(code(() => apply(s, { type: 'register', at: 1e9, node: hx('poor'), collateral: P.minCollateral }))).toBe('ERR_FUNDS');
    expect(code(() => apply(s, { type: 'register', at: 1e9, node: w.nodes[0], collateral: P.minCollateral }))).toBe('ERR_DUPLICATE');
    expect(w.state).toBe(s);
  });
});

describe('sampling', () => {
  const cands = Array.from({ length: 20 }, (_, i) => hx('c', i));
  it('is recomputable from (beacon, request id) and independent of the candidates order', () => {
    const a = sampleNodes(hx('b'), hx('r'), cands, 10);
    expect(sampleNodes(hx('b'), hx('r'), [...cands].reverse(), 10)).toEqual(a);
    expect(new Set(a).size).toBe(10);
    expect(sampleNodes(hx('b2'), hx('r'), cands, 10)).not.toEqual(a);
    expect(sampleNodes(hx('b'), hx('r'), cands.slice(0, 4), 10).length).toBe(4);
  });
  it('picks every node with probability n/m and first positions uniformly (chi-square)', () => {
    const m = 20, n = 3, T = 20_000;
    const first = new Array(m).fill(0);
    const any = new Array(m).fill(0);
    const idx = new Map(cands.map((c, i) => [c, i]));
    for (let t = 0; t < T; t++) {
      const s = sampleNodes(hx('beacon'), hx('req', t), cands, n);
      first[idx.get(s[0])!]++;
      for (const x of s) any[idx.get(x)!]++;
    }
    const chi = (obs: number[], e: number) => obs.reduce((a, o) => a + (o - e) ** 2 / e, 0);
    // 19 degrees of freedom: the 99.9% quantile is 43.8.
    expect(chi(first, T / m)).toBeLessThan(43.8);
    expect(chi(any, (T * n) / m) * (1 - n / m) ** -1).toBeLessThan(43.8 * 1.5);
  });
});

describe('simulator', () => {
  it('P(tampered result settles) = p^n within 3 standard errors, no false disputes, honest nodes win every dispute', () => {
    // Large N: the exact law is hypergeometric, p^n its large-N limit (both checked).
    const r = simulate({ nodes: 1000, sample: 2, byzantine: 300, requests: 6000, seed: 7 });
    expect(r.falseDisputes).toBe(0);
    expect(r.disputesWonByHonest).toBe(r.disputes);
    expect(r.settled).toBe(r.requests);
    expect(Math.abs(r.zVsHypergeometric)).toBeLessThan(3);
    expect(Math.abs(r.zVsPowerLaw)).toBeLessThan(3);
    expect(r.tamperedSettled).toBeGreaterThan(0);
  });
  it('copiers and silent nodes are slashed for timeouts and never settle a tampered result', () => {
    const r = simulate({ nodes: 30, sample: 3, byzantine: 9, requests: 300, behavior: 'mixed', seed: 3 });
    expect(r.timeouts).toBeGreaterThan(0);
    expect(r.settled + r.failed).toBe(r.requests);
    expect(r.falseDisputes).toBe(0);
  });
});

describe('exact amounts', () => {
  const SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1
  /** Eight deposits that bring minted to exactly 2^53 - 1 (each at most 2^50, the event bound). */
  function nearTheTop(): State {
    let state = apply(emptyState(), { type: 'genesis', at: 0, params: P, beacon: hx('beacon'), referees: [] }).state;
    for (let i = 0; i < 7; i++) state = apply(state, { type: 'deposit', at: 1, account: hx('rich', i), amount: 2 ** 50 }).state;
    return apply(state, { type: 'deposit', at: 1, account: hx('rich', 7), amount: 2 ** 50 - 1 }).state;
  }

  it('a deposit that would take minted past 2^53-1 is refused; every amount stays exact', () => {
    const state = nearTheTop();
    expect(state.minted).toBe(SAFE);
    expect(auditAmounts(state)).toEqual([]);
    // Before, these were accepted and minted rounded (2^53 - 1 + 2 is 2^53 in doubles).
    for (const amount of [1, 2, 2 ** 50]) {
      expect(code(() => apply(state, { type: 'deposit', at: 2, account: hx('late'), amount }))).toBe('ERR_RANGE');
    }
    expect(state.minted).toBe(SAFE);
    expect(state.accounts[hx('late')]).toBeUndefined();
    // An escrow beyond the exact range is refused by name, not computed in rounded doubles.
    expect(code(() => escrowFor(P, 2 ** 50, 64))).toBe('ERR_RANGE');
    expect(escrowFor(P, 100, 5)).toBe(Math.ceil(550 * 1.01));
  });

  it('the audit catches the drift the old rules let through, which replaying the log could not', () => {
    // What the old rules made of one more deposit of 2: the account exact, minted rounded.
    const state = nearTheTop();
    const drifted: State = { ...state, accounts: { ...state.accounts, [hx('late')]: 2 }, minted: state.minted + 2 };
    expect(drifted.minted).toBe(2 ** 53); // not 2^53 + 1
    expect(auditAmounts(drifted).join('\n')).toMatch(/minted is 9007199254740992, not a safe[\s\S]*add up to 9007199254740993, but minted is 9007199254740992/);
    // A balance moved without its counterpart (a rounding in a sum) is caught too.
    expect(auditAmounts({ ...state, treasury: 1 })).toEqual([`balances, collateral, escrow, reward pools and treasury add up to ${BigInt(SAFE) + 1n}, but minted is ${SAFE}`]);
    expect(auditAmounts({ ...state, treasury: 0.5 })[0]).toMatch(/treasury is 0.5, not a safe non-negative integer/);
  });

  it('Ledger.verify fails on a database the old rules wrote past 2^53, where replay and stored state agreed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-exact-'));
    try {
      const file = join(dir, 'l.db');
      let l = Ledger.open(file);
      for (let i = 0; i < 7; i++) l.mint(hx('rich', i), 2 ** 50);
      l.mint(hx('rich', 7), 2 ** 50 - 1);
      expect(l.state.minted).toBe(SAFE);
      expect(code(() => l.mint(hx('late'), 2))).toBe('ERR_RANGE');
      expect(l.verify()).toBe(true);
      // The rows the old rules wrote for that deposit: the event, the exact balance, minted rounded.
      const { seq, time } = l.state;
      const event = { type: 'deposit', at: time + 1, account: hx('late'), amount: 2 };
      l.db.prepare('INSERT INTO events (seq, at, body, effects) VALUES (?, ?, ?, ?)').run(seq, event.at, JSON.stringify(event), '[]');
      l.db.prepare('INSERT OR REPLACE INTO rows (tbl, id, body) VALUES (?, ?, ?)').run('accounts', hx('late'), '2');
      const meta = l.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
      meta.run('minted', JSON.stringify(SAFE + 2));
      meta.run('seq', JSON.stringify(seq + 1));
      meta.run('time', JSON.stringify(event.at));
      l.close();
      l = Ledger.open(file);
      expect(l.state.minted).toBe(2 ** 53);
      expect(auditAmounts(l.state).length).toBeGreaterThan(0);
      expect(l.verify()).toBe(false);
      l.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
