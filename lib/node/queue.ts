/**
 * A bounded job queue with backpressure. At most `capacity` jobs wait; submit() on a full queue
 * throws QueueFullError (the HTTP layer answers 429 with Retry-After). Each model's engine runs
 * one batch at a time; a batch takes up to `maxBatch` waiting jobs of that model in arrival
 * order, since a request's result does not depend on what it is batched with (continuous
 * batching in lib/model/generate.ts).
 */
import { AtomaError } from '../engine/errors.js';
import type { ModelEngine, WireRequest, WireResult } from './engine.js';

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

interface Entry extends Job {
  resolve(r: WireResult): void;
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
    if (this.closed) return Promise.reject(new AtomaError('the node is shutting down', 'ERR_DISPOSED'));
    if (!force && this.waiting.length >= this.capacity) return Promise.reject(new QueueFullError(1));
    return new Promise((resolve, reject) => {
      this.waiting.push({ ...job, resolve, reject });
      queueMicrotask(() => this.pump());
    });
  }

  private pump(): void {
    for (const [model, engine] of this.engines) {
      if (engine.busy) continue;
      const batch: Entry[] = [];
      for (let i = 0; i < this.waiting.length && batch.length < this.maxBatch; ) {
        if (this.waiting[i].model === model) batch.push(...this.waiting.splice(i, 1));
        else i++;
      }
      if (batch.length === 0) continue;
      this.running += batch.length;
      const byId = new Map(batch.map((e) => [e.request.id, e]));
      engine.run(batch.map((e) => e.request), (id, t) => byId.get(id)?.onToken?.(t)).then(
        (results) => {
          for (const r of results) byId.get(r.id)?.resolve(r);
        },
        (err: Error) => {
          for (const e of batch) e.reject(err);
        },
      ).finally(() => {
        this.running -= batch.length;
        this.pump();
        if (this.running === 0 && this.waiting.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  /** Stops taking jobs; resolves when the queued and running ones have finished. */
  drain(): Promise<void> {
    this.closed = true;
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
