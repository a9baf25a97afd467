/**
 * One node's side of the protocol (docs/protocol.md) over any ledger (ledger-port.ts). It follows
 * the event stream and, for the requests that sample it:
 *   sampled / replaced -> fetch the input the request names, check its BLAKE3, execute it on the
 *                         model's engine thread (through the node's bounded queue) or, for a task
 *                         of kind `wasm`, in the WASM sandbox (wasm-tasks.ts), store result and
 *                         salt, then commit BLAKE3(outputDigest || traceRoot || u64le(traceLeaves) || node || salt).
 *                         An input refused for a deterministic reason (refusal.ts) is committed
 *                         as the canonical refusal result, like any other result.
 *   revealPhase        -> reveal (opens the commitment with the stored salt)
 *   bisectRound        -> answer with the two child roots of its own trace
 *   reexecute          -> (a referee node) re-execute the leaf or the whole request, report it
 *   paid / rewarded / slashed naming it -> logged
 *
 * Restart safety: every event's consequences are written to node.db (assignments.ts) in the
 * same transaction that moves the cursor past it, and the actions that follow (execute, commit,
 * reveal, answer) are driven from those rows, not from memory. After kill -9 the next start
 * resumes the stream at the cursor, drops what closed meanwhile, and carries every open row on
 * from its stored state: an unfinished execution is run again (deterministic: same result), a
 * stored result is committed, a commitment is opened with its stored salt.
 *
 * Every event it submits is signed with the node key (the node id on the ledger is its public key).
 *
 * ParticipantHooks are the seams a test network (lib/node/devnet.ts) uses to make a node
 * byzantine (lib/node/byzantine.ts): decline an assignment, replace a result, watch the stream.
 * Without hooks -- always, for `atoma node` -- none of them is consulted.
 */
import { randomBytes } from 'node:crypto';
import { AtomaError } from '../engine/errors.js';
import { merkleLeaf } from '../engine/hash.js';
import { commitment } from '../protocol/commitment.js';
import { Trace } from '../protocol/trace.js';
import type { Dispute, Effect, Event } from '../protocol/types.js';
import { decodeAssignment } from './assignment-input.js';
import { RefusalError, refusalResult, type RefusalCode } from './refusal.js';
import { decodeWasmAssignment, type WasmAssignment } from './wasm-assignment.js';
import type { WasmTasks } from './wasm-tasks.js';
import type { AssignmentRow, AssignmentStore, RefereeJob } from './assignments.js';
import type { EngineOp, OpResult, WireExecution } from './engine.js';
import type { Assignment } from './executor.js';
import type { ClientEvent, LedgerPort, StreamItem } from './ledger-port.js';
import type { Logger } from './log.js';
import { QueueFullError, type JobQueue } from './queue.js';

/** Adds the signer's nonce and signature to an event (lib/protocol/signing.ts signEvent). */
export type EventSigner = (event: ClientEvent) => ClientEvent;

/**
 * Seams for a misbehaving node in a test network (lib/node/byzantine.ts). Each one, when absent,
 * leaves the honest behaviour as it is; the production node (node.ts) passes none.
 */
export interface ParticipantHooks {
  /** Called for every stream item after the node recorded it (e.g. to watch others' commitments). */
  observe?(item: StreamItem): void;
  /** Called when the node is sampled (or a replacement); false: it ignores the assignment (never executes nor commits). */
  accept?(request: string): boolean;
  /** Called with the engine's result; what it returns is stored, committed, revealed and bisected instead. */
  result?(request: string, assignment: Assignment, honest: WireExecution): WireExecution | Promise<WireExecution>;
  /** Told of each execution once its result is stored (a report only: it changes nothing). */
  executed?(request: string, outputDigest: string, ms: number): void;
}

export interface ParticipantOptions {
  port: LedgerPort;
  /** This node's id on the ledger: the node key's raw public key, hex. */
  node: string;
  sign: EventSigner;
  store: AssignmentStore;
  queue: JobQueue;
  /** Ledger task id -> model digest (the engine that runs it): the inference tasks this node subscribed to. */
  tasks: ReadonlyMap<string, string>;
  /** Ledger task id -> WASM module digest: the `wasm` tasks this node subscribed to. */
  wasmTasks?: ReadonlyMap<string, string>;
  /** The node's WASM modules (by digest): run the `wasm` tasks, and a referee's re-executions of them. */
  wasm?: WasmTasks;
  /** Answer `reexecute` effects (the node key must be a referee in the ledger's genesis). */
  referee?: boolean;
  log: Logger;
  /** Pause between tries when the engine queue is full or the ledger is unreachable (ms). */
  retryMs?: number;
  /**
   * Backpressure on the ledger: with this many assignments not yet committed the node
   * unsubscribes (it is no longer sampled), and subscribes again once half of them are done.
   * Default: the queue's capacity. 0: never.
   */
  maxBacklog?: number;
  /** Test networks only (see ParticipantHooks). */
  hooks?: ParticipantHooks;
}

/** Ledger refusals that mean "already done": the action succeeded before (e.g. before a crash). */
const DONE_ALREADY = new Set(['ERR_DUPLICATE']);
/** Transport faults worth another try while the deadline allows. */
const TRANSIENT = new Set(['ERR_IO', 'ERR_LEDGER', 'ECONNREFUSED', 'ECONNRESET']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A referee's leaf answer for a one-leaf result (WASM, refusal): the leaf itself at index 0; past
 * it the correct trace has no leaf, so the answer is a fixed hash no honest side commits to and
 * both sides of such a dispute (each claiming a longer trace) lose.
 */
const NO_LEAF = merkleLeaf('atoma-no-leaf/v1\n').toString('hex');
function onlyLeaf(r: WireExecution, index: number): string {
  return index === 0 && r.leaves.length === 32 ? Buffer.from(r.leaves).toString('hex') : NO_LEAF;
}

/**
 * @example
 * const p = new Participant({ port, node: key.publicKey, sign, store, queue, tasks, log });
 * await p.join({ collateral: 1_000_000, subscriptions: [{ task, digest, price: 10 }] });
 * await p.start();
 * // ... on SIGTERM:
 * await p.stop(30_000);
 */
export class Participant {
  private readonly o: Required<Omit<ParticipantOptions, 'referee' | 'hooks' | 'wasm' | 'wasmTasks'>> & { referee: boolean; hooks?: ParticipantHooks; wasm?: WasmTasks; wasmTasks: ReadonlyMap<string, string> };
  private stopStream: (() => void) | null = null;
  private readonly driving = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly refereeRunning = new Map<string, Promise<void>>();
  private readonly traces = new Map<string, Trace>();
  private stopped = false;
  private draining = false;
  /** Which stream is current: items of a stream that was replaced are ignored. */
  private generation = 0;
  /** Amounts this run saw paid to / slashed from this node (also logged). */
  readonly totals = { paid: 0, rewarded: 0, slashed: 0 };

  /** The subscriptions join() made (task -> price), for backpressure to take back and restore. */
  private subs = new Map<string, number>();
  /** Unsubscribed because of the backlog. */
  private paused = false;
  private subChain: Promise<void> = Promise.resolve();

  constructor(opts: ParticipantOptions) {
    this.o = { referee: false, retryMs: 100, maxBacklog: opts.queue.capacity, ...opts, wasmTasks: opts.wasmTasks ?? new Map() };
  }

  get node(): string {
    return this.o.node;
  }

  private submit(e: ClientEvent) {
    return this.o.port.submit(this.o.sign(e));
  }

  /**
   * Registers (once) and subscribes. A task whose model digest on the ledger differs from the
   * configured one is refused with ERR_DIGEST_MISMATCH before anything is submitted.
   */
  async join(j: { faucet?: number; collateral?: number; subscriptions: { task: string; digest: string; price: number; kind?: 'inference' | 'wasm' }[] }): Promise<void> {
    const { port, log } = this.o;
    const me = this.o.node;
    this.o.store.bindLedger(await port.genesis());
    for (const s of j.subscriptions) {
      const t = await port.get('tasks', s.task);
      if (!t) throw new AtomaError(`the ledger has no task ${s.task}`, 'ERR_NOT_FOUND');
      const kind = s.kind ?? 'inference';
      const what = kind === 'wasm' ? 'module' : 'model';
      if (t.digest !== s.digest) throw new AtomaError(`ledger task ${s.task} runs ${what} ${String(t.digest)}, the config says ${s.digest}`, 'ERR_DIGEST_MISMATCH');
      if (t.kind !== kind) throw new AtomaError(`ledger task ${s.task} is a ${String(t.kind)} task, the config serves it as ${kind}`, 'ERR_NODE_CONFIG');
    }
    const { params } = await port.head();
    let rec = await port.get('nodes', me);
    // A referee that serves no task needs no registration (nor collateral).
    if (!rec && j.subscriptions.length === 0) return;
    if (!rec) {
      const collateral = j.collateral ?? params.minCollateral;
      if (j.faucet) await this.submit({ type: 'deposit', account: me, amount: j.faucet });
      await this.submit({ type: 'register', node: me, collateral });
      log('info', 'registered on the ledger', { node: me, collateral });
      rec = await port.get('nodes', me);
    } else if ((rec.collateral as number) < params.minCollateral) {
      // Slashed below the minimum: not eligible until it bonds again.
      const missing = params.minCollateral - (rec.collateral as number);
      if (j.faucet) await this.submit({ type: 'deposit', account: me, amount: missing });
      await this.submit({ type: 'addCollateral', node: me, amount: missing }).then(
        () => log('info', 'collateral topped up', { amount: missing }),
        (e: Error) => log('warn', 'collateral is below the minimum: this node is not sampled', { collateral: rec!.collateral, min: params.minCollateral, error: e.message }),
      );
    }
    const subs = (rec?.subscriptions ?? {}) as Record<string, number>;
    // A task subscribed by an earlier config but no longer served: being sampled for it would cost collateral.
    for (const task of Object.keys(subs)) {
      if (j.subscriptions.some((s) => s.task === task)) continue;
      await this.submit({ type: 'unsubscribe', node: me, task });
      log('info', 'unsubscribed from a task the config no longer serves', { task });
    }
    for (const s of j.subscriptions) {
      this.subs.set(s.task, s.price);
      if (subs[s.task] !== s.price) await this.submit({ type: 'subscribe', node: me, task: s.task, price: s.price });
      log('info', 'subscribed', { task: s.task, digest: s.digest, price: s.price });
    }
  }

  /** Follows the stream from the stored cursor (the ledger's head on a first start) and resumes open work. */
  async start(): Promise<void> {
    const { store, port, log } = this.o;
    store.bindLedger(await port.genesis());
    let from = store.cursor;
    if (from === null) {
      from = (await port.head()).seq;
      store.startAt(from);
    }
    const open = store.open();
    if (open.length || store.refereeJobs().length) log('info', 'resuming assignments', { open: open.length, referee: store.refereeJobs().length, cursor: from });
    this.follow(from);
    for (const row of open) this.drive(row.request);
    for (const j of store.refereeJobs()) this.refere(j);
  }

  private follow(from: number): void {
    if (this.stopped) return;
    const generation = ++this.generation;
    this.stopStream = this.o.port.stream(from, (item) => {
      if (generation === this.generation) this.onItem(item);
    }, (e) => this.resync(generation, e));
  }

  /** Drops the current stream and follows again from the stored cursor (after a pause). */
  private resync(generation: number, e: Error): void {
    if (this.stopped || generation !== this.generation) return;
    this.generation++;   // items still in flight from the old stream are ignored
    this.o.log('warn', 'ledger stream broke; resuming from the cursor', { error: e.message, cursor: this.o.store.cursor });
    this.stopStream?.();
    setTimeout(() => this.follow(this.o.store.cursor ?? 0), 500).unref();
  }

  /** Records one stream item (one transaction with the cursor), then acts on what it changed. */
  private onItem(item: StreamItem): void {
    const { store, log } = this.o;
    const cursor = store.cursor ?? 0;
    if (this.stopped || item.seq < cursor) return;   // a resumed stream repeats what is stored
    // Never skip an event: a gap (or a write that failed) means reading again from the cursor.
    if (item.seq > cursor) return this.resync(this.generation, new AtomaError(`stream jumped from ${cursor} to ${item.seq}`, 'ERR_LEDGER'));
    const me = this.o.node;
    const ev = item.event as Event & { input?: string };
    const kick = new Set<string>();
    const jobs: RefereeJob[] = [];
    try {
      store.record(item.seq, () => {
        for (const x of item.effects) this.record(ev, x, me, kick, jobs);
      });
    } catch (e) {
      return this.resync(this.generation, e as Error);
    }
    for (const x of item.effects) {
      if ((x.type === 'paid' || x.type === 'rewarded') && x.node === me) {
        this.totals[x.type] += x.amount;
        log('info', x.type, { request: x.request, amount: x.amount });
      } else if (x.type === 'slashed' && x.node === me) {
        this.totals.slashed += x.amount;
        log('warn', 'slashed', { request: x.request, amount: x.amount, reason: x.reason });
      } else if (x.type === 'settled' && store.get(x.request)) log('info', 'settled', { request: x.request, outputDigest: x.outputDigest, nodes: x.nodes.length });
      else if (x.type === 'failed' && store.get(x.request)) log('warn', 'request failed', { request: x.request, reason: x.reason });
    }
    this.o.hooks?.observe?.(item);
    for (const id of kick) this.drive(id);
    for (const j of jobs) this.refere(j);
    if (kick.size) this.backpressure();
  }

  /**
   * Unsubscribes while the backlog (assignments not yet committed) is at maxBacklog, subscribes
   * again at half of it: a busy node stops being sampled instead of missing commit deadlines.
   */
  private backpressure(): void {
    const high = this.o.maxBacklog;
    if (!high || this.draining || this.stopped || this.subs.size === 0) return;
    const c = this.o.store.counts();
    const backlog = (c.assigned ?? 0) + (c.executed ?? 0);
    const me = this.o.node;
    if (!this.paused && backlog >= high) {
      this.paused = true;
      this.o.log('warn', 'backlog full: unsubscribing', { backlog, max: high });
      for (const task of this.subs.keys()) this.resubscribe({ type: 'unsubscribe', node: me, task });
    } else if (this.paused && backlog <= Math.floor(high / 2)) {
      this.paused = false;
      this.o.log('info', 'backlog drained: subscribing again', { backlog });
      for (const [task, price] of this.subs) this.resubscribe({ type: 'subscribe', node: me, task, price });
    }
  }

  /** Subscription changes go out one at a time, in order. */
  private resubscribe(e: ClientEvent): void {
    this.subChain = this.subChain.then(() => this.submit(e).then(() => {}, (err: AtomaError) => {
      if (err.code !== 'ERR_NOT_FOUND') this.o.log('warn', `${e.type} failed`, { task: e.task, error: err.message });
    }));
  }

  /** Whether backpressure has unsubscribed the node. */
  get backpressured(): boolean {
    return this.paused;
  }

  private record(ev: Event & { input?: string }, x: Effect, me: string, kick: Set<string>, jobs: RefereeJob[]): void {
    const { store, log } = this.o;
    switch (x.type) {
      case 'sampled':
      case 'replaced': {
        if (x.type === 'replaced' && x.old === me && store.get(x.request)) {
          store.setState(x.request, 'dropped', 'replaced: a deadline passed');
          log('warn', 'replaced on a request (missed deadline)', { request: x.request });
        }
        const mine = x.type === 'sampled' ? x.nodes.includes(me) : x.node === me;
        if (!mine || this.o.hooks?.accept?.(x.request) === false) return;
        // The request event names task and input; a replacement (tick) reads them from the request record.
        const fromEvent = ev.type === 'request' && ev.request === x.request;
        store.assign(x.request, fromEvent ? ev.task : '', fromEvent ? ev.input ?? null : null, x.deadline);
        log('info', 'assigned', { request: x.request, deadline: x.deadline });
        kick.add(x.request);
        return;
      }
      case 'revealPhase':
        if (store.get(x.request)) { store.revealOpen(x.request, x.deadline); kick.add(x.request); }
        return;
      case 'disputeOpened':
        if ((x.a.includes(me) || x.b.includes(me)) && store.get(x.request)) store.disputeOpened(x.request);
        return;
      case 'bisectRound':
        if (store.get(x.request)?.inDispute) { store.bisectRound(x.request, x.lo, x.hi, x.deadline); kick.add(x.request); }
        return;
      case 'reexecute':
        if (this.o.referee) {
          const j: RefereeJob = { request: x.request, mode: x.mode, leafIndex: x.leafIndex, deadline: x.deadline };
          store.addRefereeJob(j);
          jobs.push(j);
        }
        return;
      case 'closed':
        if (store.get(x.request.id)) store.closed(x.request.id, x.outcome);
        this.traces.delete(x.request.id);
        return;
      default:
    }
  }

  /** Carries one assignment on from its stored state; one driver per request at a time. */
  private drive(id: string): void {
    if (this.stopped) return;
    if (this.driving.has(id)) {
      this.again.add(id);
      return;
    }
    const p = this.steps(id).catch((e: Error) => {
      this.o.log('error', 'assignment step failed', { request: id, error: e.message, code: (e as AtomaError).code });
    }).finally(() => {
      this.driving.delete(id);
      if (this.again.delete(id)) this.drive(id);
      else this.backpressure();
    });
    this.driving.set(id, p);
  }

  private async steps(id: string): Promise<void> {
    const { store } = this.o;
    for (let guard = 0; guard < 16 && !this.stopped; guard++) {
      const row = store.get(id);
      if (!row) return;
      if (row.state === 'assigned') await this.execute(row);
      else if (row.state === 'executed') await this.commit(row);
      else if (row.state === 'committed' && row.revealOpen) await this.reveal(row);
      else if ((row.state === 'revealed' || row.state === 'committed') && row.inDispute && row.bisect) await this.bisect(row);
      else return;
    }
  }

  /** Submits a signed event, trying again on transport faults until `deadline`. */
  private async submitUntil(e: ClientEvent, deadline: number): Promise<'ok' | 'already' | AtomaError> {
    for (;;) {
      try {
        await this.submit(e);
        return 'ok';
      } catch (err) {
        const ae = err instanceof AtomaError ? err : new AtomaError((err as Error).message, 'ERR_IO');
        if (DONE_ALREADY.has(ae.code)) return 'already';
        if (!TRANSIENT.has(ae.code) || Date.now() > deadline || this.stopped) return ae;
        await sleep(this.o.retryMs);
      }
    }
  }

  /** Queues engine work; a full queue is waited out (backpressure) until the deadline. */
  private async onEngine<O extends EngineOp>(model: string, op: O, deadline: number): Promise<OpResult<O>> {
    for (;;) {
      try {
        return await this.o.queue.submitOp(model, op);
      } catch (e) {
        if (!(e instanceof QueueFullError) || Date.now() > deadline) throw e;
        await sleep(this.o.retryMs);
      }
    }
  }

  /** The task and input of a request, from the row or the ledger's record; null once it closed. */
  private async locate(row: { request: string; task: string; input: string | null }): Promise<{ task: string; input: string } | { closed: string }> {
    const rec = await this.o.port.get('requests', row.request);
    if (!rec) return { closed: 'unknown' };
    const closed = rec.closed as { outcome: string } | undefined;
    if (closed) return { closed: closed.outcome };
    const task = row.task || (rec.task as string);
    const input = row.input ?? (rec.input as string | undefined) ?? null;
    if (!input) throw new AtomaError(`request ${row.request} names no input`, 'ERR_EVENT');
    return { task, input };
  }

  private async execute(row: AssignmentRow): Promise<void> {
    const { store, log } = this.o;
    const where = await this.locate(row);
    if ('closed' in where) return store.closed(row.request, where.closed);
    // Back after the commit deadline: the ledger would refuse the commit (and replaces the node).
    if (Date.now() > row.deadline) {
      log('warn', 'commit deadline passed before execution', { request: row.request, deadline: row.deadline });
      return store.setState(row.request, 'dropped', 'the commit deadline passed');
    }
    if (!row.input) store.setInput(row.request, where.input);
    const model = this.o.tasks.get(where.task);
    const module = this.o.wasmTasks.get(where.task);
    if (!model && !module) return store.setState(row.request, 'failed', `not subscribed to task ${where.task}`);
    let result: WireExecution & { refusal?: string };
    const t0 = performance.now();
    try {
      const bytes = await this.fetchInput(where.input, row.deadline);
      result = await this.compute(model ? { kind: 'inference', digest: model } : { kind: 'wasm', digest: module! }, bytes, where.input, row.deadline);
      if (this.o.hooks?.result && model && !result.refusal) result = await this.o.hooks.result(row.request, decodeAssignment(bytes, where.input), result);
    } catch (e) {
      const ae = e as AtomaError;
      // Shutting down, or the ledger unreachable past the deadline: the row stays 'assigned' and the next start runs it.
      if (ae.code === 'ERR_DISPOSED' || ae.code === 'ERR_IO' || e instanceof QueueFullError) throw e;
      // Not a refusal (refusal.ts): a fault of this node's run (timeout, dead worker, limits), not committed.
      log('error', 'assignment failed', { request: row.request, code: ae.code, error: ae.message });
      return store.setState(row.request, 'failed', `${ae.code}: ${ae.message}`);
    }
    // Result and salt are durable before the commitment leaves this process.
    store.executed(row.request, randomBytes(32).toString('hex'), result);
    const ms = Math.round(performance.now() - t0);
    log('info', 'executed', { request: row.request, outputDigest: result.outputDigest, leaves: result.leaves.length / 32, ms, ...(result.refusal ? { refusal: result.refusal } : {}) });
    this.o.hooks?.executed?.(row.request, result.outputDigest, ms);
  }

  /** The request's input bytes; the ledger being unreachable is waited out until the deadline. */
  private async fetchInput(digest: string, deadline: number): Promise<Buffer> {
    for (;;) {
      try {
        return await this.o.port.getInput(digest);
      } catch (e) {
        const code = (e as AtomaError).code ?? (e as { cause?: { code?: string } }).cause?.code ?? 'ERR_IO';
        if (!TRANSIENT.has(code) || Date.now() > deadline || this.stopped) throw e;
        await sleep(this.o.retryMs);
      }
    }
  }

  /**
   * What this node commits to for an input: the engine's or the WASM sandbox's result, or the
   * canonical refusal when the input is refused for a deterministic reason -- it does not decode
   * as an assignment of the task's kind (ERR_EVENT), or the engine's validation or the guest run
   * refuses it (RefusalError). Anything else is thrown: a fault of this run, never committed.
   */
  private async compute(t: { kind: 'inference' | 'wasm'; digest: string }, bytes: Buffer, inputDigest: string, deadline: number): Promise<WireExecution & { refusal?: string }> {
    let decoded;
    try {
      decoded = t.kind === 'wasm' ? decodeWasmAssignment(bytes, inputDigest) : decodeAssignment(bytes, inputDigest);
    } catch (e) {
      if ((e as AtomaError).code === 'ERR_EVENT') return refusalResult('ERR_EVENT');
      throw e;
    }
    try {
      if (t.kind === 'wasm') return await this.onWasm(t.digest, decoded as WasmAssignment, deadline);
      return await this.onEngine(t.digest, { op: 'execute', assignment: decoded as Assignment }, deadline);
    } catch (e) {
      if (e instanceof RefusalError) return refusalResult(e.code as RefusalCode);
      throw e;
    }
  }

  /** Runs a WASM assignment in the sandbox; a full set of running calls is waited out until the deadline. */
  private async onWasm(module: string, a: WasmAssignment, deadline: number): Promise<WireExecution> {
    const wasm = this.o.wasm;
    if (!wasm?.has(module)) throw new AtomaError(`this node has no WASM module ${module}`, 'ERR_NOT_FOUND');
    for (;;) {
      try {
        return await wasm.execute(module, a);
      } catch (e) {
        if (!(e instanceof QueueFullError) || Date.now() > deadline) throw e;
        await sleep(this.o.retryMs);
      }
    }
  }

  private async commit(row: AssignmentRow): Promise<void> {
    const me = this.o.node;
    const c = commitment(row.outputDigest!, row.traceRoot!, row.traceLeaves!, me, row.salt!);
    const r = await this.submitUntil({ type: 'commit', request: row.request, node: me, commitment: c }, row.deadline);
    this.settle(row, r, 'committed', 'commit');
  }

  private async reveal(row: AssignmentRow): Promise<void> {
    const me = this.o.node;
    const r = await this.submitUntil({ type: 'reveal', request: row.request, node: me, outputDigest: row.outputDigest!, traceRoot: row.traceRoot!, traceLeaves: row.traceLeaves!, salt: row.salt! }, row.deadline);
    this.settle(row, r, 'revealed', 'reveal');
  }

  private settle(row: AssignmentRow, r: 'ok' | 'already' | AtomaError, next: 'committed' | 'revealed', what: string): void {
    const { store, log } = this.o;
    if (r === 'ok' || r === 'already') {
      store.setState(row.request, next);
      log('info', `${what} ${r === 'ok' ? 'submitted' : 'was already on the ledger'}`, { request: row.request });
    } else {
      store.setState(row.request, 'dropped', `${what}: ${r.code}: ${r.message}`);
      log('warn', `${what} refused`, { request: row.request, code: r.code, error: r.message });
    }
  }

  private async bisect(row: AssignmentRow): Promise<void> {
    const { lo, hi } = row.bisect!;
    let trace = this.traces.get(row.request);
    if (!trace) {
      const leaves: Buffer[] = [];
      for (let i = 0; i + 32 <= row.leaves!.length; i += 32) leaves.push(row.leaves!.subarray(i, i + 32));
      this.traces.set(row.request, (trace = Trace.fromLeafHashes(leaves)));
    }
    const [left, right] = trace.children(lo, hi);
    const r = await this.submitUntil({ type: 'bisect', request: row.request, node: this.o.node, left, right }, row.deadline);
    this.o.store.bisectAnswered(row.request, lo, hi);
    if (r instanceof AtomaError) this.o.log('warn', 'bisection answer refused', { request: row.request, lo, hi, code: r.code, error: r.message });
  }

  /** A referee's re-execution: one leaf, or the whole request when the traces cannot be bisected. */
  private refere(j: RefereeJob): void {
    if (this.stopped || this.refereeRunning.has(j.request)) return;
    const { store, port, log } = this.o;
    const run = async () => {
      const rec = await port.get('requests', j.request);
      if (!rec || rec.closed) return store.removeRefereeJob(j.request);
      const task = await port.get('tasks', rec.task as string);
      if (!task) throw new AtomaError(`the ledger has no task ${String(rec.task)}`, 'ERR_NOT_FOUND');
      const input = rec.input as string;
      const bytes = await this.fetchInput(input, j.deadline);
      const t = { kind: task.kind === 'wasm' ? 'wasm' as const : 'inference' as const, digest: task.digest as string };
      const base = { type: 'reexecuted' as const, request: j.request, referee: this.o.node };
      let e: ClientEvent;
      if (j.mode === 'leaf' && t.kind === 'inference') {
        let leafHash: string;
        try {
          // The agreed prefix the bisection recorded (the ledger's dispute, while it waits on this leaf).
          const x = rec.dispute as Dispute | undefined;
          const agreed = x?.stage === 'reexecute' && x.mode === 'leaf' && x.lo === j.leafIndex ? x.agreed : [];
          const r = await this.onEngine(t.digest, { op: 'refereeLeaf', assignment: decodeAssignment(bytes, input), index: j.leafIndex, agreed }, j.deadline);
          leafHash = r.leafHash;
          // The answer stays the honest leaf (what anyone re-running the prefix reproduces); a verdict
          // `reexecuted` cannot say "both wrong before this leaf", so the mismatch goes to the log.
          if (r.prefixMismatch) log('warn', 'both sides diverged from the re-execution before the disputed leaf', { request: j.request, leafIndex: j.leafIndex, range: r.prefixMismatch });
        } catch (err) {
          const code = err instanceof RefusalError ? err.code : (err as AtomaError).code === 'ERR_EVENT' ? 'ERR_EVENT' : null;
          if (!code) throw err;
          leafHash = onlyLeaf(refusalResult(code as RefusalCode), j.leafIndex);
        }
        e = { ...base, leafHash };
      } else {
        // A WASM result (or a refusal) is one leaf: its re-execution is the whole run.
        const r = await this.compute(t, bytes, input, j.deadline);
        e = j.mode === 'leaf' ? { ...base, leafHash: onlyLeaf(r, j.leafIndex) } : { ...base, outputDigest: r.outputDigest, traceRoot: r.traceRoot, traceLeaves: r.leaves.length / 32 };
      }
      const res = await this.submitUntil(e, j.deadline);
      if (res instanceof AtomaError) log('warn', 're-execution refused', { request: j.request, code: res.code, error: res.message });
      else log('info', 're-executed', { request: j.request, mode: j.mode, leafIndex: j.leafIndex });
      store.removeRefereeJob(j.request);
    };
    const p = run().catch((e: AtomaError) => {
      if (e.code === 'ERR_DISPOSED') return;   // shutting down: the job stays stored
      log('error', 're-execution failed', { request: j.request, code: e.code, error: e.message });
      store.removeRefereeJob(j.request);
    }).finally(() => this.refereeRunning.delete(j.request));
    this.refereeRunning.set(j.request, p);
  }

  /** Work this node can still finish in time: executions and commits before their deadline, pending reveals and answers. */
  private inFlight(now = Date.now()): AssignmentRow[] {
    return this.o.store.open().filter((r) => r.deadline > now && (r.state === 'assigned' || r.state === 'executed' || r.state === 'committed' || r.bisect !== null));
  }

  /**
   * Graceful stop (SIGTERM): unsubscribes (no new samples), finishes the in-flight assignments
   * that can still meet their deadline -- execute, commit, reveal -- for up to `graceMs`, then
   * stops following the stream. What is left stays in node.db for the next start.
   */
  async stop(graceMs = 30_000, unsubscribe = true): Promise<void> {
    if (this.stopped) return;
    const { log } = this.o;
    this.draining = true;
    await this.subChain;
    if (unsubscribe && !this.paused) {
      for (const task of this.subs.keys()) {
        await this.submit({ type: 'unsubscribe', node: this.o.node, task }).catch((e: Error) => log('warn', 'unsubscribe failed', { task, error: e.message }));
      }
    }
    const until = Date.now() + graceMs;
    while (Date.now() < until && (this.inFlight().length > 0 || this.refereeRunning.size > 0)) await sleep(50);
    const left = this.inFlight();
    if (left.length) log('warn', 'assignments left for the next start', { requests: left.map((r) => r.request) });
    this.stopped = true;
    this.stopStream?.();
    await Promise.allSettled([...this.driving.values(), ...this.refereeRunning.values()]);
  }

  get isDraining(): boolean {
    return this.draining;
  }
}
