/**
 * Replay refusal: a request id opens at most once, and only within a time window around its
 * timestamp (ids older than the window are forgotten, since such requests are refused anyway).
 * Ids are reserved before the worker opens the request and released when authentication fails,
 * so a forged header cannot burn a genuine id and two concurrent copies cannot both run.
 */
import { fail } from '../engine/errors.js';

export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  /** `windowMs`: how far a request's timestamp may be from the node's clock (default 5 min). */
  constructor(readonly windowMs = 5 * 60_000) {}

  /** Reserves `requestId`; throws ERR_SEAL_REPLAY for a seen id or a timestamp outside the window. */
  reserve(requestId: string, timestamp: number, now = Date.now()): void {
    this.prune(now);
    if (Math.abs(now - timestamp) > this.windowMs) fail('ERR_SEAL_REPLAY', `request ${requestId}: timestamp ${timestamp} is outside the ${this.windowMs} ms window (stale or replayed)`);
    if (this.seen.has(requestId)) fail('ERR_SEAL_REPLAY', `request ${requestId}: already seen (replay refused)`);
    this.seen.set(requestId, timestamp);
  }

  /** Forgets a reservation whose request failed to authenticate. */
  release(requestId: string): void {
    this.seen.delete(requestId);
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    for (const [id, ts] of this.seen) if (ts < now - this.windowMs) this.seen.delete(id);
  }
}
