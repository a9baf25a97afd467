/**
 * The local ledger service: the embedded ledger behind JSON over HTTP and a WebSocket event
 * stream, so separate node and client processes can share one ledger. Loopback by default.
 *
 *   POST /events          one signed event (JSON, <= 64 KiB) -> {seq, effects} | {error: {code, message}}
 *   POST /inputs          raw request input bytes (<= 1 MiB), signed by a funded account in the
 *                         x-atoma-account/-nonce/-sig headers (inputs.ts) -> {digest} (BLAKE3, the request's `input`)
 *   GET  /inputs/DIGEST   the stored bytes (application/octet-stream); 404 ERR_NOT_FOUND when absent
 *   GET  /state           ledger summary (seq, time, beacon, treasury, counts, params)
 *   GET  /nodes/ID, /tasks/ID, /requests/ID, /accounts/ID
 *   GET  /keys/NODE       a registered node's published encryption keys, oldest first
 *   GET  /events?from=SEQ&limit=N                       logged events with effects
 *   GET  /verify          replays the log and compares it with the stored state
 *   WS   /stream?from=SEQ  every committed {seq, event, effects}, from SEQ on, then live: paged
 *                         with backpressure (stream.ts); at most `maxStreamsPerAddress` per client
 *                         address and `maxStreams` in all, beyond which the upgrade gets HTTP 429
 *                         {error: {code: ERR_BUSY}}
 *
 * Group commit: events that arrive while a commit is in progress are applied together in the
 * next transaction (one fsync), each in its own savepoint; every reply is sent only after its
 * transaction is durable. A timer applies `tick` events when a deadline has passed.
 *
 * Every event is admitted by the embedded ledger (store.ts): signed by its actor, with a nonce not
 * seen before; `deposit` only while the faucet is on (ServiceOptions.faucet, default on).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { fail } from '../../engine/errors.js';
import { lazyRequire } from '../../engine/lazy.js';
import { isHex32 } from '../ids.js';
import { preverifyEvent } from '../signing.js';
import { textFrames, type Frames } from './frames.js';
import { GRANT_HEADERS } from './inputs.js';
import { Ledger, MAX_INPUT, type LedgerOptions, type SubmitResult } from './store.js';
import { StreamHub, type Message, type StreamLimits } from './stream.js';

/** Loaded when a service starts, not when the package root is imported (about 80 ms and 9 MiB). */
const wsPackage = lazyRequire<{ WebSocketServer: typeof WebSocketServer }>('ws');

export const MAX_BODY = 64 * 1024;
/** Longest a queued event waits for the signature checks of events that arrived with it (ms). */
const MAX_GROUP_WAIT_MS = 2;

export interface ServiceOptions extends LedgerOptions {
  db: string;
  port?: number;
  host?: string;
  /** How often to check deadlines (ms). */
  tickMs?: number;
  /** Paging and backpressure of the event stream (stream.ts). */
  stream?: StreamLimits;
  /** Open event streams one client address may hold (default 64). */
  maxStreamsPerAddress?: number;
  /** Open event streams in all (default 1024). */
  maxStreams?: number;
}

export interface LedgerService {
  url: string;
  port: number;
  ledger: Ledger;
  /** The event stream's readers (their cursors and phases). */
  streams: StreamHub;
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
  // Messages as UTF-8 bytes, converted once: a cached page goes to many readers.
  const hub = new StreamHub({ page: (from, n) => ledger.eventTexts(from, n).map((m) => ({ seq: m.seq, data: Buffer.from(m.text) })), head: () => ledger.state.seq }, opts.stream);
  const maxPerAddress = opts.maxStreamsPerAddress ?? 64;
  const maxStreams = opts.maxStreams ?? 1024;
  /** Open stream connections per client address (counted from the upgrade to the socket's close). */
  const perAddress = new Map<string, number>();
  let streamCount = 0;
  /** Frames of the message arrays the hub hands out (cached blocks, publishes), made once for all readers. */
  const framed = new WeakMap<readonly Message[], Frames>();
  let flushing = false;
  /** Events whose signature is being checked on the thread pool (they join the queue after). */
  let verifying = 0;
  let flushTimer: NodeJS.Timeout | undefined;

  const broadcast = (rs: SubmitResult[]) => {
    if (hub.size === 0) return;
    const items: Message[] = [];
    for (const r of rs) if (r.ok) items.push({ seq: r.seq, data: Buffer.from(JSON.stringify({ seq: r.seq, event: r.event, effects: r.effects })) });
    hub.publish(items);
  };
  const flush = () => {
    flushing = false;
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    const batch = queue.splice(0, queue.length);
    if (batch.length === 0) return;
    const results = ledger.submitBatch(batch.map((b) => b.input));
    batch.forEach((b, i) => b.done(results[i]));
    broadcast(results);
  };
  /**
   * Group commit: the next turn of the event loop commits what is queued. While signatures of
   * events that arrived together are still being checked, it waits for them (at most
   * MAX_GROUP_WAIT_MS), so they share one transaction instead of trickling into small ones.
   */
  const schedule = () => {
    if (flushing || queue.length === 0) return;
    if (verifying === 0) {
      flushing = true;
      setImmediate(flush);
    } else flushTimer ??= setTimeout(() => {
      flushTimer = undefined;
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    }, MAX_GROUP_WAIT_MS);
  };
  const enqueue = (input: unknown) => new Promise<SubmitResult>((done) => {
    queue.push({ input, done });
    schedule();
  });
  /** Checks the signature off the event loop, then queues the event. */
  const admit = async (input: unknown) => {
    verifying++;
    try {
      await preverifyEvent(input);
    } finally {
      verifying--;
    }
    return enqueue(input);
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const sendError = (res: ServerResponse, status: number, code: string, message: string) => send(res, status, { error: { code, message } });

  const readBytes = (req: IncomingMessage, max: number, code: string) => new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return reject(Object.assign(new Error(`body over ${max} bytes`), { code }));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(Object.assign(new Error(`body over ${max} bytes`), { code }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  const readBody = async (req: IncomingMessage) => (await readBytes(req, MAX_BODY, 'ERR_SIZE')).toString('utf8');

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
        // The Ed25519 check runs on the thread pool while the event loop serves other requests;
        // admission (store.ts) then only confirms it (and checks it itself when this did not verify).
        const r = await admit(body);
        return r.ok ? send(res, 200, { seq: r.seq, event: r.event, effects: r.effects }) : send(res, r.error.code === 'ERR_LEDGER' ? 500 : 400, { error: r.error });
      }
      if (req.method === 'POST' && u.pathname === '/inputs') {
        const grant = { account: req.headers[GRANT_HEADERS.account], nonce: req.headers[GRANT_HEADERS.nonce], sig: req.headers[GRANT_HEADERS.sig] };
        const declared = Number(req.headers['content-length'] ?? 0);
        try {
          // Refused before the body is read: an unsigned, unfunded, replayed or over-quota upload costs a header parse.
          ledger.checkUpload(grant, Number.isSafeInteger(declared) && declared <= MAX_INPUT ? declared : 0);
        } catch (e) {
          const code = (e as { code?: string }).code ?? 'ERR_LEDGER';
          res.setHeader('connection', 'close');
          return sendError(res, code === 'ERR_SIGNATURE' ? 401 : code === 'ERR_QUOTA' || code === 'ERR_FUNDS' ? 403 : code === 'ERR_REPLAY' ? 409 : 400, code, (e as Error).message);
        }
        let bytes: Buffer;
        try {
          bytes = await readBytes(req, MAX_INPUT, 'ERR_TOO_LARGE');
        } catch (e) {
          if ((e as { code?: string }).code === 'ERR_TOO_LARGE') return sendError(res, 413, 'ERR_TOO_LARGE', `a request input is at most ${MAX_INPUT} bytes`);
          throw e;
        }
        return send(res, 200, { digest: ledger.putSignedInput(bytes, grant as never) });
      }
      if (req.method !== 'GET') return sendError(res, 405, 'ERR_EVENT', 'only GET, POST /events and POST /inputs');
      if (parts.length === 2 && parts[0] === 'inputs') {
        if (!isHex32(parts[1])) return sendError(res, 400, 'ERR_EVENT', 'an input digest is 64 lowercase hex digits');
        const bytes = ledger.getInput(parts[1]);
        if (!bytes) return sendError(res, 404, 'ERR_NOT_FOUND', `no input ${parts[1]}`);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        return res.end(bytes);
      }
      const s = ledger.state;
      if (u.pathname === '/state') {
        return send(res, 200, { seq: s.seq, time: s.time, beacon: s.beacon, treasury: s.treasury, minted: s.minted, params: s.params, referees: s.referees, faucet: ledger.faucet,
          nodes: Object.keys(s.nodes).length, tasks: Object.keys(s.tasks).length, openRequests: Object.keys(s.requests).length });
      }
      if (u.pathname === '/events') {
        // The stored JSON joined as it is: a page of 10,000 events costs no parse and re-serialise on the event loop.
        const text = `[${ledger.eventTexts(intParam(u, 'from', 0, 2 ** 50), intParam(u, 'limit', 1000, 10_000)).map((m) => m.text).join(',')}]`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        return res.end(text);
      }
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
  const wss = new (wsPackage().WebSocketServer)({ noServer: true, maxPayload: 1024 });
  /** Refuses an upgrade with a typed JSON error, as the HTTP routes do. */
  const refuseUpgrade = (socket: Socket, status: number, reason: string, code: string, message: string) => {
    const text = JSON.stringify({ error: { code, message } });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  };
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // The HTTP server drops its own error handler from an upgraded socket: a peer's reset must not end the process.
    socket.on('error', () => socket.destroy());
    let u: URL;
    try {
      u = new URL(req.url ?? '/', 'http://ledger');
    } catch {
      return refuseUpgrade(socket, 400, 'Bad Request', 'ERR_EVENT', 'the request target is not a URL');
    }
    if (u.pathname !== '/stream') return refuseUpgrade(socket, 404, 'Not Found', 'ERR_NOT_FOUND', `no stream at ${u.pathname}`);
    const address = socket.remoteAddress ?? '?';
    const mine = perAddress.get(address) ?? 0;
    if (mine >= maxPerAddress) return refuseUpgrade(socket, 429, 'Too Many Requests', 'ERR_BUSY', `${address} already holds ${mine} event streams (at most ${maxPerAddress} per address)`);
    if (streamCount >= maxStreams) return refuseUpgrade(socket, 429, 'Too Many Requests', 'ERR_BUSY', `the service holds ${streamCount} event streams (at most ${maxStreams})`);
    // Counted until the socket closes, whether or not the handshake completes.
    perAddress.set(address, mine + 1);
    streamCount++;
    socket.once('close', () => {
      streamCount--;
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n > 0) perAddress.set(address, n);
      else perAddress.delete(address);
    });
    wss.handleUpgrade(req, socket, head, (ws) => connect(ws, req, socket));
  });
  const connect = (ws: WebSocket, req: IncomingMessage, socket: Socket) => {
    const u = new URL(req.url ?? '/', 'http://ledger');
    const raw = u.searchParams.get('from');
    const from = raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : ledger.state.seq;
    sockets.add(ws);
    const reader = hub.add({
      send: (data, done) => ws.send(data, { binary: false }, done),
      get open() { return ws.readyState === ws.OPEN; },
      // A block framed once (frames.ts), a slice of it written to the socket under the WebSocket.
      sendRange: (items, start, end, done) => {
        if (ws.readyState !== ws.OPEN) return process.nextTick(done, new Error('the stream is closed'));
        let f = framed.get(items);
        if (!f) framed.set(items, (f = textFrames(items)));
        socket.write(f.bytes.subarray(f.offsets[start], f.offsets[end]), (err) => done(err ?? undefined));
      },
    }, from);
    ws.on('close', () => {
      sockets.delete(ws);
      hub.remove(reader);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', () => ws.close(1003, 'the stream is read-only'));
  };
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
    url: `http://${host}:${port}`, port, ledger, streams: hub,
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
