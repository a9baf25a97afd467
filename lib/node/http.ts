/**
 * The HTTP API on node:http: OpenAI-compatible /v1/completions and /v1/chat/completions (SSE
 * when "stream": true), /v1/models, /v1/results/:requestHash (the answer of an accepted request,
 * e.g. after a restart), /health and /metrics. Every request is logged as one JSON line.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AtomaError } from '../engine/errors.js';
import { callFunction } from './functions.js';
import { requestHash } from './keys.js';
import type { AtomaNode } from './node.js';
import { ApiError, chunkBody, parseRequest } from './openai.js';
import { QueueFullError } from './queue.js';

export interface HttpServer {
  url: string;
  /** Stops accepting connections; resolves when open ones have ended. */
  close(): Promise<void>;
  /** Ends every connection now. */
  destroy(): void;
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; version=0.0.4; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads the body up to `limit` bytes; a larger body is refused with 413 without reading it all. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(new ApiError(413, `the request body is ${declared} bytes; this node accepts at most ${limit}`, 'invalid_request_error', null, 'request_too_large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new ApiError(413, `the request body exceeds ${limit} bytes`, 'invalid_request_error', null, 'request_too_large'));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Holds back a trailing incomplete UTF-8 sequence so a streamed delta never ends mid-character. */
function streamText(decode: (ids: number[]) => string) {
  const ids: number[] = [];
  let shown = '';
  return (t: number): string => {
    ids.push(t);
    const text = decode(ids);
    const safe = text.endsWith('\uFFFD') ? text.slice(0, text.lastIndexOf('\uFFFD')) : text;
    if (safe.length > shown.length && safe.startsWith(shown)) {
      const d = safe.slice(shown.length);
      shown = safe;
      return d;
    }
    return '';
  };
}

async function completion(node: AtomaNode, kind: 'completion' | 'chat', req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  const raw = await readBody(req, node.config.limits.maxRequestBytes);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
  const p = parseRequest(json, kind, node.config.limits.maxTokens);
  const task = node.task(p.model);
  const id = requestHash(raw);
  const request = node.prepare(task, p, id);
  // Backpressure before anything is recorded: a refused request must not be re-run after a restart.
  if (node.queue.depth >= node.queue.capacity && !node.jobs.get(id)) throw new QueueFullError(1);
  const row = { id, task: task.config.name, kind, request, meta: { created: Math.floor(Date.now() / 1000) } };
  node.jobs.add(row);
  const stored = node.jobs.get(id)!;   // an identical earlier request keeps its row (and created time)
  if (!p.stream) {
    const r = await node.execute(stored);
    send(res, 200, node.answer(stored, r).body, { 'x-atoma-request-hash': id });
    return 200;
  }
  const cid = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${id.slice(0, 24)}`;
  const created = stored.meta.created as number;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-atoma-request-hash': id });
  const event = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
  const delta = streamText((ids) => task.model.tokenizer.decode(ids));
  let first = true;
  let sent = '';
  try {
    const r = await node.execute(stored, (t) => {
      const d = delta(t);
      if (d === '') return;
      event(chunkBody(kind, cid, created, task.config.name, d, null, first));
      first = false;
      sent += d;
    });
    const a = node.answer(stored, r);
    // A request answered from the database (or joined in flight) streams its text here.
    const rest = a.text.startsWith(sent) ? a.text.slice(sent.length) : '';
    if (rest !== '' || first) event(chunkBody(kind, cid, created, task.config.name, rest, null, first));
    const last = chunkBody(kind, cid, created, task.config.name, null, a.finish, false);
    event({ ...last, usage: a.body.usage, outputDigest: a.body.outputDigest, traceRoot: a.body.traceRoot, atoma: a.body.atoma });
  } catch (e) {
    const err = toApiError(e);
    event(err.body());
  }
  res.end('data: [DONE]\n\n');
  return 200;
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) return new ApiError(429, e.message, 'rate_limit_error', null, 'queue_full');
  if (e instanceof AtomaError && e.code === 'ERR_DISPOSED') return new ApiError(503, e.message, 'server_error', null, 'shutting_down');
  if (e instanceof AtomaError) {
    const client = ['ERR_ARGUMENT', 'ERR_RANGE', 'ERR_USAGE'].includes(e.code);
    return new ApiError(client ? 400 : 500, e.message, client ? 'invalid_request_error' : 'server_error', null, e.code);
  }
  return new ApiError(500, (e as Error)?.message ?? String(e), 'server_error', null, 'internal_error');
}

async function route(node: AtomaNode, req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  const only = (m: string) => {
    if (method !== m) throw new ApiError(405, `${path} takes ${m}`, 'invalid_request_error', null, 'method_not_allowed');
  };
  switch (path) {
    case '/v1/completions':
      only('POST');
      return completion(node, 'completion', req, res);
    case '/v1/chat/completions':
      only('POST');
      return completion(node, 'chat', req, res);
    case '/v1/models':
      only('GET');
      send(res, 200, {
        object: 'list',
        data: [...node.tasks.values()].map((t) => ({ id: t.config.name, object: 'model', created: 0, owned_by: 'atoma-node', digest: t.config.digest, price_per_1k_tokens: t.config.pricePer1kTokens })),
        functions: [...node.functions.values()].map((f) => ({ id: f.config.name, object: 'function', module: f.config.digest, price_per_call: f.config.pricePerCall, fuel: f.config.fuel })),
      });
      return 200;
    case '/health':
      only('GET');
      send(res, 200, { status: 'ok', publicKey: node.key.publicKey, ledger: node.ledgerKind, queueDepth: node.queue.depth, running: node.queue.active, queueCapacity: node.queue.capacity });
      return 200;
    case '/metrics':
      only('GET');
      send(res, 200, node.metrics.render());
      return 200;
  }
  const fm = /^\/v1\/functions\/([A-Za-z0-9._-]+)$/.exec(path);
  if (fm) {
    only('POST');
    const raw = await readBody(req, node.config.limits.maxRequestBytes);
    send(res, 200, await callFunction(node, fm[1], raw), { 'x-atoma-request-hash': requestHash(raw) });
    return 200;
  }
  const m = /^\/v1\/results\/([0-9a-f]{64})$/.exec(path);
  if (m) {
    only('GET');
    const row = node.jobs.get(m[1]);
    if (!row) throw new ApiError(404, `no request ${m[1]} on this node`, 'invalid_request_error', null, 'not_found');
    if (row.error) throw toApiError(new AtomaError(row.error.message, row.error.code));
    if (!row.result) {
      send(res, 202, { status: 'pending', requestHash: row.id });
      return 202;
    }
    send(res, 200, node.answer(row, row.result).body);
    return 200;
  }
  throw new ApiError(404, `no route ${method} ${path}`, 'invalid_request_error', null, 'not_found');
}

export function startHttp(node: AtomaNode, host: string, port: number): Promise<HttpServer> {
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const path = (req.url ?? '/').split('?')[0];
    route(node, req, res).catch((e: unknown) => {
      const err = toApiError(e);
      if (res.headersSent) res.end();
      else send(res, err.status, err.body(), err.status === 429 ? { 'retry-after': '1' } : err.status === 413 ? { connection: 'close' } : {});
      return err.status;
    }).then((status) => {
      const seconds = (performance.now() - t0) / 1000;
      const endpoint = /^\/v1\/results\//.test(path) ? '/v1/results' : /^\/v1\/functions\//.test(path) ? '/v1/functions' : path;
      node.metrics.request(endpoint, status, seconds);
      node.log(status >= 500 ? 'error' : 'info', 'request', { method: req.method, path, status, ms: Math.round(seconds * 1000) });
    });
  });
  // Listen once; a port in use is a start-up error, not a silent retry.
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new AtomaError(`cannot listen on ${host}:${port}: ${e.message}`, 'ERR_IO')));
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${h}:${a.port}`,
        close: () => new Promise<void>((r) => {
          server.close(() => r());
          server.closeIdleConnections();
        }),
        destroy: () => server.closeAllConnections(),
      });
    });
  });
}
