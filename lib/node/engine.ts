/**
 * One model's engine thread (engine-worker.ts), as a promise API. One batch at a time: the
 * queue (queue.ts) decides what goes into a batch. Besides generation batches the thread runs the
 * protocol's work (EngineOp): an assignment's execution with its trace leaves, and a referee's
 * single-leaf or full re-execution (executor.ts), so none of it blocks the node's main thread.
 */
import { Worker } from 'node:worker_threads';
import { AtomaError } from '../engine/errors.js';
import type { AgreedRange } from '../protocol/types.js';
import type { Assignment, RefereeAnswer } from './executor.js';
import { isRefusalCode, RefusalError } from './refusal.js';
import { compiledEntry } from '../engine/compiled-entry.js';
import type { PackedWeightsInfo } from '../model/llama.js';

/** A generation request as it crosses the thread boundary (seed as a decimal string). */
export interface WireRequest {
  id: string;
  prompt: number[];
  maxTokens: number;
  seed: string;
  temperature?: number;
  topK?: number;
  topP?: number;
  stopTokens: number[];
}

export interface WireResult {
  id: string;
  tokens: number[];
  outputDigest: string;
  traceRoot: string;
  promptTokens: number;
}

/** Protocol work for the engine thread (executor.ts): run alone, never batched. */
export type EngineOp =
  | { op: 'execute'; assignment: Assignment }
  | { op: 'refereeLeaf'; assignment: Assignment; index: number; agreed?: AgreedRange[] };

/** An execution as it crosses the thread boundary: the leaf hashes as one buffer of 32-byte hashes. */
export interface WireExecution {
  tokens: number[];
  outputDigest: string;
  traceRoot: string;
  leaves: Uint8Array;
}

export type OpResult<O extends EngineOp> = O extends { op: 'execute' } ? WireExecution : RefereeAnswer;

type Msg =
  | { type: 'ready'; digest: string; packed: PackedWeightsInfo | null }
  | { type: 'token'; id: string; token: number }
  | { type: 'done'; results: WireResult[] }
  | { type: 'opDone'; result: unknown }
  | { type: 'error'; code: string; message: string; fatal?: boolean; refusal?: boolean };

function workerPath(): string {
  return compiledEntry(import.meta.url, 'node/engine-worker.js', 'the engine worker');
}

export class ModelEngine {
  private worker: Worker | null = null;
  private closed = false;
  private pending: { resolve(r: unknown): void; reject(e: Error): void; onToken(id: string, t: number): void } | null = null;

  /** The decode layout the thread uses (a sidecar under packedCacheDir, or memory), or null where none. */
  packed: PackedWeightsInfo | null = null;

  private constructor() {}

  /**
   * Starts a thread that maps the model file; resolves once it is loaded and its digest checked.
   * `packedCacheDir`: where the model's decode-layout sidecar goes (the node's cache_dir; default
   * ATOMA_CACHE_DIR or ~/.cache/atoma; null: in memory).
   */
  static async start(modelPath: string, digest: string, opts: { packedCacheDir?: string | null } = {}): Promise<ModelEngine> {
    const e = new ModelEngine();
    const w = new Worker(workerPath(), { workerData: { modelPath, packedCacheDir: opts.packedCacheDir } });
    e.worker = w;
    await new Promise<void>((resolve, reject) => {
      const first = (m: Msg) => {
        if (m.type === 'ready') {
          if (m.digest !== digest) reject(new AtomaError(`${modelPath}: model digest ${m.digest}, expected ${digest}`, 'ERR_DIGEST_MISMATCH'));
          else {
            e.packed = m.packed;
            resolve();
          }
        } else if (m.type === 'error') reject(new AtomaError(m.message, m.code));
      };
      w.once('message', first);
      w.once('error', reject);
    }).catch(async (err) => {
      await w.terminate();
      throw err;
    });
    w.on('message', (m: Msg) => e.onMessage(m));
    w.on('error', (err) => e.failPending(e.closed ? new AtomaError('the engine was stopped', 'ERR_DISPOSED') : err));
    w.on('exit', () => {
      e.worker = null;   // later runs fail at once instead of waiting on a dead thread
      // Stopped by close(): the job stays pending for the next start. Crashed: a fault of the job's run.
      e.failPending(e.closed ? new AtomaError('the engine was stopped', 'ERR_DISPOSED') : new AtomaError('the engine thread exited', 'ERR_INTERNAL'));
    });
    return e;
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  run(batch: WireRequest[], onToken: (id: string, token: number) => void): Promise<WireResult[]> {
    if (!this.worker) return Promise.reject(new AtomaError('the engine is closed', 'ERR_DISPOSED'));
    if (this.pending) return Promise.reject(new AtomaError('the engine is busy', 'ERR_INTERNAL'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve: resolve as (r: unknown) => void, reject, onToken };
      this.worker!.postMessage({ batch });
    });
  }

  /** Runs one protocol operation on the engine thread (the caller keeps one job at a time, as for run). */
  call<O extends EngineOp>(op: O): Promise<OpResult<O>> {
    if (!this.worker) return Promise.reject(new AtomaError('the engine is closed', 'ERR_DISPOSED'));
    if (this.pending) return Promise.reject(new AtomaError('the engine is busy', 'ERR_INTERNAL'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve: resolve as (r: unknown) => void, reject, onToken: () => {} };
      this.worker!.postMessage(op);
    });
  }

  private onMessage(m: Msg): void {
    const p = this.pending;
    if (!p) return;
    if (m.type === 'token') p.onToken(m.id, m.token);
    else if (m.type === 'done' || m.type === 'opDone') {
      this.pending = null;
      p.resolve(m.type === 'done' ? m.results : m.result);
    } else if (m.type === 'error') {
      this.pending = null;
      // A refusal (the input fails the engine's validation) is a result the network agrees on (refusal.ts).
      p.reject(m.refusal && isRefusalCode(m.code) ? new RefusalError(m.message, m.code) : new AtomaError(m.message, m.code));
    }
  }

  private failPending(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.closed = true;
    this.worker = null;
    if (w) await w.terminate();
  }
}
