/**
 * The one view of a ledger the node's protocol side needs (participant.ts, requester.ts): submit a
 * signed event, follow the event stream from a sequence number, read the input bytes a request
 * names, read a record. Two adapters: the ledger service over HTTP + WebSocket (LedgerClient), and
 * the embedded SQLite ledger in this process (Ledger), whose stream is its event log polled and
 * which this process must also tick (no service runs its deadline timer).
 */
import type WebSocket from 'ws';
import { AtomaError, fail } from '../engine/errors.js';
import { lazyRequire } from '../engine/lazy.js';
import { LedgerClient, type ClientEvent, type StreamItem } from '../protocol/ledger/client.js';
import { blake3 } from '../engine/hash.js';
import { signInput } from '../protocol/ledger/inputs.js';
import { canonical, Ledger } from '../protocol/ledger/store.js';
import type { Params } from '../protocol/params.js';
import type { Signer } from '../protocol/signing.js';
import type { Effect, Event } from '../protocol/types.js';

export type { ClientEvent, StreamItem };

/** Only the service adapter's stream needs ws (about 80 ms and 9 MiB to load). */
const wsPackage = lazyRequire<typeof WebSocket>('ws');
export type RecordKind = 'nodes' | 'tasks' | 'requests' | 'accounts';

export interface LedgerPort {
  /** Submits one (signed) event; resolves once durable, rejects with the ledger's typed AtomaError. */
  submit(event: ClientEvent): Promise<{ seq: number; event: Event; effects: Effect[] }>;
  /**
   * Follows the committed events from `from` on, in order; returns a function that stops.
   * `onError` is called when the stream broke (the caller resumes from its cursor).
   */
  stream(from: number, onItem: (item: StreamItem) => void, onError: (e: Error) => void): () => void;
  /** Stores input bytes on the ledger, signed for by `signer`'s funded account; resolves with their BLAKE3 hex. */
  putInput(bytes: Uint8Array, signer: Signer): Promise<string>;
  /** The input bytes with this BLAKE3 hex (the caller verifies them). */
  getInput(digest: string): Promise<Buffer>;
  /** A record, or null when the ledger has none (a closed request carries `closed: {seq, outcome}`). */
  get(kind: RecordKind, id: string): Promise<Record<string, unknown> | null>;
  /** The next sequence number and the genesis parameters. */
  head(): Promise<{ seq: number; params: Params }>;
  /** The ledger's identity: BLAKE3 hex of its genesis event (canonical JSON). */
  genesis(): Promise<string>;
  close(): void;
}

function genesisId(items: StreamItem[]): string {
  if (items[0]?.event.type !== 'genesis') fail('ERR_LEDGER', 'the ledger has no genesis event');
  return blake3(canonical(items[0].event)).toString('hex');
}

/** Default interval of the stream's WebSocket pings (ms). */
export const DEFAULT_PING_MS = 5000;

/** Over `atoma ledger serve` (http://host:port). */
export class ServicePort implements LedgerPort {
  readonly client: LedgerClient;
  private readonly wsBase: string;
  private readonly pingMs: number;

  /** `pingMs`: the stream pings this often and counts itself dead when a pong is a whole interval late. */
  constructor(url: string, opts: { pingMs?: number } = {}) {
    this.client = new LedgerClient(url);
    this.wsBase = `ws://${new URL(url).host}`;
    this.pingMs = opts.pingMs ?? DEFAULT_PING_MS;
    // Every port streams: load ws while the node starts, not in the middle of its first catch-up.
    wsPackage();
  }

  submit(event: ClientEvent) {
    return this.client.submit(event);
  }

  /**
   * The service's WebSocket stream; a socket that closes (the service restarted) counts as broken
   * too. A socket that stays open but goes silent (a dead peer, a dropped NAT mapping, a stalled
   * proxy) sends no close: the stream pings every `pingMs` and counts as broken when the pong of
   * the previous ping has not come back by the next one (or the handshake takes longer than two
   * intervals), so the caller resumes from its cursor on a fresh connection.
   */
  stream(from: number, onItem: (item: StreamItem) => void, onError: (e: Error) => void): () => void {
    const ws = new (wsPackage())(`${this.wsBase}/stream?from=${from}`, { maxPayload: 16 * 1024 * 1024, handshakeTimeout: 2 * this.pingMs });
    let stopped = false;
    let failed = false;
    let awaitingPong = false;
    let pinger: NodeJS.Timeout | undefined;
    const broke = (e: Error) => {
      if (stopped || failed) return;
      failed = true;
      clearInterval(pinger);
      ws.terminate();
      onError(e);
    };
    ws.on('open', () => {
      pinger = setInterval(() => {
        if (awaitingPong) return broke(new AtomaError(`the ledger stream is silent: no pong within ${this.pingMs} ms`, 'ERR_LEDGER'));
        awaitingPong = true;
        ws.ping();
      }, this.pingMs);
      pinger.unref();
    });
    ws.on('pong', () => { awaitingPong = false; });
    ws.on('message', (data) => {
      if (stopped || failed) return;
      let item: StreamItem;
      try {
        item = JSON.parse(String(data)) as StreamItem;
      } catch {
        return broke(new AtomaError('the ledger stream sent a message that is not JSON', 'ERR_LEDGER'));
      }
      onItem(item);
    });
    ws.on('error', (e) => broke(new AtomaError(`ledger stream: ${e.message}`, 'ERR_IO')));
    ws.on('close', () => broke(new AtomaError('the ledger stream closed', 'ERR_IO')));
    return () => {
      stopped = true;
      clearInterval(pinger);
      ws.terminate();
    };
  }

  putInput(bytes: Uint8Array, signer: Signer): Promise<string> {
    return this.client.putInput(bytes, signer);
  }

  getInput(digest: string): Promise<Buffer> {
    return this.client.getInput(digest);
  }

  async get(kind: RecordKind, id: string): Promise<Record<string, unknown> | null> {
    try {
      return await this.client.get(kind, id);
    } catch (e) {
      if (e instanceof AtomaError && e.code === 'ERR_NOT_FOUND') return null;
      throw e;
    }
  }

  async head(): Promise<{ seq: number; params: Params }> {
    const s = await this.client.state();
    return { seq: s.seq as number, params: s.params as Params };
  }

  async genesis(): Promise<string> {
    return genesisId(await this.client.events(0, 1));
  }

  close(): void {
    this.client.close();
  }
}

/**
 * The embedded ledger: this process is its only writer. The stream polls the log (`pollMs`) and
 * the poll also applies a `tick` when a deadline has passed.
 */
export class EmbeddedPort implements LedgerPort {
  private readonly wakers = new Set<() => void>();

  constructor(readonly ledger: Ledger, private readonly pollMs = 50) {}

  async submit(event: ClientEvent) {
    const r = this.ledger.submit(event);
    for (const w of this.wakers) w();
    return r;
  }

  stream(from: number, onItem: (item: StreamItem) => void, onError: (e: Error) => void): () => void {
    let next = from;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = () => {
      if (stopped) return;
      clearTimeout(timer);
      try {
        this.ledger.tickIfDue();
        for (;;) {
          const page = this.ledger.events(next, 1000);
          for (const item of page) {
            if (stopped) return;
            next = item.seq + 1;
            onItem(item);
          }
          if (page.length < 1000) break;
        }
      } catch (e) {
        stopped = true;
        this.wakers.delete(wake);
        onError(e as Error);
        return;
      }
      timer = setTimeout(poll, this.pollMs);
    };
    // A local submit wakes the stream at once (next turn of the loop, after the caller's await).
    const wake = () => { setImmediate(poll); };
    this.wakers.add(wake);
    setImmediate(poll);
    return () => {
      stopped = true;
      clearTimeout(timer);
      this.wakers.delete(wake);
    };
  }

  /** The same admission as the service's (signed, funded, within quota), so both ports behave alike. */
  async putInput(bytes: Uint8Array, signer: Signer): Promise<string> {
    return this.ledger.putSignedInput(bytes, signInput(bytes, signer));
  }

  async getInput(digest: string): Promise<Buffer> {
    const b = this.ledger.getInput(digest);
    if (!b) fail('ERR_NOT_FOUND', `the ledger has no input ${digest}`);
    return b;
  }

  async get(kind: RecordKind, id: string): Promise<Record<string, unknown> | null> {
    const s = this.ledger.state;
    if (kind === 'accounts') return { id, balance: s.accounts[id] ?? 0 };
    const live = (s[kind] as Record<string, unknown>)[id];
    if (live) return structuredClone(live) as Record<string, unknown>;
    const closed = kind === 'requests' ? this.ledger.closedRequest(id) : undefined;
    return closed ? { ...closed.request, closed: { seq: closed.seq, outcome: closed.outcome } } : null;
  }

  async head(): Promise<{ seq: number; params: Params }> {
    return { seq: this.ledger.state.seq, params: { ...this.ledger.state.params } };
  }

  async genesis(): Promise<string> {
    return genesisId(this.ledger.events(0, 1));
  }

  close(): void {
    this.ledger.close();
  }
}

/**
 * A port for a node config's [ledger]: the embedded SQLite file or the service URL.
 *
 * @example
 * const port = openLedgerPort({ kind: 'service', url: 'http://127.0.0.1:7070' });   // or new ServicePort(url)
 * const { seq } = await port.head();
 */
export function openLedgerPort(cfg: { kind: 'embedded'; path: string } | { kind: 'service'; url: string; pingMs?: number }): LedgerPort {
  return cfg.kind === 'embedded' ? new EmbeddedPort(Ledger.open(cfg.path)) : new ServicePort(cfg.url, { pingMs: cfg.pingMs });
}
