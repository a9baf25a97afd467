/**
 * Replay refusal: a request id opens at most once, and only within a time window around its
 * timestamp (ids older than the window are forgotten, since such requests are refused anyway).
 * Only an envelope that authenticates uses up its id. An id is reserved while its request is
 * being opened (so two copies never run at once), and the reservation ends either way: `confirm`
 * (it authenticated: the id is used) or `release` (it did not: the id is free again). A copy
 * that arrives meanwhile waits for that outcome (`settled`) instead of being refused, so a
 * forged copy sent just ahead of the genuine request cannot get it refused.
 */
import { fail } from '../engine/errors.js';

export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  /** Reserved ids whose request is still being opened, with the wake-up of those waiting on them. */
  private readonly opening = new Map<string, { done: Promise<void>; wake: () => void }>();

  /** `windowMs`: how far a request's timestamp may be from the node's clock (default 5 min). */
  constructor(readonly windowMs = 5 * 60_000) {}

  /**
   * Reserves `requestId`; throws ERR_SEAL_REPLAY for a used or reserved id, or a timestamp
   * outside the window. Await `settled` first to wait out a reservation instead.
   */
  reserve(requestId: string, timestamp: number, now = Date.now()): void {
    this.prune(now);
    if (Math.abs(now - timestamp) > this.windowMs) fail('ERR_SEAL_REPLAY', `request ${requestId}: timestamp ${timestamp} is outside the ${this.windowMs} ms window (stale or replayed)`);
    if (this.seen.has(requestId)) fail('ERR_SEAL_REPLAY', `request ${requestId}: already seen (replay refused)`);
    this.seen.set(requestId, timestamp);
    let wake!: () => void;
    const done = new Promise<void>((r) => (wake = r));
    this.opening.set(requestId, { done, wake });
  }

  /** While `requestId` is reserved and not yet confirmed or released: resolves when it is. */
  settled(requestId: string): Promise<void> | undefined {
    return this.opening.get(requestId)?.done;
  }

  /** The reserved request authenticated: its id stays used until it leaves the window. */
  confirm(requestId: string): void {
    this.end(requestId);
  }

  /** Forgets a reservation whose request failed to authenticate. */
  release(requestId: string): void {
    this.seen.delete(requestId);
    this.end(requestId);
  }

  get size(): number {
    return this.seen.size;
  }

  private end(requestId: string): void {
    const x = this.opening.get(requestId);
    this.opening.delete(requestId);
    x?.wake();
  }

  private prune(now: number): void {
    for (const [id, ts] of this.seen) if (ts < now - this.windowMs && !this.opening.has(id)) this.seen.delete(id);
  }
}
