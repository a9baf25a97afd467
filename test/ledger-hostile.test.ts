/**
 * The ledger service under hostile load, mechanism by mechanism (the load itself is bench/ledger.mjs
 * --hostile): the event stream's paged catch-up waits for each page to drain and serves a bounded
 * number of pages per turn of the event loop, switches to live with no gap and no duplicate, sends a
 * reader that falls behind back to the log; streams are bounded per client address; input uploads
 * are signed by a funded account, replay-proof and within a quota, refused before the body is read.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Receiver, WebSocket } from 'ws';
import { textFrames } from '../lib/protocol/ledger/frames.js';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3 } from '../lib/engine/hash.js';
import { Ledger, LedgerClient, serveLedger, signerFromSeed, signInput, type LedgerService } from '../lib/protocol/index.js';
import { StreamHub, type StreamSink, type StreamSource } from '../lib/protocol/ledger/stream.js';

const hx = (...p: (string | number)[]) => blake3(p.join('/')).toString('hex');
/** One turn of the event loop: every setImmediate queued before this one has run. */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** A log the test appends to; each event's text is its seq. */
class FakeLog implements StreamSource {
  texts: string[] = [];
  reads = 0;
  append(n: number): { seq: number; data: string }[] {
    const added = Array.from({ length: n }, (_, i) => ({ seq: this.texts.length + i, data: `{"seq":${this.texts.length + i}}` }));
    this.texts.push(...added.map((a) => a.data));
    return added;
  }
  page(from: number, limit: number) {
    this.reads++;
    return this.texts.slice(from, from + limit).map((data, i) => ({ seq: from + i, data }));
  }
  head() {
    return this.texts.length;
  }
}

/** A transport whose flushes the test releases: `flush()` completes every send so far. */
class HeldSink implements StreamSink {
  seqs: number[] = [];
  held: (() => void)[] = [];
  open = true;
  send(data: string | Uint8Array, done?: (err?: Error) => void) {
    this.seqs.push((JSON.parse(String(data)) as { seq: number }).seq);
    if (done) this.held.push(() => done());
  }
  flush() {
    for (const f of this.held.splice(0)) f();
  }
}

/** A transport that flushes each send on the next microtask (a fast reader). */
class FastSink implements StreamSink {
  seqs: number[] = [];
  open = true;
  send(data: string | Uint8Array, done?: (err?: Error) => void) {
    this.seqs.push((JSON.parse(String(data)) as { seq: number }).seq);
    if (done) queueMicrotask(() => done());
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('event stream: paged catch-up with backpressure (stream.ts)', () => {
  it('sends one page, then waits until it has drained before reading the next', async () => {
    const log = new FakeLog();
    log.append(1000);
    const hub = new StreamHub(log, { pageEvents: 10, lowWater: 0 });
    const sink = new HeldSink();
    const r = hub.add(sink, 0);
    for (let i = 0; i < 20; i++) await turn();
    // A reader that does not read holds one page, however long it stalls.
    expect(sink.seqs).toEqual(range(0, 10));
    expect(r.stats()).toMatchObject({ next: 10, phase: 'draining', pages: 1, unflushed: sink.seqs.length * '{"seq":0}'.length });
    expect(log.reads).toBe(1);
    sink.flush();
    for (let i = 0; i < 20; i++) await turn();
    expect(sink.seqs).toEqual(range(0, 20));
    expect(r.stats()).toMatchObject({ next: 20, phase: 'draining', pages: 2 });
  });

  it('a page ends at pageBytes', async () => {
    const log = new FakeLog();
    log.append(100);
    const hub = new StreamHub(log, { pageEvents: 50, pageBytes: 30, lowWater: 0 });
    const sink = new HeldSink();
    hub.add(sink, 0);
    await turn();
    expect(sink.seqs).toEqual([0, 1, 2, 3]); // 4 x 9 bytes >= 30
  });

  it('serves at most pagesPerTurn pages per turn of the event loop, over all readers', async () => {
    const log = new FakeLog();
    log.append(10_000);
    const hub = new StreamHub(log, { pageEvents: 10, pagesPerTurn: 3, turnMs: Infinity, lowWater: 1 << 20 });
    const sinks = Array.from({ length: 5 }, () => new FastSink());
    const readers = sinks.map((s) => hub.add(s, 0));
    await turn();
    expect(readers.reduce((n, r) => n + r.stats().pages, 0)).toBe(3);
    await turn();
    expect(readers.reduce((n, r) => n + r.stats().pages, 0)).toBe(6);
    // Round robin: the first three readers had one page each, then the other two and the first again.
    expect(readers.map((r) => r.stats().pages)).toEqual([2, 1, 1, 1, 1]);
  });

  it('a reader that catches up while events commit gets every seq exactly once, in order; a lagging live reader goes back to the log', async () => {
    const log = new FakeLog();
    log.append(500);
    const hub = new StreamHub(log, { pageEvents: 7, pagesPerTurn: 1, lowWater: 0, highWater: 40 });
    const sink = new HeldSink();
    const r = hub.add(sink, 0);
    // Commits between every step of the catch-up, each published as the service does.
    while (r.stats().phase !== 'live') {
      hub.publish(log.append(3));
      sink.flush();
      await turn();
    }
    sink.flush();
    const caughtUpAt = log.head();
    expect(sink.seqs).toEqual(range(0, caughtUpAt));
    // Live: published events go straight out, until the reader has over highWater bytes unflushed.
    hub.publish(log.append(3));
    expect(sink.seqs).toEqual(range(0, caughtUpAt + 3));
    hub.publish(log.append(20));
    expect(r.stats().phase).toBe('draining');
    const sentBeforeDrain = sink.seqs.length;
    expect(sentBeforeDrain).toBeLessThan(log.head());
    hub.publish(log.append(5)); // not sent: the reader reads them from the log once drained
    expect(sink.seqs.length).toBe(sentBeforeDrain);
    while (r.stats().phase !== 'live') {
      sink.flush();
      await turn();
    }
    sink.flush();
    hub.publish(log.append(2));
    expect(sink.seqs).toEqual(range(0, log.head()));
  });

  it('readers catching up side by side share one read of each full block', async () => {
    const log = new FakeLog();
    log.append(105);
    const hub = new StreamHub(log, { pageEvents: 10, turnMs: Infinity });
    const sinks = Array.from({ length: 4 }, () => new FastSink());
    const readers = sinks.map((s) => hub.add(s, 0));
    while (readers.some((r) => r.stats().phase !== 'live')) await turn();
    for (const s of sinks) expect(s.seqs).toEqual(range(0, 105));
    // 10 full blocks read once each; the growing last block (5 events) is read by every reader.
    expect(log.reads).toBe(10 + 4);
  });

  it('a cursor past the head waits for those events; a closed transport is dropped', async () => {
    const log = new FakeLog();
    log.append(5);
    const hub = new StreamHub(log);
    const sink = new FastSink();
    const r = hub.add(sink, 8);
    await turn();
    expect(r.stats().phase).toBe('live');
    hub.publish(log.append(5));
    expect(sink.seqs).toEqual([8, 9]);
    const gone = new HeldSink();
    gone.open = false;
    hub.add(gone, 0);
    await turn();
    expect(gone.seqs).toEqual([]);
    expect(hub.size).toBe(1);
  });
});

describe('WebSocket text frames written by the service (frames.ts)', () => {
  it('a ws client reads them back, for every length encoding (7-bit, 16-bit, 64-bit)', async () => {
    // Text (UTF-8 encoded here) or bytes; payloads of 125, 126, 65535 and 65536 bytes sit at the encodings' edges.
    const items = [3, 125, 126, 200, 65535, 65536].map((n, seq) => ({ seq, data: seq === 0 ? 'é'.repeat(n) : Buffer.from('x'.repeat(n)) }));
    const { bytes, offsets } = textFrames(items);
    expect(offsets.length).toBe(items.length + 1);
    expect(offsets[items.length]).toBe(bytes.length);
    const got: string[] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 1 << 20 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => got.push(`${isBinary}:${data.toString()}`));
    // A slice from one message's offset to another's is whole frames.
    await new Promise<void>((resolve, reject) => receiver.write(bytes.subarray(offsets[1], offsets[6]), (e) => (e ? reject(e) : resolve())));
    expect(got).toEqual(items.slice(1, 6).map((m) => `false:${String(m.data)}`));
    receiver.write(bytes.subarray(0, offsets[1]));
    expect(got[5]).toBe('false:ééé');
  });
});

const dirs: string[] = [];
const services: LedgerService[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function service(opts: Partial<Parameters<typeof serveLedger>[0]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'atoma-hostile-'));
  dirs.push(dir);
  const svc = await serveLedger({ db: join(dir, 'l.db'), port: 0, ...opts });
  services.push(svc);
  return svc;
}

/** Resolves when `cond` holds, checking after each turn of the event loop (the test's timeout bounds it). */
async function until(cond: () => boolean) {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('ledger service: the stream under load', () => {
  it('a reader catching up from 0 while writes continue sees every seq exactly once, in order', async () => {
    const svc = await service({ stream: { pageEvents: 20, pagesPerTurn: 1 } });
    svc.ledger.submitBatch(Array.from({ length: 1500 }, (_, i) => ({ type: 'deposit', account: hx('prefill', i % 7), amount: 1 })));
    const c = new LedgerClient(svc.url, { maxSockets: 16 });
    try {
      const seen: number[] = [];
      let failed: Error | undefined;
      const stop = c.stream(0, (item) => seen.push(item.seq), (e) => { failed = e; });
      // Writes while the reader catches up (1500 events at 20 per turn) and after.
      for (let b = 0; b < 10; b++) await Promise.all(Array.from({ length: 20 }, (_, i) => c.submit({ type: 'deposit', account: hx('live', b, i), amount: 1 })));
      const last = svc.ledger.state.seq - 1;
      await until(() => seen.length > 0 && (seen[seen.length - 1] >= last || failed !== undefined));
      stop();
      expect(failed).toBeUndefined();
      expect(seen).toEqual(range(0, last + 1));
      // GET /events joins the stored JSON as it is: the same records as the log.
      expect(await c.events(1495, 10)).toEqual(svc.ledger.events(1495, 10));
    } finally {
      c.close();
    }
  });

  it('bounds the streams one client address may hold: HTTP 429 ERR_BUSY, other addresses unaffected, freed on close', async () => {
    const svc = await service({ maxStreamsPerAddress: 2, maxStreams: 3 });
    const c = new LedgerClient(svc.url);
    const stops: (() => void)[] = [];
    try {
      const refused = () => new Promise<AtomaError>((resolve) => {
        stops.push(c.stream(0, () => {}, (e) => resolve(e as AtomaError)));
      });
      stops.push(c.stream(0, () => {}), c.stream(0, () => {}));
      await until(() => svc.streams.size === 2);
      const e = await refused();
      expect(e).toBeInstanceOf(AtomaError);
      expect([e.code, e.message]).toEqual(['ERR_BUSY', expect.stringContaining('at most 2 per address')]);
      // The raw refusal is a typed JSON body with status 429.
      const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${svc.url}/stream?from=0`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('upgrade', () => reject(new Error('upgraded past the bound')));
        req.on('error', reject);
        req.end();
      });
      expect(status.status).toBe(429);
      expect(JSON.parse(status.body).error.code).toBe('ERR_BUSY');
      // Another address (loopback is all of 127/8) has its own count, up to the service's total.
      const from = (localAddress: string) => {
        const ws = new WebSocket(`ws://127.0.0.1:${svc.port}/stream`, { localAddress });
        return { ws, outcome: new Promise<number>((resolve, reject) => {
          ws.once('open', () => resolve(101));
          ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode!); res.resume(); });
          ws.once('error', reject);
        }) };
      };
      const other = from('127.0.0.2');
      expect(await other.outcome).toBe(101);
      const third = from('127.0.0.3');
      expect(await third.outcome).toBe(429);
      third.ws.terminate();
      other.ws.terminate();
      stops[0]();
      await until(() => svc.streams.size === 1);
      const again = c.stream(0, () => {});
      stops.push(again);
      await until(() => svc.streams.size === 2);
    } finally {
      for (const s of stops) s();
      c.close();
    }
  });
});

describe('ledger service: hostile upgrades', () => {
  it('an upgrade whose target is not a URL gets a typed 400 and the service keeps serving', async () => {
    const svc = await service();
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = connect(svc.port, '127.0.0.1', () => {
        sock.end('GET http://[ HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      });
      let text = '';
      sock.on('data', (d) => { text += d; });
      sock.on('close', () => resolve(text));
      sock.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toContain('"code":"ERR_EVENT"');
    expect((await fetch(`${svc.url}/state`)).status).toBe(200);
  });
});

describe('request inputs: signed by a funded account, replay-proof, within a quota', () => {
  const alice = signerFromSeed(hx('alice'));
  const mallory = signerFromSeed(hx('mallory'));
  const codeOf = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      expect(e).toBeInstanceOf(AtomaError);
      return (e as AtomaError).code;
    }
  };

  it('in the embedded ledger (putSignedInput)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-hostile-'));
    dirs.push(dir);
    const l = Ledger.open(join(dir, 'l.db'), { inputQuota: 100 });
    try {
      const a = Buffer.alloc(60, 1), b = Buffer.alloc(60, 2);
      expect(codeOf(() => l.putSignedInput(a, signInput(a, alice)))).toBe('ERR_FUNDS');
      l.submit({ type: 'deposit', account: alice.publicKey, amount: 1 });
      expect(codeOf(() => l.putSignedInput(a, undefined as never))).toBe('ERR_SIGNATURE');
      expect(codeOf(() => l.putSignedInput(a, signInput(b, alice)))).toBe('ERR_SIGNATURE'); // signed for other bytes
      expect(codeOf(() => l.putSignedInput(a, { ...signInput(a, mallory), account: alice.publicKey }))).toBe('ERR_SIGNATURE');
      expect(l.hasInput(blake3(a).toString('hex'))).toBe(false);
      const grant = signInput(a, alice);
      expect(l.putSignedInput(a, grant)).toBe(blake3(a).toString('hex'));
      expect(codeOf(() => l.putSignedInput(a, grant))).toBe('ERR_REPLAY');
      expect(l.inputUsage(alice.publicKey)).toBe(60);
      // Bytes already stored cost nothing; new ones past the quota are refused and not stored.
      expect(codeOf(() => l.putSignedInput(a, signInput(a, alice)))).toBe('ok');
      expect(codeOf(() => l.putSignedInput(b, signInput(b, alice)))).toBe('ERR_QUOTA');
      expect(l.hasInput(blake3(b).toString('hex'))).toBe(false);
      expect(l.inputUsage(alice.publicKey)).toBe(60);
      expect(l.verify()).toBe(true);
    } finally {
      l.close();
    }
  });

  it('through the service: POST /inputs without a grant, from an empty account, replayed or over quota is refused before the body is read', async () => {
    const svc = await service({ inputQuota: 1000 });
    const c = new LedgerClient(svc.url);
    try {
      const bytes = Buffer.from('{"prompt":[1,2,3]}');
      /** Sends headers announcing a 1 MiB body and no body: only a refusal on the headers can answer. */
      const headersOnly = (headers: Record<string, string>) => new Promise<{ status: number; code: string }>((resolve, reject) => {
        const req = httpRequest(`${svc.url}/inputs`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) } });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => { resolve({ status: res.statusCode!, code: JSON.parse(body).error.code }); req.destroy(); });
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      const h = (g: { account: string; nonce: string; sig: string }) => ({ 'x-atoma-account': g.account, 'x-atoma-nonce': g.nonce, 'x-atoma-sig': g.sig });
      expect(await headersOnly({})).toEqual({ status: 401, code: 'ERR_SIGNATURE' });
      expect(await headersOnly(h(signInput(bytes, alice)))).toEqual({ status: 403, code: 'ERR_FUNDS' });
      expect(await c.putInput(bytes, alice).catch((e: AtomaError) => e.code)).toBe('ERR_FUNDS');
      await c.submit({ type: 'deposit', account: alice.publicKey, amount: 5 });
      expect(await headersOnly(h(signInput(Buffer.alloc(1024 * 1024), alice)))).toEqual({ status: 403, code: 'ERR_QUOTA' });
      const grant = signInput(bytes, alice);
      const put = (g: typeof grant, body: Buffer) => fetch(`${svc.url}/inputs`, { method: 'POST', body, headers: h(g) }).then(async (r) => ({ status: r.status, body: await r.json() as { digest?: string; error?: { code: string } } }));
      expect(await put(grant, bytes)).toEqual({ status: 200, body: { digest: blake3(bytes).toString('hex') } });
      expect(await headersOnly(h(grant))).toEqual({ status: 409, code: 'ERR_REPLAY' });
      // A grant moved onto other bytes does not verify: the bytes are not stored.
      const other = Buffer.from('other bytes');
      expect((await put(signInput(bytes, alice), other)).body.error?.code).toBe('ERR_SIGNATURE');
      expect(await c.getInput(blake3(other).toString('hex')).catch((e: AtomaError) => e.code)).toBe('ERR_NOT_FOUND');
      expect(await c.putInput(other, alice)).toBe(blake3(other).toString('hex'));
      expect(svc.ledger.inputUsage(alice.publicKey)).toBe(bytes.length + other.length);
    } finally {
      c.close();
    }
  });
});
