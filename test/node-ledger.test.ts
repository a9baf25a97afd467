/**
 * `atoma node` on a ledger, as processes (dist/cli/atoma.js): four nodes on different CPU paths
 * register, subscribe and serve a ledger task; a client's request settles with every node paid on
 * the same output digest. Then restart safety: one sampled node is killed (-9) before it saw the
 * request, another right after it committed; both restart on the same config and node.db, the
 * first executes and commits, the second reveals the result and salt it stored, and the request
 * settles. SIGTERM while a commitment is open: the node unsubscribes, reveals, exits 0. The
 * ledger service restarts: the nodes resume from their cursors. A node whose config digest
 * disagrees with the ledger task is refused (ERR_DIGEST_MISMATCH). A kill -9 inside an execution
 * is re-executed after the restart. In process: the embedded ledger, engine-thread ops,
 * backpressure, and a dispute decided by a referee node's single-leaf re-execution.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3, hashFile, initModel, loadModel, LlamaModel } from '../lib/index.js';
import { parseConfig } from '../lib/node/config.js';
import { decodeAssignment, encodeAssignment } from '../lib/node/assignment-input.js';
import { AssignmentStore } from '../lib/node/assignments.js';
import { execute, forge, refereeLeaf, type Assignment } from '../lib/node/executor.js';
import { commitment } from '../lib/protocol/commitment.js';
import { Trace } from '../lib/protocol/trace.js';
import type { Effect } from '../lib/protocol/types.js';
import { AtomaNode } from '../lib/node/node.js';
import { Ledger } from '../lib/protocol/ledger/store.js';
import { loadOrCreateNodeKey } from '../lib/node/keys.js';
import { EmbeddedPort, ServicePort } from '../lib/node/ledger-port.js';
import { submitRequest } from '../lib/node/requester.js';
import { serveLedger, type LedgerService } from '../lib/protocol/ledger/service.js';
import { generateSigner, signEvent, type Signer } from '../lib/protocol/signing.js';
import { cli, ISAS, root, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-node-ledger-'));
const modelPath = join(dir, 'tiny.gguf');
const children: ChildProcess[] = [];
let svc: LedgerService;
let port: ServicePort;
let client: Signer;
let digest = '';
const task = blake3('node-ledger test task').toString('hex');
const wrongTask = blake3('node-ledger test task with another model').toString('hex');
const N = 4;
const ids: string[] = [];

interface NodeProc { child: ChildProcess; stderr: () => string; exited: Promise<number | null> }

/**
 * A relay to the ledger service (HTTP and the WebSocket stream) that leaves every request for a
 * request input unanswered until release(), and resolves `held` when the first one arrives. A
 * node asks for the input inside an assignment's execution, after node.db holds the assignment
 * and before anything is computed: the node itself says when a kill -9 lands mid-execution,
 * no timer does.
 */
async function inputGate(target: string) {
  const t = new URL(target);
  let arrived!: () => void;
  const held = new Promise<void>((r) => (arrived = r));
  let holding = true;
  const server = createServer((req, res) => {
    if (holding && req.method === 'GET' && req.url?.startsWith('/inputs/')) return arrived();
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = connect(Number(t.port), t.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    release: () => { holding = false; },
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

function nodeConfig(i: number, ledgerTask = task): string {
  return `[node]\ncache_dir = "cache"\n[keys]\nnode_key = "node.key"\n` +
    `[ledger]\nkind = "service"\nurl = "${svc.url}"\nfaucet = 2000000\ncollateral = 1000000\nreferee = ${i === 0}\ndrain_ms = 20000\n` +
    `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "${modelPath}"\nledger_task = "${ledgerTask}"\nprice_per_request = ${10 + i}\n`;
}

/** Starts `atoma node` i (its own dir, key, node.db) on its own ISA and thread count. */
async function startNode(i: number, cfgName = 'node.toml'): Promise<NodeProc> {
  const env = { ...process.env, ATOMA_ISA: ISAS[i % ISAS.length], ATOMA_THREADS: String(1 + (i % 2)) };
  const child = spawn(process.execPath, [cli, 'node', '--config', join(dir, `n${i}`, cfgName), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node ${i} did not start: ${err}`)), 40_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) { clearTimeout(timer); resolve(); }
    });
    child.once('close', () => { clearTimeout(timer); reject(new Error(`node ${i} exited: ${err}`)); });
  });
  return { child, stderr: () => err, exited };
}


beforeAll(async () => {
  initModel(modelPath, { seed: 1 });
  digest = (await hashFile(modelPath)).toString('hex');
  for (let i = 0; i < N; i++) {
    mkdirSync(join(dir, `n${i}`));
    ids.push(loadOrCreateNodeKey(join(dir, `n${i}`, 'node.key')).publicKey);
  }
  // Long deadlines: a node killed after it committed has time to restart and reveal.
  svc = await serveLedger({ db: join(dir, 'ledger.db'), port: 0, tickMs: 50, referees: [ids[0]], params: { commitMs: 60_000, revealMs: 40_000 } });
  port = new ServicePort(svc.url);
  client = generateSigner();
  await port.submit(signEvent({ type: 'deposit', account: client.publicKey, amount: 10_000_000 }, client));
  await port.submit(signEvent({ type: 'createTask', task, creator: client.publicKey, kind: 'inference', digest, security: { mode: 'sampling', n: N }, minReputation: 0 }, client));
  await port.submit(signEvent({ type: 'createTask', task: wrongTask, creator: client.publicKey, kind: 'inference', digest: blake3('another model').toString('hex'), security: { mode: 'sampling', n: 1 }, minReputation: 0 }, client));
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `n${i}`, 'node.toml'), nodeConfig(i));
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  port?.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

const direct = async (a: Assignment) => execute(new LlamaModel((await loadModel(modelPath)).weights), a);
/** The `paid` effects of a request in the ledger's log, by node. */
function paidNodes(request: string): string[] {
  return svc.ledger.events(0, 100_000).flatMap((it) => it.effects).filter((x) => x.type === 'paid' && x.request === request).map((x) => (x as { node: string }).node).sort();
}

describe('atoma node on a ledger', () => {
  it('loads the ledger example of docs/node.md', () => {
    const blocks = [...readFileSync(join(root, 'docs', 'node.md'), 'utf8').matchAll(/```toml\n([\s\S]*?)```/g)];
    const cfg = parseConfig(blocks[1][1], '/srv/atoma');
    expect(cfg.ledger).toEqual({ kind: 'service', url: 'http://127.0.0.1:7070' });
    expect(cfg.participation).toEqual({ faucet: 2000000, collateral: 1000000, referee: false, drainMs: 30000 });
    expect(cfg.tasks[0]).toMatchObject({ ledgerTask: 'ab'.repeat(32), pricePerRequest: 10 });
  });

  it('checks inputs and the [ledger] keys with typed errors', () => {
    const a: Assignment = { prompt: [1, 2], maxTokens: 3, seed: 4, temperature: 0.5 };
    const { bytes, digest: d } = encodeAssignment(a);
    expect(bytes.toString()).toBe('{"maxTokens":3,"prompt":[1,2],"seed":4,"temperature":0.5}');
    expect(decodeAssignment(bytes, d)).toEqual(a);
    const err = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as { code: string }).code; } return 'none'; };
    expect(err(() => decodeAssignment(bytes, blake3('x').toString('hex')))).toBe('ERR_DIGEST_MISMATCH');
    const spaced = Buffer.from('{"maxTokens":3, "prompt":[1,2],"seed":4}');
    expect(err(() => decodeAssignment(spaced, blake3(spaced).toString('hex')))).toBe('ERR_EVENT');
    const extra = Buffer.from('{"evil":1,"maxTokens":3,"prompt":[1,2],"seed":4}');
    expect(err(() => decodeAssignment(extra, blake3(extra).toString('hex')))).toBe('ERR_EVENT');
    const task = (x: string) => `[[tasks]]\nname = "t"\nmodel = "${'ab'.repeat(32)}"\npath = "m.gguf"\n${x}`;
    for (const [text, key] of [
      [task('ledger_task = "xyz"\n'), 'ledger_task'],
      [task('price_per_request = 3\n'), 'price_per_request needs'],
      ['[ledger]\nreferee = "yes"\n' + task(''), 'ledger.referee'],
      ['[ledger]\nfaucet = -1\n' + task(''), 'ledger.faucet'],
      ['[ledger]\ncollateral = 0\n' + task(''), 'ledger.collateral'],
    ] as const) {
      try {
        parseConfig(text, '/x');
        throw new Error('accepted');
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_NODE_CONFIG');
        expect((e as Error).message).toContain(key);
      }
    }
  });

  it('serves; kill -9 and restart, SIGTERM drain, ledger restart; refuses a digest mismatch', async () => {
    const nodes = await Promise.all(Array.from({ length: N }, (_, i) => startNode(i)));
    for (const id of ids) expect(svc.ledger.state.nodes[id]?.subscriptions[task]).toBeGreaterThanOrEqual(10);

    // 1. Every node is sampled (n = 4), executes on its own path, and is paid for the same result.
    const a1: Assignment = { prompt: [5, 17, 99, 3], maxTokens: 8, seed: 41, temperature: 0.8 };
    const r1 = await submitRequest(port, client, { task, assignment: a1, maxPrice: 20, minNodes: N, timeoutMs: 60_000 });
    expect(r1.outcome).toBe('settled');
    expect(r1.outputDigest).toBe((await direct(a1)).outputDigest);
    expect([...r1.nodes].sort()).toEqual([...ids].sort());
    expect(paidNodes(r1.request)).toEqual([...ids].sort());
    expect(r1.charged).toBeGreaterThan(0);
    await until('payment logs', () => nodes.every((n) => n.stderr().includes('"msg":"paid"')));

    // The CLI client: the same path through `atoma request`.
    const cliRun = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, [cli, 'request', '--ledger', svc.url, '--task', task, '--tokens', '5,17,99,3', '--max-tokens', '8', '--seed', '41',
        '--temperature', '0.8', '--max-price', '20', '--min-nodes', String(N), '--key', join(dir, 'client.key'), '--faucet', '1000000', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      c.stdout.on('data', (b: Buffer) => { out += b; });
      c.stderr.on('data', (b: Buffer) => { err += b; });
      c.on('close', (code) => resolve({ code, out, err }));
    });
    expect(cliRun.err).toBe('');
    expect(cliRun.code).toBe(0);
    const viaCli = JSON.parse(cliRun.out) as { outcome: string; outputDigest: string; nodes: string[] };
    expect(viaCli).toMatchObject({ outcome: 'settled', outputDigest: r1.outputDigest });   // same assignment, same result
    expect(viaCli.nodes).toHaveLength(N);

    // 2. Node 3 dies before the request; node 1 dies right after it committed.
    nodes[3].child.kill('SIGKILL');
    expect(await nodes[3].exited).toBeNull();
    const a2: Assignment = { prompt: [7, 7, 300], maxTokens: 6, seed: 2 };
    const request = blake3('node-ledger test request 2').toString('hex');
    const pending = submitRequest(port, client, { task, assignment: a2, maxPrice: 20, minNodes: N, timeoutMs: 80_000, request });
    const slot = (i: number) => svc.ledger.state.requests[request]?.slots.find((s) => s.node === ids[i]);
    await until('node 1 committed', () => slot(1)?.status === 'committed');
    nodes[1].child.kill('SIGKILL');
    expect(await nodes[1].exited).toBeNull();
    await until('nodes 0 and 2 committed', () => slot(0)?.status === 'committed' && slot(2)?.status === 'committed');
    expect(slot(3)?.status).toBe('committing');   // the reveal phase waits for node 3
    const back3 = await startNode(3);
    const back1 = await startNode(1);
    const r2 = await pending;
    expect(r2.outcome).toBe('settled');
    expect(r2.outputDigest).toBe((await direct(a2)).outputDigest);
    expect([...r2.nodes].sort()).toEqual([...ids].sort());
    expect(paidNodes(request)).toEqual([...ids].sort());
    // Node 1 opened its commitment with the stored salt, without executing again.
    await until('node 1 logs its reveal', () => back1.stderr().includes('"msg":"reveal submitted","request":"' + request));
    expect(back1.stderr()).not.toContain('"msg":"executed","request":"' + request);
    // It was killed once the ledger had its commitment: it executed (result and salt stored)
    // and either saw its commit acknowledged or finds it on the ledger (ERR_DUPLICATE) after the restart.
    expect(nodes[1].stderr()).toContain('"msg":"executed","request":"' + request);
    expect(nodes[1].stderr().includes('"msg":"commit submitted","request":"' + request) || back1.stderr().includes('"msg":"commit was already on the ledger","request":"' + request)).toBe(true);
    expect(back3.stderr()).toContain('"msg":"executed","request":"' + request);
    expect(svc.ledger.verify()).toBe(true);

    // SIGTERM while committed and waiting for the reveal phase: node 1 unsubscribes, stays to
    // reveal once the last node (3, restarted) commits, then exits 0.
    back3.child.kill('SIGKILL');
    await back3.exited;
    const request4 = blake3('node-ledger test request 4').toString('hex');
    const a4: Assignment = { prompt: [9, 8, 7], maxTokens: 4, seed: 4 };
    const pending4 = submitRequest(port, client, { task, assignment: a4, maxPrice: 20, minNodes: N, timeoutMs: 60_000, request: request4 });
    const slot4 = (i: number) => svc.ledger.state.requests[request4]?.slots.find((s) => s.node === ids[i]);
    await until('node 1 committed request 4', () => slot4(1)?.status === 'committed');
    back1.child.kill('SIGTERM');
    await until('node 1 unsubscribed', () => svc.ledger.state.nodes[ids[1]].subscriptions[task] === undefined);
    expect(back1.child.exitCode).toBeNull();   // still there: its commitment is open
    const again3 = await startNode(3);
    const r4 = await pending4;
    expect(r4).toMatchObject({ outcome: 'settled', outputDigest: (await direct(a4)).outputDigest });
    expect(r4.nodes).toHaveLength(N);
    expect(await back1.exited).toBe(0);
    expect(back1.stderr()).toContain('"msg":"reveal submitted","request":"' + request4);
    const again1 = await startNode(1);   // subscribes again

    // 3. A config whose model digest is not the ledger task's: refused, nothing registered.
    mkdirSync(join(dir, 'n9'));
    writeFileSync(join(dir, 'n9', 'node.toml'), `[keys]\nnode_key = "node.key"\n[ledger]\nkind = "service"\nurl = "${svc.url}"\nfaucet = 2000000\n` +
      `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "${modelPath}"\nledger_task = "${wrongTask}"\n`);
    await expect(startNode(9)).rejects.toThrow(/ERR_DIGEST_MISMATCH/);
    expect(Object.keys(svc.ledger.state.nodes)).toHaveLength(N);

    // 4. The ledger service restarts: every node resumes its stream from its cursor.
    const ledgerPort = svc.port;
    await svc.close();
    port.close();
    svc = await serveLedger({ db: join(dir, 'ledger.db'), port: ledgerPort, tickMs: 50 });
    port = new ServicePort(svc.url);
    const a3: Assignment = { prompt: [400, 401], maxTokens: 5, seed: 8 };
    const r3 = await submitRequest(port, client, { task, assignment: a3, maxPrice: 20, minNodes: N, timeoutMs: 60_000 });
    expect(r3).toMatchObject({ outcome: 'settled', outputDigest: (await direct(a3)).outputDigest });
    expect(r3.nodes).toHaveLength(N);
    expect(again1.stderr()).toContain('"msg":"ledger stream broke; resuming from the cursor"');

    // 5. SIGTERM: unsubscribe, exit 0.
    const live = [nodes[0], again1, nodes[2], again3];
    for (const n of live) n.child.kill('SIGTERM');
    expect(await Promise.all(live.map((n) => n.exited))).toEqual([0, 0, 0, 0]);
    for (const id of ids) expect(svc.ledger.state.nodes[id].subscriptions[task]).toBeUndefined();
  }, 120_000);

  it('kill -9 in the middle of an execution: the restart re-executes from node.db and the request settles', async () => {
    // The node reaches the ledger through a gate that holds its request for the assignment's
    // input: the kill lands while the execution waits there, whatever this machine's speed.
    const gate = await inputGate(svc.url);
    const midPath = join(dir, 'mid.gguf');
    initModel(midPath, { seed: 2, dim: 128, layers: 2, ff: 256, context: 256 });
    const midDigest = (await hashFile(midPath)).toString('hex');
    const task3 = blake3('mid task').toString('hex');
    await port.submit(signEvent({ type: 'createTask', task: task3, creator: client.publicKey, kind: 'inference', digest: midDigest, security: { mode: 'sampling', n: 1 }, minReputation: 0 }, client));
    mkdirSync(join(dir, 'n5'));
    writeFileSync(join(dir, 'n5', 'node.toml'), `[node]\ncache_dir = "cache"\n[keys]\nnode_key = "node.key"\n[ledger]\nkind = "service"\nurl = "${gate.url}"\nfaucet = 1000000\n` +
      `[[tasks]]\nname = "mid"\nmodel = "${midDigest}"\npath = "${midPath}"\nledger_task = "${task3}"\nprice_per_request = 3\n`);
    try {
      const first = await startNode(5);
      const a: Assignment = { prompt: [1, 2, 3], maxTokens: 24, seed: 77, temperature: 1 };
      const pending = submitRequest(port, client, { task: task3, assignment: a, maxPrice: 3, timeoutMs: 60_000 });
      await gate.held;
      // Logged before the input was asked for; the pipe may deliver it after the gate saw the request.
      await until('the assignment log line', () => first.stderr().includes('"msg":"assigned"'));
      first.child.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      expect(first.stderr()).not.toContain('"msg":"executed"');
      gate.release();
      const second = await startNode(5);
      const r = await pending;
      expect(r.outcome).toBe('settled');
      expect(r.outputDigest).toBe(execute(new LlamaModel((await loadModel(midPath)).weights), a).outputDigest);
      expect(second.stderr()).toContain('"msg":"resuming assignments","open":1');
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      gate.close();
    }
  }, 60_000);

  it('in process on the embedded ledger: engine-thread ops equal the executor, the assignment is persisted', async () => {
    const edir = join(dir, 'embedded');
    mkdirSync(edir);
    const me = loadOrCreateNodeKey(join(edir, 'node.key')).publicKey;
    const etask = blake3('embedded task').toString('hex');
    const c = generateSigner();
    const L = Ledger.open(join(edir, 'ledger.db'), { referees: [me] });
    L.submit(signEvent({ type: 'deposit', account: c.publicKey, amount: 1_000_000 }, c));
    L.submit(signEvent({ type: 'createTask', task: etask, creator: c.publicKey, kind: 'inference', digest, security: { mode: 'sampling', n: 1 }, minReputation: 0 }, c));
    L.close();
    const logs: string[] = [];
    const node = await AtomaNode.start(parseConfig(`[node]\ncache_dir = "cache"\n[limits]\nqueue_length = 2\n[ledger]\nkind = "embedded"\npath = "ledger.db"\nfaucet = 1000000\nreferee = true\n` +
      `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "${modelPath}"\nledger_task = "${etask}"\nprice_per_request = 5\n`, edir), { port: 0, logger: (_l, msg) => { logs.push(msg); } });
    const a: Assignment = { prompt: [1, 2, 3], maxTokens: 5, seed: 9, temperature: 0.5 };
    let request = '';
    try {
      const r = await submitRequest(node.ledger, c, { task: etask, assignment: a, maxPrice: 5 });
      request = r.request;
      expect(r).toMatchObject({ outcome: 'settled', nodes: [me], outputDigest: (await direct(a)).outputDigest });
      await until('the payment', () => node.participant!.totals.paid === 5);
      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      expect(metrics).toContain('atoma_ledger_amount_total{kind="paid"} 5');
      expect(metrics).toContain('atoma_ledger_amount_total{kind="slashed"} 0');
      // The engine thread's ops are the executor's functions.
      const model = new LlamaModel((await loadModel(modelPath)).weights);
      const want = execute(model, a);
      const got = await node.queue.submitOp(digest, { op: 'execute', assignment: a });
      expect(got.traceRoot).toBe(want.traceRoot);
      expect(Buffer.from(got.leaves).equals(Buffer.concat(want.leaves))).toBe(true);
      const leaf = await node.queue.submitOp(digest, { op: 'refereeLeaf', assignment: a, index: 5 });
      expect(leaf).toEqual(refereeLeaf(model, a, 5));
      expect(leaf.leafHash).toBe(want.leaves[5].toString('hex'));
      // Backpressure: four requests at once against a backlog bound of 2 (queue_length): the node
      // unsubscribes at 2 uncommitted assignments, finishes all four, subscribes again.
      const many = await Promise.all([20, 21, 22, 23].map((seed) => submitRequest(node.ledger, c, { task: etask, assignment: { ...a, seed }, maxPrice: 5 })));
      expect(many.map((m) => m.outcome)).toEqual(['settled', 'settled', 'settled', 'settled']);
      expect(logs).toContain('backlog full: unsubscribing');
      await until('subscribed again', () => logs.includes('backlog drained: subscribing again') && node.participant!.backpressured === false);
      const mine = (node.ledger as EmbeddedPort).ledger.events(0, 10_000).map((it) => it.event).filter((e) => (e.type === 'subscribe' || e.type === 'unsubscribe') && e.node === me).map((e) => e.type);
      expect(mine).toEqual(['subscribe', 'unsubscribe', 'subscribe']);
      await until('the node saw all five settle', () => logs.filter((m) => m === 'settled').length === 5);
    } finally {
      await node.close();
    }
    const store = new AssignmentStore(join(edir, 'cache', 'node.db'));
    try {
      expect(store.get(request)).toMatchObject({ state: 'closed', outcome: 'settled', task: etask, leaves: null });
      expect(store.get(request)!.salt).toMatch(/^[0-9a-f]{64}$/);
      expect(store.cursor).toBeGreaterThan(0);
      expect(store.open()).toEqual([]);
      expect(store.counts()).toEqual({ closed: 5 });
    } finally {
      store.close();
    }
  }, 60_000);

  it('a dispute: the node answers bisection rounds from its trace, a referee node re-executes the leaf, the forger loses', async () => {
    const task2 = blake3('dispute task').toString('hex');
    await port.submit(signEvent({ type: 'createTask', task: task2, creator: client.publicKey, kind: 'inference', digest, security: { mode: 'sampling', n: 2 }, minReputation: 0 }, client));
    // The forger: a key this test signs for, on the ledger like any node.
    const x = generateSigner();
    await port.submit(signEvent({ type: 'deposit', account: x.publicKey, amount: 1_000_000 }, x));
    await port.submit(signEvent({ type: 'register', node: x.publicKey, collateral: 1_000_000 }, x));
    await port.submit(signEvent({ type: 'subscribe', node: x.publicKey, task: task2, price: 5 }, x));
    // The referee (n0's key, named in genesis) serves no ledger task; the honest node serves task2.
    writeFileSync(join(dir, 'n0', 'referee.toml'), `[node]\ncache_dir = "cache-referee"\n[keys]\nnode_key = "node.key"\n[ledger]\nkind = "service"\nurl = "${svc.url}"\nreferee = true\n` +
      `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "${modelPath}"\n`);
    mkdirSync(join(dir, 'honest'));
    writeFileSync(join(dir, 'honest', 'node.toml'), `[node]\ncache_dir = "cache"\n[keys]\nnode_key = "node.key"\n[ledger]\nkind = "service"\nurl = "${svc.url}"\nfaucet = 1000000\n` +
      `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "${modelPath}"\nledger_task = "${task2}"\nprice_per_request = 5\n`);
    const logs: string[] = [];
    const logger = (level: string, msg: string, f?: Record<string, unknown>) => { logs.push(JSON.stringify({ level, msg, ...f })); };
    const referee = await AtomaNode.start(join(dir, 'n0', 'referee.toml'), { port: 0, logger });
    const honest = await AtomaNode.start(join(dir, 'honest', 'node.toml'), { port: 0, logger });
    const model = new LlamaModel((await loadModel(modelPath)).weights);
    const a: Assignment = { prompt: [11, 12, 13, 14], maxTokens: 6, seed: 3, temperature: 0.7 };
    const good = execute(model, a);
    const bad = forge(model, a, good, 0);
    const badTrace = Trace.fromLeafHashes(bad.leaves);
    const salt = blake3('forger salt').toString('hex');
    const request = blake3('dispute request').toString('hex');
    const seen: Effect[] = [];
    const act = (e: Record<string, unknown>) => { port.submit(signEvent(e as { type: 'commit' }, x)).catch((err: Error) => logs.push(`forger: ${err.message}`)); };
    const stop = port.stream((await port.head()).seq, (item) => {
      for (const fx of item.effects) {
        if (!('request' in fx) || fx.request !== request) continue;
        seen.push(fx);
        if (fx.type === 'sampled' && fx.nodes.includes(x.publicKey)) act({ type: 'commit', request, node: x.publicKey, commitment: commitment(bad.outputDigest, bad.traceRoot, bad.leaves.length, x.publicKey, salt) });
        if (fx.type === 'revealPhase') act({ type: 'reveal', request, node: x.publicKey, outputDigest: bad.outputDigest, traceRoot: bad.traceRoot, traceLeaves: bad.leaves.length, salt });
        if (fx.type === 'bisectRound') {
          const [left, right] = badTrace.children(fx.lo, fx.hi);
          act({ type: 'bisect', request, node: x.publicKey, left, right });
        }
      }
    }, () => {});
    try {
      const r = await submitRequest(port, client, { task: task2, assignment: a, maxPrice: 5, minNodes: 2, timeoutMs: 60_000, request });
      expect(r.outcome).toBe('settled');
      expect(r.outputDigest).toBe(good.outputDigest);
      expect(r.nodes).toEqual([honest.key.publicKey]);
      const types = seen.map((e) => e.type);
      expect(types).toContain('bisectRound');
      expect(seen.find((e) => e.type === 'disputeOpened')).toMatchObject({ mode: 'leaf' });
      expect(seen.find((e) => e.type === 'disputeResolved')).toMatchObject({ winner: [honest.key.publicKey], losers: [x.publicKey] });
      expect(seen.find((e) => e.type === 'slashed')).toMatchObject({ node: x.publicKey, reason: 'dispute' });
      await until('the referee log', () => logs.some((l) => l.includes('"msg":"re-executed"') && l.includes('"mode":"leaf"')));
      await until('the reward', () => honest.participant!.totals.rewarded > 0 && honest.participant!.totals.paid === 5);
      // The referee event is signed by the referee key.
      const reexec = svc.ledger.events(0, 100_000).find((it) => it.event.type === 'reexecuted' && it.event.request === request);
      expect(reexec?.event).toMatchObject({ referee: ids[0] });
    } finally {
      stop();
      await honest.close();
      await referee.close();
    }
  }, 60_000);
});
