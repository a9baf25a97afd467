/**
 * A client for the local ledger service: submit events, read state, follow the event stream.
 * Keep-alive HTTP (one agent per client) so many events per second cost no new connections.
 */
import http from 'node:http';
import type WebSocket from 'ws';
import { AtomaError, fail } from '../../engine/errors.js';
import { lazyRequire } from '../../engine/lazy.js';
import { blake3 } from '../../engine/hash.js';
import { isHex32 } from '../ids.js';
import type { Signer } from '../signing.js';
import type { Effect, Event, KeyRecord } from '../types.js';
import { GRANT_HEADERS, signInput } from './inputs.js';

/** Only following the stream needs ws (about 80 ms and 9 MiB to load). */
const wsPackage = lazyRequire<typeof WebSocket>('ws');

/** An event as a client sends it (signed with signing.ts signEvent): the ledger stamps `at` and any entropy. */
export type ClientEvent = { type: Event['type'] } & Record<string, unknown>;

export interface StreamItem { seq: number; event: Event; effects: Effect[] }

/**
 * @example
 * const c = new LedgerClient('http://127.0.0.1:7070');
 * const { seq, effects } = await c.submit(signEvent({ type: 'register', node: key.publicKey, collateral }, key));
 * const input = await c.putInput(bytes, key);   // the request's `input`, stored for key's (funded) account
 * const stop = c.stream(0, (item) => console.log(item.seq, item.event.type));
 */
export class LedgerClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(url: string, { maxSockets = 8, timeoutMs = 30_000 } = {}) {
    this.base = new URL(url);
    if (this.base.protocol !== 'http:') fail('ERR_USAGE', 'LedgerClient: url must be http://host:port');
    this.agent = new http.Agent({ keepAlive: true, maxSockets, timeout: timeoutMs });
  }

  private call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(new URL(path, this.base), {
        method, agent: this.agent,
        headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: { error?: { code: string; message: string } };
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return reject(new AtomaError(`ledger ${method} ${path}: reply is not JSON (HTTP ${res.statusCode})`, 'ERR_LEDGER'));
          }
          if (parsed.error) reject(new AtomaError(parsed.error.message, parsed.error.code));
          else resolve(parsed);
        });
        res.on('error', reject);
      });
      req.on('error', (e) => reject(new AtomaError(`ledger ${method} ${path}: ${e.message}`, 'ERR_IO')));
      req.end(text);
    });
  }

  /** One raw-bytes exchange (request inputs): the reply body, or the service's typed error. */
  private raw(method: 'GET' | 'POST', path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = http.request(new URL(path, this.base), {
        method, agent: this.agent,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/octet-stream', 'content-length': body.byteLength },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          if (res.statusCode === 200) return resolve(bytes);
          let error: { code?: string; message?: string } | undefined;
          try {
            error = (JSON.parse(bytes.toString('utf8')) as { error?: { code: string; message: string } }).error;
          } catch { /* not JSON: reported below */ }
          reject(new AtomaError(error?.message ?? `ledger ${method} ${path}: HTTP ${res.statusCode}`, error?.code ?? 'ERR_LEDGER'));
        });
        res.on('error', reject);
      });
      req.on('error', (e) => reject(new AtomaError(`ledger ${method} ${path}: ${e.message}`, 'ERR_IO')));
      req.end(body);
    });
  }

  /**
   * Stores a request input on the ledger, signed for by `signer`'s account (funded, within its
   * input quota: docs/protocol.md); resolves with its BLAKE3 digest (checked against the digest of
   * the bytes sent), the `input` field of the request that uses it.
   */
  async putInput(bytes: Uint8Array, signer: Signer): Promise<string> {
    if (!(bytes instanceof Uint8Array)) throw new AtomaError('putInput: bytes must be a Uint8Array', 'ERR_ARGUMENT');
    const want = blake3(bytes).toString('hex');
    const g = signInput(bytes, signer);
    const headers = { [GRANT_HEADERS.account]: g.account, [GRANT_HEADERS.nonce]: g.nonce, [GRANT_HEADERS.sig]: g.sig };
    const reply = JSON.parse((await this.raw('POST', '/inputs', bytes, headers)).toString('utf8')) as { digest?: unknown };
    if (reply.digest !== want) throw new AtomaError(`ledger service: stored input under ${String(reply.digest)}, expected ${want}`, 'ERR_DIGEST_MISMATCH');
    return want;
  }

  /** A stored request input; rejects with ERR_NOT_FOUND when absent, ERR_DIGEST_MISMATCH when the bytes are not the digest's. */
  async getInput(digest: string): Promise<Buffer> {
    if (!isHex32(digest)) throw new AtomaError('getInput: an input digest is 64 lowercase hex digits', 'ERR_EVENT');
    const bytes = await this.raw('GET', `/inputs/${digest}`);
    if (blake3(bytes).toString('hex') !== digest) throw new AtomaError(`ledger service: input ${digest} came back with other bytes`, 'ERR_DIGEST_MISMATCH');
    return bytes;
  }

  /** Submits one event; resolves once it is durable, rejects with the ledger's typed error. */
  submit(event: ClientEvent): Promise<{ seq: number; event: Event; effects: Effect[] }> {
    return this.call('POST', '/events', event) as Promise<{ seq: number; event: Event; effects: Effect[] }>;
  }

  state(): Promise<Record<string, unknown>> {
    return this.call('GET', '/state') as Promise<Record<string, unknown>>;
  }

  get(kind: 'nodes' | 'tasks' | 'requests' | 'accounts', id: string): Promise<Record<string, unknown>> {
    return this.call('GET', `/${kind}/${id}`) as Promise<Record<string, unknown>>;
  }

  /** A registered node's published keys, oldest first, as the service sends them (unchecked). */
  keys(node: string): Promise<{ node: string; keys: KeyRecord[] }> {
    if (!isHex32(node)) return Promise.reject(new AtomaError('keys: node id must be 64 lowercase hex digits', 'ERR_EVENT'));
    return this.call('GET', `/keys/${node}`) as Promise<{ node: string; keys: KeyRecord[] }>;
  }

  events(from = 0, limit = 1000): Promise<StreamItem[]> {
    return this.call('GET', `/events?from=${from}&limit=${limit}`) as Promise<StreamItem[]>;
  }

  verify(): Promise<{ ok: boolean; seq: number }> {
    return this.call('GET', '/verify') as Promise<{ ok: boolean; seq: number }>;
  }

  /**
   * Follows committed events from `from` on; returns a function that stops. A refused stream
   * (too many from this address: HTTP 429) reports the service's typed error (ERR_BUSY).
   */
  stream(from: number, onItem: (item: StreamItem) => void, onError?: (e: Error) => void): () => void {
    const ws = new (wsPackage())(`ws://${this.base.host}/stream?from=${from}`, { maxPayload: 16 * 1024 * 1024 });
    ws.on('message', (data) => onItem(JSON.parse(String(data))));
    let refused = false;
    ws.on('error', (e) => {
      if (!refused) onError?.(e);
    });
    ws.on('unexpected-response', (_req, res) => {
      refused = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let error: { code?: string; message?: string } | undefined;
        try {
          error = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code: string; message: string } }).error;
        } catch { /* not JSON: reported below */ }
        ws.terminate();
        onError?.(new AtomaError(error?.message ?? `ledger stream refused: HTTP ${res.statusCode}`, error?.code ?? 'ERR_LEDGER'));
      });
    });
    return () => ws.terminate();
  }

  close(): void {
    this.agent.destroy();
  }
}
