/**
 * The protocol's rules as a pure state machine: `apply(state, event)` returns the next state and
 * the effects, and touches nothing else: no clock (events carry `at`), no randomness (events
 * carry `entropy`), no I/O. The input state is never modified (copy on write: unchanged records
 * keep their identity, which the SQLite ledger uses to write only what changed). An event the
 * rules refuse throws an AtomaError and changes nothing. Every ledger (embedded SQLite, service,
 * simulator, Sui mirror) runs these same rules. docs/protocol.md describes them in prose.
 */
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { commitment } from './commitment.js';
import { DEFAULT_PARAMS, type Params } from './params.js';
import { sampleNodes } from './sampling.js';
import { interiorHash, splitPoint } from './trace.js';
import type { Effect, Event, Hex32, NodeRecord, RequestRecord, Side, Slot, State, TaskRecord, Transition } from './types.js';
import { validateEvent } from './validate.js';

export const BEACON_CONTEXT = 'atoma-node 2026-11 ledger beacon v1';

/** The state before genesis: no params yet. */
export function emptyState(): State {
  return { params: { ...DEFAULT_PARAMS }, seq: 0, time: 0, beacon: '0'.repeat(64), treasury: 0, minted: 0, accounts: {}, nodes: {}, tasks: {}, requests: {} };
}

/** beacon' = BLAKE3-derive-key(BEACON_CONTEXT, beacon || entropy): each draw of fresh entropy advances the chain. */
export function nextBeacon(beacon: Hex32, entropy: Hex32): Hex32 {
  return blake3(Buffer.from(beacon + entropy, 'hex'), { context: BEACON_CONTEXT }).toString('hex');
}

/** amount * bps / 10000, exactly (BigInt: amounts reach 2^50), rounded down or up. */
export function bpsOf(amount: number, bps: number, roundUp = false): number {
  const p = BigInt(amount) * BigInt(bps);
  const q = p / 10_000n + (roundUp && p % 10_000n !== 0n ? 1n : 0n);
  return Number(q);
}

/** What one node in a given slot earns: its price, plus the attester surcharge unless it is the primary. */
export function payment(params: Params, price: number, primary: boolean): number {
  return primary ? price : price + bpsOf(price, params.attesterSurchargeBps, true);
}

/** The escrow a request locks: n attester-priced slots at maxPrice plus the protocol fee on them. */
export function escrowFor(params: Params, maxPrice: number, n: number): number {
  const total = payment(params, maxPrice, false) * n;
  return total + bpsOf(total, params.protocolFeeBps, true);
}

/** Nodes that may serve a request: subscribed at a price <= maxPrice, enough reputation and collateral. */
export function eligibleNodes(state: State, task: TaskRecord, maxPrice: number, exclude: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const id in state.nodes) {
    const n = state.nodes[id];
    const price = n.subscriptions[task.id];
    if (price === undefined || price > maxPrice || exclude.has(id)) continue;
    if (n.reputation < task.minReputation || n.collateral < state.params.minCollateral) continue;
    out.push(id);
  }
  return out;
}

function sideKey(s: Slot): string {
  return `${s.outputDigest}:${s.traceRoot}:${s.traceLeaves}`;
}

/** A copy-on-write view of the state for one event. */
class Draft {
  readonly s: State;
  readonly effects: Effect[] = [];
  private readonly copied = new Set<string>();
  constructor(private readonly base: State, readonly at: number) {
    this.s = { ...base };
  }
  get p(): Params {
    return this.s.params;
  }
  private table<K extends 'accounts' | 'nodes' | 'tasks' | 'requests'>(name: K): State[K] {
    if (!this.copied.has(name)) {
      this.copied.add(name);
      // A for-in copy: several times faster than spread on large id-keyed (dictionary-mode) objects.
      const from = this.base[name] as Record<string, unknown>;
      const to: Record<string, unknown> = {};
      for (const k in from) to[k] = from[k];
      (this.s as unknown as Record<string, unknown>)[name] = to;
    }
    return this.s[name];
  }
  balance(id: Hex32): number {
    return this.s.accounts[id] ?? 0;
  }
  credit(id: Hex32, amount: number): void {
    const v = this.balance(id) + amount;
    if (!Number.isSafeInteger(v)) fail('ERR_RANGE', `account ${id} would exceed 2^53`);
    this.table('accounts')[id] = v;
  }
  debit(id: Hex32, amount: number, what: string): void {
    const have = this.balance(id);
    if (have < amount) fail('ERR_FUNDS', `${what}: account ${id} holds ${have}, needs ${amount}`);
    this.table('accounts')[id] = have - amount;
  }
  node(id: Hex32): NodeRecord {
    const n = this.s.nodes[id];
    if (!n) fail('ERR_NOT_FOUND', `no node ${id}`);
    if (!this.copied.has(`n:${id}`)) {
      this.copied.add(`n:${id}`);
      const c = { ...n, subscriptions: { ...n.subscriptions } };
      this.table('nodes')[id] = c;
      return c;
    }
    return n;
  }
  setNode(n: NodeRecord): void {
    this.copied.add(`n:${n.id}`);
    this.table('nodes')[n.id] = n;
  }
  setTask(t: TaskRecord): void {
    this.table('tasks')[t.id] = t;
  }
  request(id: Hex32): RequestRecord {
    const r = this.s.requests[id];
    if (!r) fail('ERR_NOT_FOUND', `no open request ${id}`);
    if (!this.copied.has(`r:${id}`)) {
      this.copied.add(`r:${id}`);
      const c: RequestRecord = {
        ...r, slots: r.slots.map((s) => ({ ...s })), drawn: [...r.drawn], challengers: [...r.challengers], losers: [...r.losers],
        dispute: r.dispute && { ...r.dispute, agreed: [...r.dispute.agreed] },
      };
      this.table('requests')[id] = c;
      return c;
    }
    return r;
  }
  setRequest(r: RequestRecord): void {
    this.copied.add(`r:${r.id}`);
    this.table('requests')[r.id] = r;
  }
  closeRequest(id: Hex32): void {
    delete this.table('requests')[id];
  }
  changeReputation(n: NodeRecord, delta: number): void {
    n.reputation = Math.max(0, Math.min(this.p.maxReputation, n.reputation + delta));
  }
  /** Slash bps of a node's collateral; returns the amount taken. */
  slash(nodeId: Hex32, bps: number, reason: 'timeout' | 'dispute', request: Hex32): number {
    const n = this.node(nodeId);
    const amount = bpsOf(n.collateral, bps);
    n.collateral -= amount;
    if (reason === 'timeout') {
      n.timeouts++;
      this.changeReputation(n, -this.p.reputationTimeout);
    } else {
      n.disputesLost++;
      this.changeReputation(n, -this.p.reputationDispute);
    }
    this.effects.push({ type: 'slashed', node: nodeId, amount, reason, request });
    return amount;
  }
}

/**
 * The next state and effects for one event. Throws an AtomaError (the state is unchanged) when
 * the event is malformed or the rules refuse it.
 *
 * @example
 * let state = emptyState();
 * ({ state } = apply(state, { type: 'genesis', at: 0, params: DEFAULT_PARAMS, beacon }));
 * const { state: next, effects } = apply(state, { type: 'deposit', at: 1, account, amount: 10 });
 */
export function apply(state: State, input: Event | unknown): Transition {
  const e = validateEvent(input);
  if (e.type === 'genesis') {
    if (state.seq !== 0) fail('ERR_PHASE', 'genesis must be the first event');
    return { state: { ...emptyState(), params: { ...e.params }, beacon: e.beacon, time: e.at, seq: 1 }, effects: [] };
  }
  if (state.seq === 0) fail('ERR_PHASE', 'the first event must be genesis');
  if (e.at < state.time) fail('ERR_EVENT', `event time ${e.at} is before the ledger time ${state.time}`);
  const d = new Draft(state, e.at);
  handle(d, e);
  d.s.seq = state.seq + 1;
  d.s.time = e.at;
  return { state: d.s, effects: d.effects };
}

function handle(d: Draft, e: Event): void {
  const s = d.s;
  switch (e.type) {
    case 'genesis':
      return;
    case 'deposit':
      d.credit(e.account, e.amount);
      s.minted += e.amount;
      return;
    case 'register': {
      if (s.nodes[e.node]) fail('ERR_DUPLICATE', `node ${e.node} is already registered`);
      if (e.collateral < d.p.minCollateral) fail('ERR_FUNDS', `collateral ${e.collateral} is below the minimum ${d.p.minCollateral}`);
      d.debit(e.node, e.collateral, 'register');
      d.setNode({ id: e.node, collateral: e.collateral, reputation: d.p.initialReputation, registeredAt: e.at, subscriptions: {}, settled: 0, timeouts: 0, disputesLost: 0, disputesWon: 0 });
      return;
    }
    case 'addCollateral': {
      const n = d.node(e.node);
      d.debit(e.node, e.amount, 'addCollateral');
      n.collateral += e.amount;
      return;
    }
    case 'createTask': {
      if (s.tasks[e.task]) fail('ERR_DUPLICATE', `task ${e.task} exists`);
      if (e.security.mode === 'sampling' && e.security.n > d.p.maxSampleSize) fail('ERR_EVENT', `createTask.security.n is above maxSampleSize ${d.p.maxSampleSize}`);
      d.setTask({ id: e.task, creator: e.creator, kind: e.kind, digest: e.digest, security: e.security, minReputation: e.minReputation, createdAt: e.at });
      return;
    }
    case 'subscribe': {
      if (!s.tasks[e.task]) fail('ERR_NOT_FOUND', `no task ${e.task}`);
      d.node(e.node).subscriptions[e.task] = e.price;
      return;
    }
    case 'unsubscribe': {
      const n = d.node(e.node);
      if (n.subscriptions[e.task] === undefined) fail('ERR_NOT_FOUND', `node ${e.node} is not subscribed to task ${e.task}`);
      delete n.subscriptions[e.task];
      return;
    }
    case 'beacon':
      s.beacon = nextBeacon(s.beacon, e.entropy);
      return;
    case 'request':
      return openRequest(d, e);
    case 'commit': {
      const r = d.request(e.request);
      const slot = ownSlot(r, e.node);
      if (slot.status !== 'committing') fail('ERR_DUPLICATE', `node ${e.node} has already committed to request ${r.id}`);
      if (d.at > slot.deadline) fail('ERR_PHASE', `commit deadline ${slot.deadline} has passed`);
      slot.commitment = e.commitment;
      slot.status = 'committed';
      advance(d, r);
      return;
    }
    case 'reveal': {
      const r = d.request(e.request);
      const slot = ownSlot(r, e.node);
      if (r.phase !== 'reveal') fail('ERR_PHASE', `request ${r.id} is in its ${r.phase} phase, not reveal`);
      if (slot.status !== 'committed') fail('ERR_DUPLICATE', `node ${e.node} has already revealed for request ${r.id}`);
      if (d.at > slot.deadline) fail('ERR_PHASE', `reveal deadline ${slot.deadline} has passed`);
      if (e.traceLeaves > d.p.maxTraceLeaves) fail('ERR_EVENT', `reveal.traceLeaves is above maxTraceLeaves ${d.p.maxTraceLeaves}`);
      if (commitment(e.outputDigest, e.traceRoot, e.node, e.salt) !== slot.commitment) fail('ERR_MISMATCH', `reveal does not open node ${e.node}'s commitment`);
      Object.assign(slot, { outputDigest: e.outputDigest, traceRoot: e.traceRoot, traceLeaves: e.traceLeaves, status: 'revealed' });
      advance(d, r);
      return;
    }
    case 'bisect':
      return bisect(d, e);
    case 'reexecuted':
      return reexecuted(d, e);
    case 'tick':
      for (const id of Object.keys(s.requests)) expire(d, id);
      return;
  }
}

function ownSlot(r: RequestRecord, node: Hex32): Slot {
  const slot = r.slots.find((x) => x.node === node && x.status !== 'dropped');
  if (!slot) fail('ERR_NOT_SAMPLED', `node ${node} is not sampled for request ${r.id}`);
  return slot;
}

function openRequest(d: Draft, e: Extract<Event, { type: 'request' }>): void {
  const s = d.s;
  const task = s.tasks[e.task];
  if (!task) fail('ERR_NOT_FOUND', `no task ${e.task}`);
  if (s.requests[e.request]) fail('ERR_DUPLICATE', `request ${e.request} is open already`);
  const want = task.security.mode === 'none' ? 1 : task.security.n;
  const eligible = eligibleNodes(s, task, e.maxPrice);
  const n = Math.min(want, eligible.length);
  if (n < Math.max(1, e.minNodes)) fail('ERR_NO_NODES', `task ${task.id}: ${eligible.length} eligible nodes at maxPrice ${e.maxPrice}, the request needs ${Math.max(1, Math.min(want, e.minNodes || want))}`);
  const escrow = escrowFor(d.p, e.maxPrice, n);
  d.debit(e.client, escrow, 'request escrow');
  const beacon = nextBeacon(s.beacon, e.entropy);
  s.beacon = beacon;
  const nodes = sampleNodes(beacon, e.request, eligible, n, 0);
  const deadline = d.at + d.p.commitMs;
  d.setRequest({
    id: e.request, task: task.id, client: e.client, maxPrice: e.maxPrice, escrow, beacon, requested: want,
    slots: nodes.map((node) => ({ node, price: s.nodes[node].subscriptions[task.id], status: 'committing', deadline })),
    drawn: nodes, replacements: 0, phase: 'commit', createdAt: d.at, challengers: [], losers: [], rewardPool: 0,
  });
  d.effects.push({ type: 'sampled', request: e.request, nodes, eligible: eligible.length, beacon, deadline });
}

/** Moves a request on after a commit, reveal or timeout: reveal phase, judgement, or failure. */
function advance(d: Draft, r: RequestRecord): void {
  const alive = r.slots.filter((x) => x.status !== 'dropped');
  if (alive.length === 0) return failRequest(d, r, 'every sampled node timed out and no replacement was eligible');
  if (alive.some((x) => x.status === 'committing')) {
    r.phase = 'commit';
    return;
  }
  const waiting = alive.filter((x) => x.status === 'committed');
  if (waiting.length > 0) {
    if (r.phase === 'commit') {
      r.phase = 'reveal';
      const deadline = d.at + d.p.revealMs;
      for (const x of waiting) x.deadline = deadline;
      d.effects.push({ type: 'revealPhase', request: r.id, deadline });
    }
    return;
  }
  // Everyone alive revealed: group identical results, largest group first (ties by key).
  const sides = new Map<string, Side>();
  for (const x of alive) {
    const key = sideKey(x);
    let side = sides.get(key);
    if (!side) sides.set(key, (side = { key, outputDigest: x.outputDigest!, traceRoot: x.traceRoot!, traceLeaves: x.traceLeaves!, nodes: [] }));
    side.nodes.push(x.node);
  }
  const ordered = [...sides.values()].sort((a, b) => b.nodes.length - a.nodes.length || (a.key < b.key ? -1 : 1));
  r.champion = ordered[0];
  r.challengers = ordered.slice(1);
  if (r.challengers.length > 0) r.phase = 'dispute';
  nextDispute(d, r);
}

/** Judges the champion against the next challenger, or settles when none is left. */
function nextDispute(d: Draft, r: RequestRecord): void {
  if (!r.champion) {
    const next = r.challengers.shift();
    if (!next) return failRequest(d, r, 'every side lost its dispute');
    r.champion = next;
  }
  const b = r.challengers.shift();
  if (!b) return settle(d, r, r.champion);
  const a = r.champion;
  const bisectable = a.traceLeaves === b.traceLeaves && a.traceRoot !== b.traceRoot && a.traceLeaves >= 1;
  const mode = bisectable ? 'leaf' : 'full';
  r.dispute = { a, b, stage: 'bisect', mode, lo: 0, hi: a.traceLeaves, rootA: a.traceRoot, rootB: b.traceRoot, agreed: [], deadline: 0, round: 0 };
  d.effects.push({ type: 'disputeOpened', request: r.id, a: a.nodes, b: b.nodes, mode });
  nextRound(d, r);
}

/** Opens the next bisection round, or asks the referee once a single leaf (or the whole run) is left. */
function nextRound(d: Draft, r: RequestRecord): void {
  const x = r.dispute!;
  x.answerA = x.answerB = undefined;
  if (x.mode === 'full' || x.hi - x.lo === 1) {
    x.stage = 'reexecute';
    x.deadline = d.at + d.p.reexecuteMs;
    d.effects.push({ type: 'reexecute', request: r.id, mode: x.mode, leafIndex: x.mode === 'full' ? -1 : x.lo, agreedPrefix: x.agreed, deadline: x.deadline });
    return;
  }
  x.deadline = d.at + d.p.bisectRoundMs;
  d.effects.push({ type: 'bisectRound', request: r.id, lo: x.lo, hi: x.hi, split: x.lo + splitPoint(x.hi - x.lo), deadline: x.deadline });
}

function bisect(d: Draft, e: Extract<Event, { type: 'bisect' }>): void {
  const r = d.request(e.request);
  const x = r.dispute;
  if (r.phase !== 'dispute' || !x || x.stage !== 'bisect') fail('ERR_PHASE', `request ${r.id} is not in a bisection round`);
  if (d.at > x.deadline) fail('ERR_PHASE', `bisection round deadline ${x.deadline} has passed`);
  const side = x.a.nodes.includes(e.node) ? 'A' : x.b.nodes.includes(e.node) ? 'B' : null;
  if (!side) fail('ERR_NOT_SAMPLED', `node ${e.node} is on neither side of the dispute on request ${r.id}`);
  if ((side === 'A' ? x.answerA : x.answerB) !== undefined) fail('ERR_DUPLICATE', `side ${side} has answered this round already`);
  // The answer must hash to the root this side committed to for [lo, hi): it cannot change its story.
  if (interiorHash(e.left, e.right) !== (side === 'A' ? x.rootA : x.rootB)) fail('ERR_MISMATCH', `bisect: children do not hash to side ${side}'s root of [${x.lo}, ${x.hi})`);
  if (side === 'A') x.answerA = [e.left, e.right];
  else x.answerB = [e.left, e.right];
  if (!x.answerA || !x.answerB) return;
  const mid = x.lo + splitPoint(x.hi - x.lo);
  const [la, ra] = x.answerA;
  const [lb, rb] = x.answerB;
  if (la !== lb) {
    x.hi = mid;
    x.rootA = la;
    x.rootB = lb;
  } else {
    // Left halves agree, so the first difference is on the right (the roots differ, so the rights must).
    x.agreed.push({ start: x.lo, end: mid, root: la });
    x.lo = mid;
    x.rootA = ra;
    x.rootB = rb;
  }
  x.round++;
  nextRound(d, r);
}

function reexecuted(d: Draft, e: Extract<Event, { type: 'reexecuted' }>): void {
  const r = d.request(e.request);
  const x = r.dispute;
  if (r.phase !== 'dispute' || !x || x.stage !== 'reexecute') fail('ERR_PHASE', `request ${r.id} is not waiting for a re-execution`);
  if (d.at > x.deadline) fail('ERR_PHASE', `re-execution deadline ${x.deadline} has passed`);
  let aRight: boolean;
  let bRight: boolean;
  if (x.mode === 'leaf') {
    if (e.leafHash === undefined) fail('ERR_EVENT', 'reexecuted: this dispute needs leafHash (leaf mode)');
    aRight = x.rootA === e.leafHash;
    bRight = x.rootB === e.leafHash;
  } else {
    if (e.outputDigest === undefined) fail('ERR_EVENT', 'reexecuted: this dispute needs outputDigest, traceRoot and traceLeaves (full mode)');
    const same = (s: Side) => s.outputDigest === e.outputDigest && s.traceRoot === e.traceRoot && s.traceLeaves === e.traceLeaves;
    aRight = same(x.a);
    bRight = same(x.b);
  }
  resolve(d, r, aRight, bRight, 'referee re-execution');
}

/** Ends the current dispute: losing sides lose disputeSlashBps of their collateral. */
function resolve(d: Draft, r: RequestRecord, aWins: boolean, bWins: boolean, reason: string): void {
  const x = r.dispute!;
  const losers = [...(aWins ? [] : x.a.nodes), ...(bWins ? [] : x.b.nodes)];
  for (const node of losers) {
    const amount = d.slash(node, d.p.disputeSlashBps, 'dispute', r.id);
    const reward = bpsOf(amount, d.p.disputeRewardBps);
    r.rewardPool += reward;
    d.s.treasury += amount - reward;
  }
  r.losers.push(...losers);
  const winner = aWins ? x.a : bWins ? x.b : undefined;
  d.effects.push({ type: 'disputeResolved', request: r.id, winner: winner?.nodes ?? [], losers, leafIndex: x.mode === 'leaf' ? x.lo : -1, reason });
  r.dispute = undefined;
  r.champion = winner;
  nextDispute(d, r);
}

function settle(d: Draft, r: RequestRecord, side: Side): void {
  const winners = side.nodes;
  let total = 0;
  let primary = true;
  for (const slot of r.slots) {
    if (slot.status !== 'revealed' || !winners.includes(slot.node)) continue;
    const amount = payment(d.p, slot.price, primary);
    primary = false;
    total += amount;
    d.credit(slot.node, amount);
    const n = d.node(slot.node);
    n.settled++;
    if (r.losers.length > 0) n.disputesWon++;
    d.changeReputation(n, d.p.reputationSettled);
    d.effects.push({ type: 'paid', node: slot.node, amount, request: r.id });
  }
  const share = Math.floor(r.rewardPool / winners.length);
  if (share > 0) for (const node of winners) {
    d.credit(node, share);
    d.effects.push({ type: 'rewarded', node, amount: share, request: r.id });
  }
  const fee = bpsOf(total, d.p.protocolFeeBps, true);
  d.s.treasury += fee + (r.rewardPool - share * winners.length);
  const charged = total + fee;
  const refunded = r.escrow - charged;
  d.credit(r.client, refunded);
  d.effects.push({ type: 'settled', request: r.id, outputDigest: side.outputDigest, traceRoot: side.traceRoot, nodes: winners, charged, refunded });
  close(d, r, 'settled');
}

function failRequest(d: Draft, r: RequestRecord, reason: string): void {
  d.credit(r.client, r.escrow);
  d.s.treasury += r.rewardPool;
  d.effects.push({ type: 'failed', request: r.id, reason, refunded: r.escrow });
  close(d, r, 'failed');
}

function close(d: Draft, r: RequestRecord, outcome: 'settled' | 'failed'): void {
  d.closeRequest(r.id);
  d.effects.push({ type: 'closed', request: r, outcome, at: d.at });
}

/** Deadlines passed at the tick's time: slash and replace late nodes, end stalled disputes. */
function expire(d: Draft, id: Hex32): void {
  const base = d.s.requests[id];
  const t = d.at;
  if (base.phase === 'dispute') {
    const x = base.dispute!;
    if (t <= x.deadline) return;
    const r = d.request(id);
    if (x.stage === 'bisect') return resolve(d, r, x.answerA !== undefined, x.answerB !== undefined, 'missed a bisection deadline');
    // The referee did not answer: no one can be judged, so no one is slashed and the client gets its money back.
    return failRequest(d, r, 'the referee did not report a re-execution in time');
  }
  const late = (x: Slot) => (base.phase === 'commit' ? x.status === 'committing' : x.status === 'committed') && t > x.deadline;
  if (!base.slots.some(late)) return;
  const r = d.request(id);
  const task = d.s.tasks[r.task];
  for (let i = 0; i < r.slots.length; i++) {
    const slot = r.slots[i];
    if (!late(slot)) continue;
    const amount = d.slash(slot.node, d.p.timeoutSlashBps, 'timeout', r.id);
    d.s.treasury += amount;
    const candidates = eligibleNodes(d.s, task, r.maxPrice, new Set(r.drawn));
    r.replacements++;
    const [node] = sampleNodes(r.beacon, r.id, candidates, 1, r.replacements);
    const deadline = t + d.p.commitMs;
    if (node === undefined) slot.status = 'dropped';
    else {
      r.slots[i] = { node, price: d.s.nodes[node].subscriptions[task.id], status: 'committing', deadline };
      r.drawn.push(node);
    }
    d.effects.push({ type: 'replaced', request: r.id, old: slot.node, node: node ?? null, deadline });
  }
  advance(d, r);
}

/** The earliest deadline of any open request (for a ledger deciding when to tick), or Infinity. */
export function nextDeadline(state: State): number {
  let t = Infinity;
  for (const id in state.requests) {
    const r = state.requests[id];
    if (r.phase === 'dispute') t = Math.min(t, r.dispute!.deadline);
    else for (const x of r.slots) if ((r.phase === 'commit' ? x.status === 'committing' : x.status === 'committed')) t = Math.min(t, x.deadline);
  }
  return t;
}
