/**
 * The ledger service's event stream (`WS /stream?from=SEQ`): every reader gets every committed
 * event from its cursor on, exactly once and in order, first from the log (catch-up) and then as
 * events commit (live), without one reader's appetite costing the others or the service.
 *
 * - Catch-up is paged: one bounded page of the log (`pageEvents` rows, at most about `pageBytes`)
 *   per step, read as the stored JSON text (no parse and re-serialise). Pages are read in blocks
 *   aligned to `pageEvents`, and the last `cachedBlocks` full blocks are kept, so readers catching
 *   up side by side (a crowd reconnecting from 0) share one read of the log. After a page the reader
 *   waits until what it was sent has left the process (`lowWater` bytes still unflushed at most)
 *   before the next, so a reader that does not read holds one page of memory, not the log.
 * - One pump serves every catching-up reader, round robin, at most `pagesPerTurn` pages (and about
 *   `turnMs`) per turn of the event loop, so HTTP requests (GET /state) wait for a few pages, never
 *   for all readers. A page goes out as one write with one completion callback; a transport that
 *   can (`sendRange`) encodes a cached block once for every reader.
 * - The switch to live happens in the same synchronous step that finds the reader at the log's
 *   head; the service publishes a commit in the same step that applies it, so no event falls in
 *   between (no gap) and none is sent twice (live sends only seq >= the reader's cursor).
 * - A live reader whose unflushed bytes pass `highWater` goes back to catch-up from its cursor:
 *   it reads the events it missed from the log once it has drained, instead of the service
 *   queueing them in memory.
 *
 * The transport is a `StreamSink` (a WebSocket in service.ts), so the mechanism is tested with a
 * sink whose flushes the test controls.
 */

/** One stream message: an event's `{seq, event, effects}` JSON, as text or UTF-8 bytes. */
export interface Message {
  seq: number;
  data: string | Uint8Array;
}

/** Where a reader's messages go. */
export interface StreamSink {
  /**
   * Sends one message; `done`, when given, is called once it and every message before it have
   * left this process's buffers, or failed.
   */
  send(data: string | Uint8Array, done?: (err?: Error) => void): void;
  /** False once the transport is closed (the reader is dropped). */
  readonly open: boolean;
  /** Holds writes until `uncork` so a page goes out in one system call (optional). */
  cork?(): void;
  uncork?(): void;
  /**
   * Sends `items[start..end)` at once, instead of one `send` each (optional). The same array
   * goes to every reader at that place (a cached block, a publish), so a transport can encode it
   * once and share the bytes.
   */
  sendRange?(items: readonly Message[], start: number, end: number, done: (err?: Error) => void): void;
}

/** The log as the stream reads it. */
export interface StreamSource {
  /** Up to `limit` committed events from seq `from` on (seqs are consecutive), each as its message. */
  page(from: number, limit: number): Message[];
  /** The next sequence number: every event below it is in the log. */
  head(): number;
}

export interface StreamLimits {
  /** Rows read from the log per catch-up page (default 256). */
  pageEvents?: number;
  /** A page ends once its messages reach this many bytes (default 64 KiB). */
  pageBytes?: number;
  /** A catching-up reader gets its next page once at most this many bytes are unflushed (default 64 KiB). */
  lowWater?: number;
  /** A live reader with more unflushed bytes than this goes back to catch-up (default 1 MiB). */
  highWater?: number;
  /** Catch-up pages served per turn of the event loop, over all readers (default 8). */
  pagesPerTurn?: number;
  /** A turn also ends once its pages have taken this long (ms, default 2). */
  turnMs?: number;
  /** Full blocks of `pageEvents` messages kept for readers at the same place (default 32). */
  cachedBlocks?: number;
}

export type ReaderPhase = 'catching-up' | 'draining' | 'live' | 'closed';

/** One reader's position, for tests and metrics. */
export interface ReaderStats {
  next: number;
  phase: ReaderPhase;
  /** Bytes sent but not yet flushed out of the process. */
  unflushed: number;
  /** Catch-up pages sent so far. */
  pages: number;
}

class Reader {
  unflushed = 0;
  pages = 0;
  phase: ReaderPhase = 'catching-up';
  constructor(readonly sink: StreamSink, public next: number) {}
  stats(): ReaderStats {
    return { next: this.next, phase: this.phase, unflushed: this.unflushed, pages: this.pages };
  }
}

/**
 * @example
 * const hub = new StreamHub({ page: (from, n) => ledger.eventTexts(from, n).map((m) => ({ seq: m.seq, data: m.text })), head: () => ledger.state.seq });
 * const reader = hub.add(sink, 0);          // catches up from seq 0, then live
 * hub.publish([{ seq, data }]);             // after each commit, in the same synchronous step
 * hub.remove(reader);                       // when the transport closes
 */
export class StreamHub {
  private readonly readers = new Set<Reader>();
  /** Readers waiting for their next catch-up page, in turn. */
  private readonly ready: Reader[] = [];
  private pumping = false;
  private readonly pageEvents: number;
  private readonly pageBytes: number;
  private readonly lowWater: number;
  private readonly highWater: number;
  private readonly pagesPerTurn: number;
  private readonly turnMs: number;
  private readonly cachedBlocks: number;
  /** Full blocks of the log by block index, least recently used first. */
  private readonly blocks = new Map<number, Message[]>();

  constructor(private readonly source: StreamSource, limits: StreamLimits = {}) {
    this.pageEvents = limits.pageEvents ?? 256;
    this.pageBytes = limits.pageBytes ?? 64 * 1024;
    this.lowWater = limits.lowWater ?? 64 * 1024;
    this.highWater = limits.highWater ?? 1024 * 1024;
    this.pagesPerTurn = limits.pagesPerTurn ?? 8;
    this.turnMs = limits.turnMs ?? 2;
    this.cachedBlocks = limits.cachedBlocks ?? 32;
  }

  /** Starts a reader at `from` (clamped to the head: a cursor past it waits for those events). */
  add(sink: StreamSink, from: number): Reader {
    const r = new Reader(sink, from);
    this.readers.add(r);
    this.enqueue(r);
    return r;
  }

  remove(r: Reader): void {
    r.phase = 'closed';
    this.readers.delete(r);
  }

  /** Sends newly committed events to live readers; call it in the step that commits them. */
  publish(items: readonly Message[]): void {
    if (items.length === 0) return;
    for (const r of this.readers) {
      if (r.phase !== 'live') continue;
      let start = 0;
      while (start < items.length && items[start].seq < r.next) start++;
      let end = start;
      for (let bytes = r.unflushed; end < items.length; end++) {
        if (bytes > this.highWater) {
          // Too far behind to keep queueing here: it reads the rest from the log once drained.
          r.phase = 'draining';
          break;
        }
        bytes += items[end].data.length;
      }
      this.send(r, items, start, end);
    }
  }

  get size(): number {
    return this.readers.size;
  }

  stats(): ReaderStats[] {
    return [...this.readers].map((r) => r.stats());
  }

  /** Sends `items[start..end)` in order; one completion (the last message's) accounts for all. */
  private send(r: Reader, items: readonly Message[], start: number, end: number): void {
    if (end <= start) return;
    let n = 0;
    for (let i = start; i < end; i++) n += items[i].data.length;
    r.unflushed += n;
    r.next = items[end - 1].seq + 1;
    const done = (err?: Error) => {
      r.unflushed -= n;
      if (err) return this.remove(r);
      if (r.phase === 'draining' && r.unflushed <= this.lowWater) {
        r.phase = 'catching-up';
        this.enqueue(r);
      }
    };
    const sink = r.sink;
    if (sink.sendRange) return sink.sendRange(items, start, end, done);
    sink.cork?.();
    for (let i = start; i < end - 1; i++) sink.send(items[i].data);
    sink.send(items[end - 1].data, done);
    sink.uncork?.();
  }

  private enqueue(r: Reader): void {
    this.ready.push(r);
    if (!this.pumping) {
      this.pumping = true;
      setImmediate(() => this.pump());
    }
  }

  /** Serves catch-up pages round robin, a few per turn of the event loop. */
  private pump(): void {
    const t0 = performance.now();
    for (let served = 0; served < this.pagesPerTurn && this.ready.length > 0 && performance.now() - t0 < this.turnMs;) {
      const r = this.ready.shift()!;
      if (r.phase !== 'catching-up' || !r.sink.open) {
        if (!r.sink.open) this.remove(r);
        continue;
      }
      if (this.step(r)) served++;
    }
    if (this.ready.length > 0) setImmediate(() => this.pump());
    else this.pumping = false;
  }

  /** One catch-up step for a reader; true when it read a page. */
  private step(r: Reader): boolean {
    const head = this.source.head();
    if (r.next >= head) {
      r.phase = 'live';
      return false;
    }
    const block = this.block(Math.floor(r.next / this.pageEvents));
    const start = block.length === 0 ? 0 : Math.max(0, r.next - block[0].seq);
    let bytes = 0;
    let end = start;
    while (end < block.length && bytes < this.pageBytes) bytes += block[end++].data.length;
    this.send(r, block, start, end);
    r.pages++;
    // Same step as the sends: nothing committed in between, so `head` still holds.
    if (r.next >= head) r.phase = 'live';
    else if (r.unflushed > this.lowWater) r.phase = 'draining';
    else this.ready.push(r);
    return true;
  }

  /** The messages of block `b` (seqs b*pageEvents on), from the cache when it is full there. */
  private block(b: number): Message[] {
    const hit = this.blocks.get(b);
    if (hit) {
      this.blocks.delete(b);
      this.blocks.set(b, hit);
      return hit;
    }
    const items = this.source.page(b * this.pageEvents, this.pageEvents);
    // Only a full block is final: the log's last block still grows.
    if (this.cachedBlocks > 0 && items.length === this.pageEvents) {
      this.blocks.set(b, items);
      if (this.blocks.size > this.cachedBlocks) this.blocks.delete(this.blocks.keys().next().value!);
    }
    return items;
  }
}
