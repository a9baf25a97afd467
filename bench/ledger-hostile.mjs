// Ledger service under hostile load (issue 13): READERS WebSocket clients catch up from seq 0 on a
// log of EVENTS events (request lifecycles: request, 3 commits, 3 reveals, all signed) while
// GET /state is polled one request at a time and a writer submits signed deposits one at a time.
// The service runs as a child process (`atoma ledger serve`); its peak RSS is its VmHWM
// (/proc/PID/status). Readers run in READER_PROCS child processes so that their JSON handling
// does not delay this process's timing of GET /state. They connect from 127.0.0.2..127.0.0.11
// (loopback is all of 127/8), because the service bounds the streams of one client address.
// Loopback only; stops when every reader has caught up or after --seconds.
//   node bench/ledger.mjs --hostile [--events 50000] [--readers 300] [--seconds 300] [--writer 1]
// (--writer 0: no writer, so GET /state never waits behind a commit's fsync)
// Targets: GET /state p99 < 50 ms, service peak RSS < 300 MB.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atoma, report, root } from './lib.mjs';

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const ADDRESSES = 10;

if (process.argv[2] === '--reader-proc') await readerProc();
else await main();

/** A reader process: `count` stream clients; reports each catch-up (ms since connect) to the parent. */
async function readerProc() {
  const { WebSocket } = await import(join(root, 'node_modules', 'ws', 'wrapper.mjs'));
  const [url, first, count, target] = process.argv.slice(3).map((v, i) => (i === 0 ? v : Number(v)));
  const open = new Set();
  const done = (msg, ws) => {
    if (!open.has(ws)) return;
    open.delete(ws);
    ws.terminate();
    if (!process.connected) process.exit(0);   // the bench has finished without us
    process.send(msg, (err) => { if (err) process.exit(0); });
    if (open.size === 0) process.exit(0);
  };
  for (let i = first; i < first + count; i++) {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/stream?from=0`, { localAddress: `127.0.0.${2 + (i % ADDRESSES)}`, maxPayload: 1 << 24 });
    open.add(ws);
    const t0 = performance.now();
    let n = 0;
    ws.on('message', (data) => {
      // Seqs from 0 are contiguous: the target-th message is seq target-1 (checked on that one only).
      if (++n === target) done({ caughtUp: performance.now() - t0, lastSeqOk: JSON.parse(String(data)).seq === target - 1 }, ws);
    });
    ws.on('unexpected-response', (_req, res) => done({ refused: res.statusCode }, ws));
    ws.on('error', (e) => done({ error: e.message }, ws));
    ws.on('close', () => done({ error: 'closed before catching up' }, ws));
  }
  process.on('message', (m) => { if (m === 'stop') process.exit(0); });
}

async function main() {
  const { Ledger, signEvent, signerFromSeed, commitment } = await import(join(root, 'dist', 'protocol', 'index.js'));
  const { blake3 } = await import(join(root, 'dist', 'engine', 'hash.js'));
  const EVENTS = arg('events', 50_000), READERS = arg('readers', 300), SECONDS = arg('seconds', 300), WRITER = arg('writer', 1), READER_PROCS = 4;
  const hx = (...p) => blake3(p.join('/')).toString('hex');
  // commitment() gained the trace's leaf count (issue 13 finding 9); either form builds the fixture.
  const commit = (out, tr, leaves, n, salt) => (commitment.length >= 5 ? commitment(out, tr, leaves, n, salt) : commitment(out, tr, n, salt));
  const dir = mkdtempSync(join(tmpdir(), 'atoma-bench-hostile-'));
  const db = join(dir, 'ledger.db');
  try {
    // The fixture log, written in process (durability is not what is measured here).
    const t0 = performance.now();
    const L = Ledger.open(db);
    L.db.pragma('synchronous = OFF');
    const clientKey = signerFromSeed(hx('client'));
    const nodeKeys = new Map(Array.from({ length: 30 }, (_, i) => signerFromSeed(hx('node', i))).map((k) => [k.publicKey, k]));
    const task = hx('task');
    L.submitBatch([{ type: 'deposit', account: clientKey.publicKey, amount: 2 ** 40 },
      signEvent({ type: 'createTask', task, creator: clientKey.publicKey, kind: 'inference', digest: hx('model'), security: { mode: 'sampling', n: 3 }, minReputation: 0 }, clientKey)]);
    for (const k of nodeKeys.values()) {
      L.submitBatch([{ type: 'deposit', account: k.publicKey, amount: 1_000_000 }, signEvent({ type: 'register', node: k.publicKey, collateral: 1_000_000 }, k), signEvent({ type: 'subscribe', node: k.publicKey, task, price: 5 }, k)]);
    }
    const input = L.putInput(Buffer.from(JSON.stringify({ prompt: [1, 2, 3], maxTokens: 8, seed: 1 })));
    for (let q = 0; L.state.seq < EVENTS; q++) {
      const request = hx('request', q);
      const [r] = L.submitBatch([signEvent({ type: 'request', request, task, client: clientKey.publicKey, maxPrice: 5, input }, clientKey)]);
      const nodes = r.effects.find((e) => e.type === 'sampled').nodes;
      const out = hx('out', request), tr = hx('trace', request);
      L.submitBatch([
        ...nodes.map((n) => signEvent({ type: 'commit', request, node: n, commitment: commit(out, tr, 16, n, hx('salt', request, n)) }, nodeKeys.get(n))),
        ...nodes.map((n) => signEvent({ type: 'reveal', request, node: n, outputDigest: out, traceRoot: tr, traceLeaves: 16, salt: hx('salt', request, n) }, nodeKeys.get(n))),
      ]);
    }
    const logEvents = L.state.seq;
    L.close();
    const buildSeconds = (performance.now() - t0) / 1000;

    const svc = await start(db);
    // A service that dies under the load (as before issue 13's fix) ends the run and is reported.
    let finished = false, serviceExit = null, peak = { VmHWM: 0, VmRSS: 0 };
    svc.child.on('exit', (code, signal) => { serviceExit = signal ?? code; finished = true; });
    const status = () => serviceExit !== null ? peak : (peak = Object.fromEntries(readFileSync(`/proc/${svc.child.pid}/status`, 'utf8').split('\n').filter((l) => l.startsWith('Vm')).map((l) => [l.split(':')[0], Number(l.split(/\s+/)[1]) / 1024])));
    const rssBefore = status().VmRSS;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const get = (path) => timed('GET', `${svc.url}${path}`, agent);
    const post = (path, body) => timed('POST', `${svc.url}${path}`, agent, body);
    // Idle latency first, for comparison.
    const idle = [];
    for (let i = 0; i < 200; i++) idle.push((await get('/state')).ms);

    const results = [];
    const procs = [];
    const per = Math.ceil(READERS / READER_PROCS);
    const load0 = performance.now();
    for (let p = 0; p < READER_PROCS; p++) {
      const count = Math.min(per, READERS - p * per);
      if (count <= 0) break;
      const child = fork(fileURLToPath(import.meta.url), ['--reader-proc', svc.url, String(p * per), String(count), String(logEvents)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (m) => results.push({ ...m, at: performance.now() - load0 }));
      procs.push(new Promise((r) => child.once('exit', r)));
      procs[p].child = child;
    }
    const allDone = Promise.all(procs);
    const deadline = setTimeout(() => { for (const p of procs) if (p.child.connected) p.child.send('stop'); }, SECONDS * 1000);
    allDone.then(() => { finished = true; clearTimeout(deadline); });

    const stateMs = [], writeMs = [];
    let stateFailures = 0, writeFailures = 0;
    let rssPeakSampled = 0;
    const writer = signerFromSeed(hx('writer'));
    const sampler = setInterval(() => { rssPeakSampled = Math.max(rssPeakSampled, status().VmRSS); }, 100);
    await Promise.all([
      (async () => {
        while (!finished) {
          const r = await get('/state');
          if (r.status === 200) stateMs.push(r.ms);
          else stateFailures++;
        }
      })(),
      (async () => {
        for (let i = 0; WRITER && !finished; i++) {
          const body = JSON.stringify(signEvent({ type: 'deposit', account: writer.publicKey, amount: 1 }, writer));
          const r = await post('/events', body);
          if (r.status === 200) writeMs.push(r.ms);
          else writeFailures++;
        }
      })(),
    ]);
    clearInterval(sampler);
    const loadSeconds = (performance.now() - load0) / 1000;
    const { VmHWM, VmRSS } = status();
    svc.child.kill('SIGTERM');
    agent.destroy();
    for (const p of procs) if (p.child.connected) p.child.send('stop');

    const caught = results.filter((r) => r.caughtUp !== undefined);
    const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2) : null; };
    const row = {
      events: logEvents, readers: READERS, buildSeconds: +buildSeconds.toFixed(1), loadSeconds: +loadSeconds.toFixed(1),
      caughtUp: caught.length, lastSeqOk: caught.every((r) => r.lastSeqOk), refused: results.filter((r) => r.refused).length, errors: results.filter((r) => r.error).length,
      catchUpP50s: +(q(caught.map((r) => r.caughtUp), 0.5) / 1000).toFixed(2), catchUpMaxS: +(Math.max(0, ...caught.map((r) => r.caughtUp)) / 1000).toFixed(2),
      stateIdleP50ms: q(idle, 0.5), stateIdleP99ms: q(idle, 0.99), stateGets: stateMs.length, stateP50ms: q(stateMs, 0.5), stateP99ms: q(stateMs, 0.99), stateMaxMs: q(stateMs, 1),
      stateFailures, writes: writeMs.length, writeP50ms: q(writeMs, 0.5), writeP99ms: q(writeMs, 0.99), writeFailures, serviceExit,
      rssBeforeMB: +rssBefore.toFixed(1), rssPeakMB: +VmHWM.toFixed(1), rssEndMB: +VmRSS.toFixed(1),
    };
    report(`ledger service under hostile load: ${READERS} WebSocket readers catching up on ${logEvents} events, GET /state polled, a writer`, [row]);
    if (row.stateP99ms >= 50 || row.rssPeakMB >= 300 || caught.length < READERS || !row.lastSeqOk || serviceExit !== null || stateFailures || writeFailures) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function start(db) {
  // BENCH_SERVICE_NODE_ARGS: node flags for the service alone (e.g. --cpu-prof to see where its time goes).
  const flags = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...flags, atoma, 'ledger', 'serve', '--db', db, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => { buf += c; if (buf.includes('\n')) resolve({ child, ...JSON.parse(buf.split('\n')[0]) }); });
    child.once('exit', (code) => reject(new Error(`ledger exited with ${code}`)));
  });
}

/** One HTTP exchange; resolves with its status and wall time (ms). */
function timed(method, url, agent, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));   // counted as a failure
    req.end(body);
  });
}
