// Ledger service throughput and crash safety: starts `atoma ledger serve` as a child process,
// drives it with 50 concurrent loopback clients running full request lifecycles (request, 3
// commits, 3 reveals: every POST is one durable commit, every event Ed25519-signed by its actor and
// checked by the ledger, each request naming an input stored with a signed POST /inputs), then kills it with SIGKILL mid-load,
// restarts it on the same database and checks that every acknowledged commit is in the log with
// the same content and that the stored state equals a replay of the log.
//   node bench/ledger.mjs [--seconds 5] [--clients 50]
//   node bench/ledger.mjs --hostile [--events 50000] [--readers 300]   (ledger-hostile.mjs: stream catch-up under load)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { atoma, report, root } from './lib.mjs';

if (process.argv.includes('--hostile')) {
  await import('./ledger-hostile.mjs');
  process.exit();
}

const { LedgerClient, commitment, blake3, signEvent, signerFromSeed } = await import(join(root, 'dist', 'index.js')).then(async (m) => ({ ...m, ...(await import(join(root, 'dist', 'protocol', 'index.js'))) }));
const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const SECONDS = arg('seconds', 5), CLIENTS = arg('clients', 50), NODES = 30;
const hx = (...p) => blake3(p.join('/')).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'atoma-bench-ledger-'));
const db = join(dir, 'ledger.db');

function start() {
  const child = spawn(process.execPath, [atoma, 'ledger', 'serve', '--db', db, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => { buf += c; if (buf.includes('\n')) resolve({ child, ...JSON.parse(buf.split('\n')[0]) }); });
    child.once('exit', (code) => reject(new Error(`ledger exited with ${code}`)));
  });
}

// Every actor's Ed25519 key, from a fixed seed; ids are the public keys.
const clientKeys = Array.from({ length: CLIENTS }, (_, i) => signerFromSeed(hx('client', i)));
const nodeKeys = new Map(Array.from({ length: NODES }, (_, i) => signerFromSeed(hx('node', i))).map((k) => [k.publicKey, k]));

async function setup(c) {
  const task = hx('task');
  await c.submit(signEvent({ type: 'createTask', task, creator: clientKeys[0].publicKey, kind: 'inference', digest: hx('model'), security: { mode: 'sampling', n: 3 }, minReputation: 0 }, clientKeys[0]));
  // Deposits are the faucet's (on by default for `ledger serve`).
  await Promise.all(clientKeys.map((k) => c.submit({ type: 'deposit', account: k.publicKey, amount: 2 ** 40 })));
  await Promise.all([...nodeKeys.values()].map(async (k) => {
    await c.submit({ type: 'deposit', account: k.publicKey, amount: 1_000_000 });
    await c.submit(signEvent({ type: 'register', node: k.publicKey, collateral: 1_000_000 }, k));
    await c.submit(signEvent({ type: 'subscribe', node: k.publicKey, task, price: 5 }, k));
  }));
  return { task, clients: clientKeys };
}

/** One client's loop of request lifecycles; every acknowledged commit goes to `acks`. */
async function worker(url, w, task, clientKey, until, acks, phase) {
  const c = new LedgerClient(url, { maxSockets: 1 });
  const client = clientKey.publicKey;
  const submit = async (e) => {
    const r = await c.submit(e);
    acks.push({ seq: r.seq, digest: createHash('sha256').update(JSON.stringify(r.event)).digest('hex') });
    return r;
  };
  try {
    // One input per client (a request may name any stored input; storing is not an event).
    const input = await c.putInput(Buffer.from(JSON.stringify({ prompt: [1, 2, w], maxTokens: 8, seed: w })), clientKey);
    for (let q = 0; Date.now() < until.t; q++) {
      const request = hx(phase, w, q);
      const { effects } = await submit(signEvent({ type: 'request', request, task, client, maxPrice: 5, input }, clientKey));
      const nodes = effects.find((e) => e.type === 'sampled').nodes;
      const out = hx('out', request), tr = hx('trace', request);
      for (const n of nodes) await submit(signEvent({ type: 'commit', request, node: n, commitment: commitment(out, tr, 16, n, hx('salt', request, n)) }, nodeKeys.get(n)));
      for (const n of nodes) await submit(signEvent({ type: 'reveal', request, node: n, outputDigest: out, traceRoot: tr, traceLeaves: 16, salt: hx('salt', request, n) }, nodeKeys.get(n)));
    }
  } catch (e) {
    if (phase !== 'crash') throw e;   // after kill -9 the in-flight calls fail: not acknowledged
  } finally { c.close(); }
}

try {
  let svc = await start();
  const admin = new LedgerClient(svc.url, { maxSockets: 16 });
  const { task, clients } = await setup(admin);
  // Phase 1: throughput.
  const acks1 = [];
  const until = { t: Date.now() + SECONDS * 1000 };
  const t0 = performance.now();
  await Promise.all(clients.map((cl, w) => worker(svc.url, w, task, cl, until, acks1, 'load')));
  const seconds = (performance.now() - t0) / 1000;
  // Phase 2: kill -9 mid-load.
  const acks2 = [];
  const until2 = { t: Date.now() + 60_000 };
  const load = Promise.all(clients.map((cl, w) => worker(svc.url, w, task, cl, until2, acks2, 'crash')));
  await new Promise((r) => setTimeout(r, 1500));
  const ackedBeforeKill = acks2.length;
  svc.child.kill('SIGKILL');
  await load;
  admin.close();
  // Restart and check every acknowledged commit.
  svc = await start();
  const c = new LedgerClient(svc.url, { maxSockets: 4 });
  const all = [...acks1, ...acks2];
  const maxSeq = Math.max(...all.map((a) => a.seq));
  const logged = new Map();
  for (let from = 0; from <= maxSeq;) {
    const page = await c.events(from, 10_000);
    if (page.length === 0) break;
    for (const r of page) logged.set(r.seq, createHash('sha256').update(JSON.stringify(r.event)).digest('hex'));
    from = page[page.length - 1].seq + 1;
  }
  const missing = all.filter((a) => logged.get(a.seq) !== a.digest).length;
  const verify = await c.verify();
  c.close();
  svc.child.kill('SIGTERM');
  const result = {
    clients: CLIENTS, seconds: +seconds.toFixed(3), commits: acks1.length, commitsPerSecond: Math.round(acks1.length / seconds),
    requestsSettled: Math.floor(acks1.length / 7), crashAcked: acks2.length, ackedAtKill: ackedBeforeKill, lostAfterKill9: missing,
    replayMatchesState: verify.ok, seqAfterRestart: verify.seq,
  };
  report('ledger service: 50 loopback clients, durable commits (WAL, synchronous=FULL), kill -9 mid-load', [result]);
  if (missing > 0 || !verify.ok) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
