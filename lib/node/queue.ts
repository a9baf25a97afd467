/**
 * A bounded job queue with backpressure. At most `capacity` jobs wait; submit() on a full queue
 * throws QueueFullError (the HTTP layer answers 429 with Retry-After). Each model's engine runs
 * one batch at a time; a batch takes up to `maxBatch` waiting jobs of that model in arrival
 * order, since a request's result does not depend on what it is batched with (continuous
 * batching in lib/model/generate.ts). Protocol work (an assignment's execution, a referee's
 * re-execution: EngineOp) shares the same bound and the same engine threads; each runs alone.
 */
import { AtomaError } from '../engine/errors.js';
import type { EngineOp, ModelEngine, OpResult, WireRequest, WireResult } from './engine.js';

export class QueueFullError extends AtomaError {
  constructor(readonly retryAfterSeconds: number) {
    super('the request queue is full; retry later', 'ERR_BUSY');
  }
}

export interface Job {
  model: string;
  request: WireRequest;
  onToken?: (token: number) => void;
}

interface Entry {
  model: string;
  request?: WireRequest;
  op?: EngineOp;
  onToken?: (token: number) => void;
  resolve(r: unknown): void;
  reject(e: Error): void;
}

export class JobQueue {
  private readonly waiting: Entry[] = [];
  private running = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly engines: Map<string, ModelEngine>, readonly capacity: number, readonly maxBatch: number) {}

  /** Jobs waiting (not yet in a batch). */
  get depth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  /**
   * Queues a job; resolves with its result. `force` bypasses the bound (recovered jobs after a
   * restart must not be refused).
   */
  submit(job: Job, force = false): Promise<WireResult> {
    return this.enqueue(job.model, { request: job.request, onToken: job.onToken }, force) as Promise<WireResult>;
  }

  /**
   * Queues protocol work for a model's engine thread (under the same bound: QueueFullError when
   * full, unless `force`); resolves with its result.
   */
  submitOp<O extends EngineOp>(model: string, op: O, force = false): Promise<OpResult<O>> {
    if (!this.engines.has(model)) return Promise.reject(new AtomaError(`no engine for model ${model}`, 'ERR_NOT_FOUND'));
    return this.enqueue(model, { op }, force) as Promise<OpResult<O>>;
  }

  private enqueue(model: string, work: Pick<Entry, 'request' | 'op' | 'onToken'>, force: boolean): Promise<unknown> {
    if (this.closed) return Promise.reject(new AtomaError('the node is shutting down', 'ERR_DISPOSED'));
    if (!force && this.waiting.length >= this.capacity) return Promise.reject(new QueueFullError(1));
    return new Promise((resolve, reject) => {
      this.waiting.push({ model, ...work, resolve, reject });
      queueMicrotask(() => this.pump());
    });
  }

  private pump(): void {
    for (const [model, engine] of this.engines) {
      if (engine.busy) continue;
      // The model's first waiting entry decides: an op runs alone; generations batch up to the next op.
      const first = this.waiting.findIndex((e) => e.model === model);
      if (first < 0) continue;
      if (this.waiting[first].op) {
        const [e] = this.waiting.splice(first, 1);
        this.running++;
        engine.call(e.op!).then(e.resolve, e.reject).finally(() => this.settled(1));
        continue;
      }
      const batch: Entry[] = [];
      for (let i = first; i < this.waiting.length && batch.length < this.maxBatch; ) {
        const e = this.waiting[i];
        if (e.model !== model) i++;
        else if (e.op) break;
        else batch.push(...this.waiting.splice(i, 1));
      }
      this.running += batch.length;
      const byId = new Map(batch.map((e) => [e.request!.id, e]));
      engine.run(batch.map((e) => e.request!), (id, t) => byId.get(id)?.onToken?.(t)).then(
        (results) => {
          for (const r of results) byId.get(r.id)?.resolve(r);
        },
        (err: Error) => {
          for (const e of batch) e.reject(err);
        },
      ).finally(() => this.settled(batch.length));
    }
  }

  private settled(n: number): void {
    this.running -= n;
    this.pump();
    if (this.running === 0 && this.waiting.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Stops taking jobs; resolves when the queued and running ones have finished. */
  drain(): Promise<void> {
    this.closed = true;
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
