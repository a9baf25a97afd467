/**
 * The client's side of a request on a ledger: put the input bytes (the canonical Assignment of an
 * inference task, or the canonical WasmAssignment of a `wasm` task) on
 * the ledger, sign and submit the `request` event naming their digest, then follow the event
 * stream until the request settles or fails. The sampled nodes fetch the same bytes, so what
 * they execute is exactly what the client signed for.
 */
import { randomBytes } from 'node:crypto';
import { AtomaError, fail } from '../engine/errors.js';
import { timerMs } from '../engine/timers.js';
import { signEvent, type Signer } from '../protocol/signing.js';
import { encodeAssignment } from './assignment-input.js';
import type { Assignment } from './executor.js';
import type { LedgerPort } from './ledger-port.js';
import { refusalOf } from './refusal.js';
import { encodeWasmAssignment, type WasmAssignment } from './wasm-assignment.js';

export interface RequestOptions {
  /** Ledger task id (64 hex). */
  task: string;
  /** The work of an inference task (give exactly one of assignment and wasm). */
  assignment?: Assignment;
  /** The work of a `wasm` task (wasm-assignment.ts `wasmAssignment(input, {fuel, ...})`). */
  wasm?: WasmAssignment;
  /** Highest price per node the client accepts. */
  maxPrice: number;
  /** Refuse the request (ERR_NO_NODES, nothing charged) when fewer nodes are eligible (default 1). */
  minNodes?: number;
  /** Give up waiting after this long (ms, default 120 s); the request stays open on the ledger. */
  timeoutMs?: number;
  /** The request id (64 hex; default: 32 random bytes). */
  request?: string;
}

export interface RequestOutcome {
  request: string;
  outcome: 'settled' | 'failed';
  /** The settled result (null when the request failed). */
  outputDigest: string | null;
  traceRoot: string | null;
  /** The nodes that were paid (the winning side). */
  nodes: string[];
  charged: number;
  refunded: number;
  /** Why it failed (null when settled). */
  reason: string | null;
  /** Settled as a refusal (refusal.ts): the error code the nodes agreed on, else null. */
  refusal: string | null;
  /** Ledger sequence number of the request event. */
  seq: number;
}

/**
 * Submits one request (inference or WASM) and waits for its outcome.
 *
 * @example
 * const port = new ServicePort('http://127.0.0.1:7070');
 * const r = await submitRequest(port, clientKey, { task, assignment: { prompt: [1, 2, 3], maxTokens: 8, seed: 1 }, maxPrice: 10 });
 * r.outcome;        // 'settled'
 * r.outputDigest;   // what every paid node revealed
 * // A WASM task: stdin bytes, fuel and memory in the assignment.
 * await submitRequest(port, clientKey, { task: wasmTask, wasm: wasmAssignment(Buffer.from('hello'), { fuel: 1e6 }), maxPrice: 10 });
 */
export async function submitRequest(ledger: LedgerPort, signer: Signer, o: RequestOptions): Promise<RequestOutcome> {
  const request = o.request ?? randomBytes(32).toString('hex');
  const timeoutMs = timerMs(o.timeoutMs ?? 120_000, 'submitRequest: timeoutMs');
  if ((o.assignment === undefined) === (o.wasm === undefined)) fail('ERR_ARGUMENT', 'submitRequest: give exactly one of assignment (inference) and wasm');
  const { bytes, digest } = o.wasm ? encodeWasmAssignment(o.wasm) : encodeAssignment(o.assignment!);
  const stored = await ledger.putInput(bytes, signer);
  if (stored !== digest) fail('ERR_DIGEST_MISMATCH', `the ledger stored the input as ${stored}, expected ${digest}`);
  const event = { type: 'request' as const, request, task: o.task, client: signer.publicKey, maxPrice: o.maxPrice, minNodes: o.minNodes ?? 1, input: digest };
  const { seq } = await ledger.submit(signEvent(event, signer));
  return new Promise<RequestOutcome>((resolve, reject) => {
    let done = false;
    const finish = (r: RequestOutcome | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop();
      if (r instanceof Error) reject(r); else resolve(r);
    };
    const timer = setTimeout(() => finish(new AtomaError(`request ${request}: no outcome after ${timeoutMs} ms`, 'ERR_TIMEOUT')), timeoutMs);
    // The log holds everything from the request on: streaming from its seq misses nothing.
    const stop = ledger.stream(seq, (item) => {
      for (const x of item.effects) {
        if (x.type === 'settled' && x.request === request) {
          finish({ request, seq, outcome: 'settled', outputDigest: x.outputDigest, traceRoot: x.traceRoot, nodes: x.nodes, charged: x.charged, refunded: x.refunded, reason: null, refusal: refusalOf(x.outputDigest) });
        } else if (x.type === 'failed' && x.request === request) {
          finish({ request, seq, outcome: 'failed', outputDigest: null, traceRoot: null, nodes: [], charged: 0, refunded: x.refunded, reason: x.reason, refusal: null });
        }
      }
    }, (e) => finish(new AtomaError(`request ${request}: the ledger stream broke: ${e.message}`, 'ERR_IO')));
  });
}
