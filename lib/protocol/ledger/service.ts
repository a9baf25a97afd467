/**
 * The local ledger service: the embedded ledger behind JSON over HTTP and a WebSocket event
 * stream, so separate node and client processes can share one ledger. Loopback by default.
 *
 *   POST /events          one event (JSON, <= 64 KiB)  -> {seq, effects} | {error: {code, message}}
 *   GET  /state           ledger summary (seq, time, beacon, treasury, counts, params)
 *   GET  /nodes/ID, /tasks/ID, /requests/ID, /accounts/ID
 *   GET  /keys/NODE       a registered node's published encryption keys, oldest first
 *   GET  /events?from=SEQ&limit=N                       logged events with effects
 *   GET  /verify          replays the log and compares it with the stored state
 *   WS   /stream?from=SEQ  every committed {seq, event, effects}, from SEQ on, then live
 *
 * Group commit: events that arrive while a commit is in progress are applied together in the
 * next transaction (one fsync), each in its own savepoint; every reply is sent only after its
 * transaction is durable. A timer applies `tick` events when a deadline has passed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { fail } from '../../engine/errors.js';
import { isHex32 } from '../ids.js';
import { Ledger, type LedgerOptions, type SubmitResult } from './store.js';

export const MAX_BODY = 64 * 1024;

export interface ServiceOptions extends LedgerOptions {
  db: string;
  port?: number;
  host?: string;
  /** How often to check deadlines (ms). */
  tickMs?: number;
}

export interface LedgerService {
  url: string;
  port: number;
  ledger: Ledger;
  close(): Promise<void>;
}

/**
 * @example
 * const svc = await serveLedger({ db: 'ledger.db', port: 0 });
 * const client = new LedgerClient(svc.url);
 */
export async function serveLedger(opts: ServiceOptions): Promise<LedgerService> {
  const host = opts.host ?? '127.0.0.1';
  const ledger = Ledger.open(opts.db, opts);
  const queue: { input: unknown; done: (r: SubmitResult) => void }[] = [];
  const sockets = new Set<WebSocket>();
  let flushing = false;

  const broadcast = (rs: SubmitResult[]) => {
    if (sockets.size === 0) return;
    for (const r of rs) if (r.ok) {
      const msg = JSON.stringify({ seq: r.seq, event: r.event, effects: r.effects });
      for (const ws of sockets) if ((ws as WebSocket & { caughtUp?: boolean }).caughtUp) ws.send(msg);
    }
  };
  const flush = () => {
    flushing = false;
    const batch = queue.splice(0, queue.length);
    if (batch.length === 0) return;
    const results = ledger.submitBatch(batch.map((b) => b.input));
    batch.forEach((b, i) => b.done(results[i]));
    broadcast(results);
  };
  const enqueue = (input: unknown) => new Promise<SubmitResult>((done) => {
    queue.push({ input, done });
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  });

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const sendError = (res: ServerResponse, status: number, code: string, message: string) => send(res, status, { error: { code, message } });

  const readBody = (req: IncomingMessage) => new Promise<string>((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) return reject(Object.assign(new Error(`body over ${MAX_BODY} bytes`), { code: 'ERR_SIZE' }));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error(`body over ${MAX_BODY} bytes`), { code: 'ERR_SIZE' }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

  const intParam = (u: URL, name: string, fallback: number, max: number) => {
    const v = u.searchParams.get(name);
    if (v === null) return fallback;
    if (!/^\d{1,15}$/.test(v) || Number(v) > max) fail('ERR_EVENT', `query ${name} must be an integer in 0..${max}`);
    return Number(v);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://ledger');
    const parts = u.pathname.split('/').filter(Boolean);
    try {
      if (req.method === 'POST' && u.pathname === '/events') {
        const ct = req.headers['content-type'] ?? '';
        if (!ct.startsWith('application/json')) return sendError(res, 415, 'ERR_EVENT', 'content-type must be application/json');
        let body: unknown;
        try {
          body = JSON.parse(await readBody(req));
        } catch (e) {
          const code = (e as { code?: string }).code === 'ERR_SIZE' ? 'ERR_SIZE' : 'ERR_EVENT';
          return sendError(res, code === 'ERR_SIZE' ? 413 : 400, code, code === 'ERR_SIZE' ? (e as Error).message : 'body is not valid JSON');
        }
        const r = await enqueue(body);
        return r.ok ? send(res, 200, { seq: r.seq, event: r.event, effects: r.effects }) : send(res, r.error.code === 'ERR_LEDGER' ? 500 : 400, { error: r.error });
      }
      if (req.method !== 'GET') return sendError(res, 405, 'ERR_EVENT', 'only GET and POST /events');
      const s = ledger.state;
      if (u.pathname === '/state') {
        return send(res, 200, { seq: s.seq, time: s.time, beacon: s.beacon, treasury: s.treasury, minted: s.minted, params: s.params,
          nodes: Object.keys(s.nodes).length, tasks: Object.keys(s.tasks).length, openRequests: Object.keys(s.requests).length });
      }
      if (u.pathname === '/events') return send(res, 200, ledger.events(intParam(u, 'from', 0, 2 ** 50), intParam(u, 'limit', 1000, 10_000)));
      if (u.pathname === '/verify') return send(res, 200, { ok: ledger.verify(), seq: ledger.state.seq });
      if (parts.length === 2 && parts[0] === 'keys') {
        const node = parts[1];
        if (!isHex32(node)) return sendError(res, 400, 'ERR_EVENT', 'node id must be 64 lowercase hex digits');
        if (!s.nodes[node]) return sendError(res, 404, 'ERR_NOT_FOUND', `no node ${node}`);
        return send(res, 200, { node, keys: s.keys[node] ?? [] });
      }
      if (parts.length === 2 && ['nodes', 'tasks', 'requests', 'accounts'].includes(parts[0])) {
        const id = parts[1];
        if (!isHex32(id)) return sendError(res, 400, 'ERR_EVENT', 'id must be 64 lowercase hex digits');
        if (parts[0] === 'accounts') return send(res, 200, { id, balance: s.accounts[id] ?? 0 });
        const table = s[parts[0] as 'nodes' | 'tasks' | 'requests'] as Record<string, unknown>;
        if (table[id]) return send(res, 200, table[id]);
        const closed = parts[0] === 'requests' ? ledger.closedRequest(id) : undefined;
        if (closed) return send(res, 200, { ...closed.request, closed: { seq: closed.seq, outcome: closed.outcome } });
        return sendError(res, 404, 'ERR_NOT_FOUND', `no ${parts[0].slice(0, -1)} ${id}`);
      }
      return sendError(res, 404, 'ERR_NOT_FOUND', `no route ${u.pathname}`);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'ERR_LEDGER';
      sendError(res, code === 'ERR_LEDGER' ? 500 : 400, code, (e as Error).message);
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 30_000;
  const wss = new WebSocketServer({ server, path: '/stream', maxPayload: 1024 });
  wss.on('connection', (ws: WebSocket & { caughtUp?: boolean }, req) => {
    const u = new URL(req.url ?? '/', 'http://ledger');
    const raw = u.searchParams.get('from');
    let from = raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : ledger.state.seq;
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', () => ws.close(1003, 'the stream is read-only'));
    // Catch up from the log in pages, then switch to live broadcasts (same thread: no gap).
    for (;;) {
      const page = ledger.events(from, 1000);
      for (const r of page) ws.send(JSON.stringify(r));
      if (page.length < 1000) break;
      from = page[page.length - 1].seq + 1;
    }
    ws.caughtUp = true;
  });
  const timer = setInterval(() => {
    const r = ledger.tickIfDue();
    if (r) broadcast([r]);
  }, opts.tickMs ?? 250);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`, port, ledger,
    close: async () => {
      clearInterval(timer);
      flush();
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      ledger.close();
    },
  };
}
