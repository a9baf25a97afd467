/**
 * The protocol's rules as a state machine: `applyInPlace(state, event)` updates the state and
 * returns the effects, and touches nothing else: no clock (events carry `at`), no randomness
 * (events carry `entropy`), no I/O. Its cost does not grow with the number of nodes, accounts or
 * requests: only the records an event touches are written (each touched record is replaced by a
 * copy, so records are immutable values and an unchanged record keeps its identity), and every
 * write is journaled, so an event the rules refuse throws an AtomaError after undoing its writes:
 * it changes nothing. `apply(state, event)` is the pure form (the input state is never modified;
 * it copies the tables an event writes, O(size of those tables)). Every ledger (embedded SQLite,
 * service, simulator, Sui mirror) runs these same rules. docs/protocol.md describes them in prose.
 */
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { commitment } from './commitment.js';
import { DEFAULT_PARAMS, type Params } from './params.js';
import { sampleSorted } from './sampling.js';
import { interiorHash, splitPoint } from './trace.js';
import type { Effect, Event, Hex32, KeyRecord, NodeRecord, RequestRecord, Side, Slot, State, TaskRecord, Transition } from './types.js';
import { validateEvent } from './validate.js';

export const BEACON_CONTEXT = 'atoma-node 2026-11 ledger beacon v1';

/** Published keys kept per node: rotation is daily, so 8 covers a week of sealed-before-rotation
 *  lookups while a node cannot grow the state without bound. The oldest is dropped first. */
export const MAX_KEYS_PER_NODE = 8;

/** The state before genesis: no params yet. */
export function emptyState(): State {
  return { params: { ...DEFAULT_PARAMS }, seq: 0, time: 0, beacon: '0'.repeat(64), treasury: 0, minted: 0, accounts: {}, nodes: {}, tasks: {}, requests: {}, keys: {}, referees: [] };
}

/** beacon' = BLAKE3-derive-key(BEACON_CONTEXT, beacon || entropy): each draw of fresh entropy advances the chain. */
export function nextBeacon(beacon: Hex32, entropy: Hex32): Hex32 {
  return blake3(Buffer.from(beacon + entropy, 'hex'), { context: BEACON_CONTEXT }).toString('hex');
}

/** amount * bps / 10000, exactly (BigInt: amounts reach 2^50), rounded down or up. */
export function bpsOf(amount: number, bps: number, roundUp = false): number {
  const n = amount * bps;
  if (Number.isSafeInteger(n)) {
    // Exact in doubles below 2^53: n - n % 10000 is a multiple of 10000, so the division is exact.
    const r = n % 10_000;
    return (n - r) / 10_000 + (roundUp && r !== 0 ? 1 : 0);
  }
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
  const escrow = total + bpsOf(total, params.protocolFeeBps, true);
  // maxPrice up to 2^50 times n up to 1024 leaves the exact range: no account could pay it anyway.
  if (!Number.isSafeInteger(escrow)) fail('ERR_RANGE', `escrow for ${n} nodes at maxPrice ${maxPrice} is beyond 2^53-1`);
  return escrow;
}

/**
 * The nodes of a table in id order, kept per nodes table object: ids, their current records, each
 * id's position, and per task (once asked for) the price each node asks (undefined: not
 * subscribed). Node ids are only ever added (by `register`), so a request's draw is one pass over
 * flat arrays: no sort, no keyed lookup per node. `Draft.put` keeps it in step with every write.
 */
interface NodeIndex {
  ids: string[];
  recs: NodeRecord[];
  at: Map<string, number>;
  /** Columns of plain doubles (the loop over them is what a draw costs). NaN: not subscribed. */
  reputation: number[];
  collateral: number[];
  prices: Map<string, number[]>;
}
const nodeIndexOf = new WeakMap<object, NodeIndex>();

function nodeIndex(nodes: State['nodes']): NodeIndex {
  let x = nodeIndexOf.get(nodes);
  if (!x) {
    const ids = Object.keys(nodes).sort();
    const recs = ids.map((id) => nodes[id]);
    x = { ids, recs, at: new Map(ids.map((id, i) => [id, i])), reputation: recs.map((n) => n.reputation), collateral: recs.map((n) => n.collateral), prices: new Map() };
    nodeIndexOf.set(nodes, x);
  }
  return x;
}

function pricesFor(x: NodeIndex, task: Hex32): number[] {
  let p = x.prices.get(task);
  if (!p) x.prices.set(task, (p = x.recs.map((n) => n.subscriptions[task] ?? NaN)));
  return p;
}

/**
 * Keeps a table's index (when built) in step with a node record written to it; `prev` is the
 * record it replaces. Only the tasks either record subscribes to can change price, and a node
 * subscribes to few, so this costs O(its subscriptions).
 */
function indexNode(nodes: State['nodes'], n: NodeRecord, prev: NodeRecord | undefined): void {
  const x = nodeIndexOf.get(nodes);
  if (!x) return;
  const i = x.at.get(n.id);
  if (i !== undefined) {
    x.recs[i] = n;
    x.reputation[i] = n.reputation;
    x.collateral[i] = n.collateral;
    if (x.prices.size > 0) {
      if (prev) for (const task in prev.subscriptions) {
        const p = x.prices.get(task);
        if (p) p[i] = n.subscriptions[task] ?? NaN;
      }
      for (const task in n.subscriptions) {
        const p = x.prices.get(task);
        if (p) p[i] = n.subscriptions[task] ?? NaN;
      }
    }
    return;
  }
  // A new node (register: rare), so rebuilding the positions is fine.
  let lo = 0;
  let hi = x.ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x.ids[mid] < n.id) lo = mid + 1;
    else hi = mid;
  }
  x.ids.splice(lo, 0, n.id);
  x.recs.splice(lo, 0, n);
  x.reputation.splice(lo, 0, n.reputation);
  x.collateral.splice(lo, 0, n.collateral);
  for (const [task, p] of x.prices) p.splice(lo, 0, n.subscriptions[task] ?? NaN);
  for (let j = lo; j < x.ids.length; j++) x.at.set(x.ids[j], j);
}

/** Nodes that may serve a request, sorted by id: subscribed at a price <= maxPrice, enough reputation and collateral. */
export function eligibleNodes(state: State, task: TaskRecord, maxPrice: number, exclude: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const x = nodeIndex(state.nodes);
  const { ids, reputation, collateral } = x;
  const prices = pricesFor(x, task.id);
  const minReputation = task.minReputation;
  const minCollateral = state.params.minCollateral;
  const excluding = exclude.size > 0;
  for (let i = 0; i < ids.length; i++) {
    // Written so that NaN (not subscribed) fails: !(NaN <= x) is true.
    if (!(prices[i] <= maxPrice) || reputation[i] < minReputation || collateral[i] < minCollateral) continue;
    if (excluding && exclude.has(ids[i])) continue;
    out.push(ids[i]);
  }
  return out;
}

function sideKey(s: Slot): string {
  return `${s.outputDigest}:${s.traceRoot}:${s.traceLeaves}`;
}

type TableName = 'accounts' | 'nodes' | 'tasks' | 'requests' | 'keys';
const FIELDS = ['params', 'seq', 'time', 'beacon', 'treasury', 'minted', 'accounts', 'nodes', 'tasks', 'requests', 'keys', 'referees'] as const;

/** A row one event wrote: the ledger stores exactly these (a missing row was deleted). */
export interface Change { table: TableName; id: Hex32 }

/** What `applyInPlace` did: the effects, the rows written, and how to take it back. */
export interface Applied {
  effects: Effect[];
  changes: Change[];
  /** Restores the state as it was before this event (call before any later event is applied). */
  undo(): void;
}

interface Entry { table: TableName; id: Hex32; had: boolean; old: unknown }

/**
 * One event's writes. In place: the state's tables are written directly and every row write is
 * journaled with the value it replaced (undo replays the journal backwards). Copy mode (the pure
 * `apply`): the state object and each written table are copied first, as the rules always did.
 * Either way a touched record is replaced by a copy made once per event, never changed in place.
 */
class Draft {
  readonly s: State;
  readonly effects: Effect[] = [];
  /** Every row write in order, with the value it replaced (a row may appear more than once). */
  readonly journal: Entry[] = [];
  /** Records made by this event (few: a list is cheaper than a set). */
  private readonly fresh: object[] = [];
  private copiedTables?: Set<TableName>;
  private readonly saved: Pick<State, (typeof FIELDS)[number]>;
  constructor(base: State, readonly at: number, private readonly inPlace: boolean) {
    this.s = inPlace ? base : { ...base };
    const { params, seq, time, beacon, treasury, minted, accounts, nodes, tasks, requests, keys, referees } = base;
    this.saved = { params, seq, time, beacon, treasury, minted, accounts, nodes, tasks, requests, keys, referees };
  }
  get p(): Params {
    return this.s.params;
  }
  private table<K extends TableName>(name: K): State[K] {
    if (!this.inPlace && !(this.copiedTables ??= new Set()).has(name)) {
      this.copiedTables.add(name);
      // A for-in copy: several times faster than spread on large id-keyed (dictionary-mode) objects.
      const from = this.s[name] as Record<string, unknown>;
      const to: Record<string, unknown> = {};
      for (const k in from) to[k] = from[k];
      (this.s as unknown as Record<string, unknown>)[name] = to;
    }
    return this.s[name];
  }
  /** Writes (or, with undefined, deletes) one row, journaling the value it replaces. */
  private put(name: TableName, id: Hex32, v: unknown): void {
    const t = this.table(name) as Record<string, unknown>;
    const old = t[id];
    this.journal.push({ table: name, id, had: old !== undefined, old });
    if (v === undefined) delete t[id];
    else {
      t[id] = v;
      if (name === 'nodes') indexNode(t as State['nodes'], v as NodeRecord, old as NodeRecord | undefined);
    }
  }
  /** Takes back every write (in place mode): rows, then the top-level fields. */
  undo(): void {
    // Backwards, so a row written twice ends with the value it had before the event.
    for (let i = this.journal.length - 1; i >= 0; i--) {
      const x = this.journal[i];
      const t = this.s[x.table] as Record<string, unknown>;
      if (x.had) {
        const cur = t[x.id];
        t[x.id] = x.old;
        if (x.table === 'nodes') indexNode(t as State['nodes'], x.old as NodeRecord, cur as NodeRecord);
      } else {
        delete t[x.id];
        // A node added by this event: the table's index is rebuilt on next use.
        if (x.table === 'nodes') nodeIndexOf.delete(t);
      }
    }
    Object.assign(this.s, this.saved);
  }
  /** A node record may change after it was written (subscribe adds a price): bring the index up to date. */
  reindex(): void {
    for (const x of this.journal) if (x.table === 'nodes') indexNode(this.s.nodes, this.s.nodes[x.id], x.old as NodeRecord | undefined);
  }
  changes(): Change[] {
    const seen = new Set<string>();
    const out: Change[] = [];
    for (const { table, id } of this.journal) {
      if (seen.has(table + id)) continue;
      seen.add(table + id);
      out.push({ table, id });
    }
    return out;
  }
  balance(id: Hex32): number {
    return this.s.accounts[id] ?? 0;
  }
  credit(id: Hex32, amount: number): void {
    const v = this.balance(id) + amount;
    if (!Number.isSafeInteger(v)) fail('ERR_RANGE', `account ${id} would exceed 2^53`);
    this.put('accounts', id, v);
  }
  debit(id: Hex32, amount: number, what: string): void {
    const have = this.balance(id);
    if (have < amount) fail('ERR_FUNDS', `${what}: account ${id} holds ${have}, needs ${amount}`);
    this.put('accounts', id, have - amount);
  }
  node(id: Hex32): NodeRecord {
    const n = this.s.nodes[id];
    if (!n) fail('ERR_NOT_FOUND', `no node ${id}`);
    if (this.fresh.includes(n)) return n;
    const c = { ...n, subscriptions: { ...n.subscriptions } };
    this.setNode(c);
    return c;
  }
  setNode(n: NodeRecord): void {
    this.fresh.push(n);
    this.put('nodes', n.id, n);
  }
  setTask(t: TaskRecord): void {
    this.put('tasks', t.id, t);
  }
  /** Replaces a node's key list (a new array: lists are immutable values like records). */
  setKeys(node: Hex32, list: KeyRecord[]): void {
    this.put('keys', node, list);
  }
  request(id: Hex32): RequestRecord {
    const r = this.s.requests[id];
    if (!r) fail('ERR_NOT_FOUND', `no open request ${id}`);
    if (this.fresh.includes(r)) return r;
    const c: RequestRecord = {
      ...r, slots: r.slots.map((s) => ({ ...s })), drawn: [...r.drawn], challengers: [...r.challengers], losers: [...r.losers],
      dispute: r.dispute && { ...r.dispute, agreed: [...r.dispute.agreed] },
    };
    this.setRequest(c);
    return c;
  }
  setRequest(r: RequestRecord): void {
    this.fresh.push(r);
    this.put('requests', r.id, r);
  }
  closeRequest(id: Hex32): void {
    this.put('requests', id, undefined);
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
 * The next state and effects for one event, leaving `state` as it was (pure). Throws an
 * AtomaError when the event is malformed or the rules refuse it. Costs a copy of each table the
 * event writes; a ledger applying a long log uses `applyInPlace`.
 *
 * @example
 * let state = emptyState();
 * ({ state } = apply(state, { type: 'genesis', at: 0, params: DEFAULT_PARAMS, beacon }));
 * const { state: next, effects } = apply(state, { type: 'deposit', at: 1, account, amount: 10 });
 */
export function apply(state: State, input: Event | unknown): Transition {
  const d = run(state, input, false);
  return { state: d.s, effects: d.effects };
}

/**
 * Applies one event to `state` itself, in time independent of the size of its tables. A refused
 * event (AtomaError) leaves the state exactly as it was; a later failure of the caller (a
 * database write) can take an applied event back with `undo`. Records are never changed in
 * place: a touched record is replaced, so references to old records stay valid snapshots. The
 * tables themselves are written, so `state` must not share them with a state kept elsewhere
 * (the pure `apply` returns states that share unwritten tables with their input).
 *
 * @example
 * const state = emptyState();
 * applyInPlace(state, { type: 'genesis', at: 0, params: DEFAULT_PARAMS, beacon });
 * const { effects, changes, undo } = applyInPlace(state, { type: 'deposit', at: 1, account, amount: 10 });
 */
export function applyInPlace(state: State, input: Event | unknown): Applied {
  const d = run(state, input, true);
  return { effects: d.effects, get changes() { return d.changes(); }, undo: () => d.undo() };
}

function run(state: State, input: unknown, inPlace: boolean): Draft {
  const e = validateEvent(input);
  if (e.type === 'genesis') {
    if (state.seq !== 0) fail('ERR_PHASE', 'genesis must be the first event');
  } else {
    if (state.seq === 0) fail('ERR_PHASE', 'the first event must be genesis');
    if (e.at < state.time) fail('ERR_EVENT', `event time ${e.at} is before the ledger time ${state.time}`);
  }
  const d = new Draft(state, e.at, inPlace);
  try {
    if (e.type === 'genesis') {
      Object.assign(d.s, emptyState(), { params: { ...e.params }, beacon: e.beacon, referees: [...e.referees] });
      // Rows of the old (empty) tables are dropped with them: journal none, restore the tables on undo.
    } else {
      handle(d, e);
      d.reindex();
    }
    d.s.seq = state.seq + 1;
    d.s.time = e.at;
  } catch (err) {
    if (inPlace) d.undo();
    throw err;
  }
  return d;
}

function handle(d: Draft, e: Event): void {
  const s = d.s;
  switch (e.type) {
    case 'genesis':
      return;
    case 'deposit': {
      // The one way money enters: bounding the total bounds every amount (accounting.ts).
      const minted = s.minted + e.amount;
      if (!Number.isSafeInteger(minted)) fail('ERR_RANGE', `deposit of ${e.amount}: the total minted would pass 2^53-1 (${s.minted} minted so far), beyond exact integer amounts`);
      d.credit(e.account, e.amount);
      s.minted = minted;
      return;
    }
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
    case 'publishKey': {
      // Only a registered node publishes: a key is only worth sealing to if its owner has collateral at stake.
      if (!s.nodes[e.node]) fail('ERR_NOT_FOUND', `no node ${e.node}: only a registered node may publish a key`);
      const old = s.keys[e.node] ?? [];
      if (old.some((k) => k.keyId === e.keyId)) fail('ERR_DUPLICATE', `node ${e.node} has already published key ${e.keyId}`);
      const rec: KeyRecord = { keyId: e.keyId, publicKey: e.publicKey, notBefore: e.notBefore, notAfter: e.notAfter, publishedAt: e.at };
      if (e.attestation !== undefined) rec.attestation = e.attestation;
      d.setKeys(e.node, [...old, rec].slice(-MAX_KEYS_PER_NODE));
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
      if (commitment(e.outputDigest, e.traceRoot, e.traceLeaves, e.node, e.salt) !== slot.commitment) {
        fail('ERR_MISMATCH', `reveal does not open node ${e.node}'s commitment (outputDigest, traceRoot, traceLeaves and salt must be the committed ones)`);
      }
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
  const nodes = sampleSorted(beacon, e.request, eligible, n, 0);
  const deadline = d.at + d.p.commitMs;
  d.setRequest({
    id: e.request, task: task.id, client: e.client, maxPrice: e.maxPrice, escrow, input: e.input, beacon, requested: want,
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
  // The referee is the court: only a key genesis named may judge (its signature is checked on admission).
  if (!d.s.referees.includes(e.referee)) fail('ERR_NOT_REFEREE', `reexecuted: ${e.referee} is not a referee named by genesis`);
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
    const [node] = sampleSorted(r.beacon, r.id, candidates, 1, r.replacements);
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
