/**
 * The ledger-connected node beyond plain inference (issue 5), as `atoma node` processes on a
 * ledger service: a `wasm` task (examples/hash.wat) runs through the ledger and settles on the
 * output digest `atoma wasm run --json` gives; refusals are results (an out-of-range token id and
 * an exhausted fuel budget settle as refusals on 3 nodes, nobody slashed); a forged WASM result
 * loses a one-leaf dispute to the referee's re-execution; a stream that stays open but goes
 * silent (a proxy that stops forwarding) is noticed by its pings and resumed, and the next request
 * settles on all three nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3, exampleWasm, hashFile, initModel, merkleLeaf } from '../lib/index.js';
import { parseConfig } from '../lib/node/config.js';
import { loadOrCreateNodeKey } from '../lib/node/keys.js';
import { ServicePort } from '../lib/node/ledger-port.js';
import { refusalOf, refusalResult } from '../lib/node/refusal.js';
import { submitRequest } from '../lib/node/requester.js';
import { decodeWasmAssignment, encodeWasmAssignment, wasmAssignment } from '../lib/node/wasm-assignment.js';
import { commitment } from '../lib/protocol/commitment.js';
import { serveLedger, type LedgerService } from '../lib/protocol/ledger/service.js';
import { generateSigner, signEvent, type Signer } from '../lib/protocol/signing.js';
import { cli, ISAS, root, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-node-wasm-'));
const modelPath = join(dir, 'tiny.gguf');
const wasmPath = join(dir, 'hash.wasm');
const children: ChildProcess[] = [];
let svc: LedgerService;
let port: ServicePort;
let client: Signer;
let modelDigest = '';
let moduleDigest = '';
const inferTask = blake3('wasm test: inference task').toString('hex');
const wasmTask = blake3('wasm test: wasm task').toString('hex');
const disputeTask = blake3('wasm test: wasm dispute task').toString('hex');
const disputeInferTask = blake3('wasm test: inference dispute task').toString('hex');
const N = 3;
const ids: string[] = [];
const logs: string[] = ['', '', ''];

/**
 * A TCP proxy to the ledger service whose WebSocket connections can be stalled: open, but
 * forwarding nothing in either direction (a dead peer that sends no close). HTTP passes.
 */
class StallProxy {
  private server!: net.Server;
  private readonly streams = new Set<{ stalled: boolean; a: net.Socket; b: net.Socket }>();
  port = 0;
  async start(target: number): Promise<void> {
    this.server = net.createServer((a) => {
      const b = net.connect(target, '127.0.0.1');
      const pair = { stalled: false, a, b };
      let first = true;
      a.on('data', (d) => {
        if (first && d.toString('latin1').startsWith('GET /stream')) this.streams.add(pair);
        first = false;
        if (!pair.stalled) b.write(d);
      });
      b.on('data', (d) => { if (!pair.stalled) a.write(d); });
      const end = () => { a.destroy(); b.destroy(); this.streams.delete(pair); };
      a.on('error', end); b.on('error', end); a.on('close', end); b.on('close', end);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Stalls every open stream connection; returns how many. */
  stall(): number {
    for (const p of this.streams) p.stalled = true;
    return this.streams.size;
  }
  close(): void {
    for (const p of this.streams) { p.a.destroy(); p.b.destroy(); }
    this.server.close();
  }
}
const proxy = new StallProxy();

function nodeConfig(i: number): string {
  const url = i === 2 ? `http://127.0.0.1:${proxy.port}` : svc.url;
  return `[node]\ncache_dir = "cache"\n[keys]\nnode_key = "node.key"\n` +
    `[ledger]\nkind = "service"\nurl = "${url}"\nfaucet = 2000000\nreferee = ${i === 0}\nping_ms = 300\n` +
    `[[tasks]]\nname = "tiny"\nmodel = "${modelDigest}"\npath = "${modelPath}"\nledger_task = "${inferTask}"\nprice_per_request = 10\n` +
    `[[functions]]\nname = "hash"\nmodule = "${moduleDigest}"\npath = "${wasmPath}"\nfuel = 10000000\nledger_task = "${wasmTask}"\nprice_per_request = 7\n` +
    (i === 1 ? `[[functions]]\nname = "hash2"\nmodule = "${moduleDigest}"\npath = "${wasmPath}"\nfuel = 10000000\nledger_task = "${disputeTask}"\nprice_per_request = 5\n` +
      `[[tasks]]\nname = "tiny2"\nmodel = "${modelDigest}"\npath = "${modelPath}"\nledger_task = "${disputeInferTask}"\nprice_per_request = 5\n` : '');
}

async function startNode(i: number): Promise<ChildProcess> {
  const env = { ...process.env, ATOMA_ISA: ISAS[i % ISAS.length], ATOMA_THREADS: '1' };
  const child = spawn(process.execPath, [cli, 'node', '--config', join(dir, `n${i}`, 'node.toml'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  child.stderr!.on('data', (c: Buffer) => { logs[i] += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${i} did not start: ${logs[i]}`)), 40_000);
    child.stdout!.once('data', () => { clearTimeout(timer); resolve(); });
    child.once('close', () => { clearTimeout(timer); reject(new Error(`node ${i} exited: ${logs[i]}`)); });
  });
  return child;
}

function runCli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (b: Buffer) => { out += b; });
    c.stderr.on('data', (b: Buffer) => { err += b; });
    c.on('close', (code) => resolve({ code, out, err }));
  });
}


const effectsOf = (request: string) => svc.ledger.events(0, 100_000).flatMap((it) => it.effects).filter((x) => 'request' in x && x.request === request);

beforeAll(async () => {
  initModel(modelPath, { seed: 1 });
  modelDigest = (await hashFile(modelPath)).toString('hex');
  const wasm = await exampleWasm('hash');
  writeFileSync(wasmPath, wasm);
  moduleDigest = blake3(wasm).toString('hex');
  for (let i = 0; i < N; i++) {
    mkdirSync(join(dir, `n${i}`));
    ids.push(loadOrCreateNodeKey(join(dir, `n${i}`, 'node.key')).publicKey);
  }
  svc = await serveLedger({ db: join(dir, 'ledger.db'), port: 0, tickMs: 50, referees: [ids[0]], params: { commitMs: 20_000, revealMs: 10_000 } });
  await proxy.start(svc.port);
  port = new ServicePort(svc.url);
  client = generateSigner();
  await port.submit(signEvent({ type: 'deposit', account: client.publicKey, amount: 10_000_000 }, client));
  const create = (task: string, kind: 'inference' | 'wasm', digest: string, n: number) =>
    port.submit(signEvent({ type: 'createTask', task, creator: client.publicKey, kind, digest, security: { mode: 'sampling', n }, minReputation: 0 }, client));
  await create(inferTask, 'inference', modelDigest, N);
  await create(wasmTask, 'wasm', moduleDigest, N);
  await create(disputeTask, 'wasm', moduleDigest, 2);
  await create(disputeInferTask, 'inference', modelDigest, 2);
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `n${i}`, 'node.toml'), nodeConfig(i));
  await Promise.all([0, 1, 2].map(startNode));
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  port?.close();
  proxy.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ledger tasks of kind wasm, refusals, silent streams', () => {
  it('encodes WASM assignments canonically and refusals as one-leaf results', () => {
    const a = wasmAssignment(Buffer.from('hi'), { fuel: 5, seed: 2 });
    const { bytes, digest } = encodeWasmAssignment(a);
    expect(bytes.toString()).toBe('{"fuel":5,"input":"aGk=","memoryMb":64,"seed":2,"timestampNs":0}');
    expect(decodeWasmAssignment(bytes, digest)).toEqual(a);
    const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as { code: string }).code; } return 'none'; };
    const unpadded = Buffer.from('{"fuel":5,"input":"aGk","memoryMb":64,"seed":2,"timestampNs":0}');
    expect(code(() => decodeWasmAssignment(unpadded, blake3(unpadded).toString('hex')))).toBe('ERR_EVENT');
    expect(code(() => decodeWasmAssignment(bytes, blake3('x').toString('hex')))).toBe('ERR_DIGEST_MISMATCH');
    const r = refusalResult('ERR_RANGE');
    expect(r.outputDigest).toBe(blake3('atoma-refusal/v1\nERR_RANGE\n').toString('hex'));
    expect(r.traceRoot).toBe(merkleLeaf('atoma-refusal/v1\nERR_RANGE\n').toString('hex'));
    expect(Buffer.from(r.leaves).toString('hex')).toBe(r.traceRoot);
    expect(refusalOf(r.outputDigest)).toBe('ERR_RANGE');
    expect(refusalOf(blake3('x').toString('hex'))).toBeNull();
    // node.toml: a function serves a ledger task; ping_ms is for the service; a node may serve only functions.
    const fn = (x: string) => `[[functions]]\nname = "f"\nmodule = "${'cd'.repeat(32)}"\npath = "f.wasm"\n${x}`;
    const cfg = parseConfig('[ledger]\nkind = "service"\nurl = "http://127.0.0.1:1"\nping_ms = 250\n' + fn(`ledger_task = "${'ef'.repeat(32)}"\nprice_per_request = 3\nmemory_mb = 32\n`), '/x');
    expect(cfg.ledger).toEqual({ kind: 'service', url: 'http://127.0.0.1:1', pingMs: 250 });
    expect(cfg.tasks).toEqual([]);
    expect(cfg.functions[0]).toMatchObject({ ledgerTask: 'ef'.repeat(32), pricePerRequest: 3, memoryMb: 32 });
    for (const [text, key] of [
      ['[ledger]\nping_ms = 250\n' + fn(''), 'ledger.ping_ms'],
      [fn('price_per_request = 3\n'), 'price_per_request needs'],
      [fn('memory_mb = 5000\n'), 'memory_mb'],
      [fn(`ledger_task = "${'ef'.repeat(32)}"\n`) + `[[tasks]]\nname = "t"\nmodel = "${'ab'.repeat(32)}"\npath = "m.gguf"\nledger_task = "${'ef'.repeat(32)}"\n`, 'used twice'],
    ] as const) expect(() => parseConfig(text, '/x')).toThrow(key);
  });

  it('runs examples/hash.wat through the ledger on 3 nodes: settled on the digest `atoma wasm run` gives', async () => {
    for (const id of ids) expect(svc.ledger.state.nodes[id]?.subscriptions[wasmTask]).toBe(7);
    const inputFile = join(dir, 'input.txt');
    writeFileSync(inputFile, 'the quick brown fox\n');
    const local = await runCli(['wasm', 'run', join(root, 'examples', 'hash.wat'), '--input', inputFile, '--json']);
    expect(local.code).toBe(0);
    const want = JSON.parse(local.out) as { outputDigest: string; error: unknown };
    expect(want.error).toBeNull();
    const viaLedger = await runCli(['request', '--ledger', svc.url, '--task', wasmTask, '--input', inputFile, '--fuel', '1000000', '--max-price', '10',
      '--min-nodes', String(N), '--key', join(dir, 'client.key'), '--faucet', '1000000', '--timeout', '40', '--json']);
    expect(viaLedger.err).toBe('');
    expect(viaLedger.code).toBe(0);
    const r = JSON.parse(viaLedger.out) as { outcome: string; outputDigest: string; nodes: string[]; refusal: string | null; traceRoot: string };
    expect(r).toMatchObject({ outcome: 'settled', outputDigest: want.outputDigest, refusal: null });
    expect([...r.nodes].sort()).toEqual([...ids].sort());
  }, 60_000);

  it('refusals settle: an out-of-range token id and an exhausted fuel budget, on 3 nodes, nobody slashed', async () => {
    const bad = await submitRequest(port, client, { task: inferTask, assignment: { prompt: [1, 100_000, 2], maxTokens: 4, seed: 1 }, maxPrice: 10, minNodes: N, timeoutMs: 40_000 });
    expect(bad).toMatchObject({ outcome: 'settled', refusal: 'ERR_RANGE', outputDigest: refusalResult('ERR_RANGE').outputDigest, traceRoot: refusalResult('ERR_RANGE').traceRoot });
    expect([...bad.nodes].sort()).toEqual([...ids].sort());
    expect(bad.charged).toBeGreaterThan(0);   // a refusal is paid for like any result (docs/protocol.md)
    const fuel = await submitRequest(port, client, { task: wasmTask, wasm: wasmAssignment(Buffer.alloc(4096, 7), { fuel: 100 }), maxPrice: 10, minNodes: N, timeoutMs: 40_000 });
    expect(fuel).toMatchObject({ outcome: 'settled', refusal: 'ERR_WASM_OUT_OF_FUEL' });
    expect(fuel.nodes).toHaveLength(N);
    for (const req of [bad.request, fuel.request]) {
      const fx = effectsOf(req);
      expect(fx.filter((x) => x.type === 'slashed')).toEqual([]);
      expect(fx.filter((x) => x.type === 'paid')).toHaveLength(N);
    }
    for (let i = 0; i < N; i++) expect(logs[i]).toContain(`"refusal":"ERR_RANGE"`);
  }, 60_000);

  it('forged results lose to the referee: WASM output and WASM refusal (one leaf), inference refusal (full re-execution)', async () => {
    const cases = [
      { name: 'output', task: disputeTask, work: { wasm: wasmAssignment(Buffer.from('dispute me'), { fuel: 1_000_000 }) }, refusal: null, leaves: 1 },
      { name: 'refusal', task: disputeTask, work: { wasm: wasmAssignment(Buffer.alloc(4096, 7), { fuel: 100 }) }, refusal: 'ERR_WASM_OUT_OF_FUEL', leaves: 1 },
      // The forger claims an 8-leaf generation where the honest node refused: lengths differ, the referee re-runs it all.
      { name: 'inference refusal', task: disputeInferTask, work: { assignment: { prompt: [70_000], maxTokens: 4, seed: 1 } }, refusal: 'ERR_RANGE', leaves: 8 },
    ];
    for (const c of cases) {
      // A fresh forger each time (a lost dispute takes all its collateral).
      const x = generateSigner();
      await port.submit(signEvent({ type: 'deposit', account: x.publicKey, amount: 1_000_000 }, x));
      await port.submit(signEvent({ type: 'register', node: x.publicKey, collateral: 1_000_000 }, x));
      await port.submit(signEvent({ type: 'subscribe', node: x.publicKey, task: c.task, price: 5 }, x));
      const request = blake3(`wasm dispute request: ${c.name}`).toString('hex');
      const forged = { outputDigest: blake3('forged stdout').toString('hex'), traceRoot: merkleLeaf('forged').toString('hex') };
      const salt = blake3('forger salt').toString('hex');
      const act = (e: Record<string, unknown>) => { port.submit(signEvent(e as { type: 'commit' }, x)).catch(() => {}); };
      const stop = port.stream((await port.head()).seq, (item) => {
        for (const fx of item.effects) {
          if (!('request' in fx) || fx.request !== request) continue;
          if (fx.type === 'sampled' && fx.nodes.includes(x.publicKey)) act({ type: 'commit', request, node: x.publicKey, commitment: commitment(forged.outputDigest, forged.traceRoot, c.leaves, x.publicKey, salt) });
          if (fx.type === 'revealPhase') act({ type: 'reveal', request, node: x.publicKey, ...forged, traceLeaves: c.leaves, salt });
        }
      }, () => {});
      try {
        const r = await submitRequest(port, client, { task: c.task, ...c.work, maxPrice: 5, minNodes: 2, timeoutMs: 40_000, request });
        expect(r).toMatchObject({ outcome: 'settled', nodes: [ids[1]], refusal: c.refusal });
        const fx = effectsOf(request);
        // One leaf on each side: no bisection round, the referee re-executes leaf 0 (the whole call).
        const mode = c.leaves === 1 ? 'leaf' : 'full';
        expect(fx.find((e) => e.type === 'disputeOpened')).toMatchObject({ mode });
        expect(fx.filter((e) => e.type === 'bisectRound')).toEqual([]);
        expect(fx.find((e) => e.type === 'reexecute')).toMatchObject({ mode, leafIndex: mode === 'leaf' ? 0 : -1 });
        expect(fx.find((e) => e.type === 'disputeResolved')).toMatchObject({ winner: [ids[1]], losers: [x.publicKey] });
        expect(fx.filter((e) => e.type === 'slashed')).toEqual([expect.objectContaining({ node: x.publicKey, reason: 'dispute' })]);
        await until('the referee log', () => logs[0].includes(`"msg":"re-executed","request":"${request}","mode":"${mode}","leafIndex":${mode === 'leaf' ? 0 : -1}`));
      } finally {
        stop();
      }
    }
  }, 60_000);

  it('a silent stream (open, stalled) is noticed by its pings; the node resumes and the next request settles on all 3', async () => {
    expect(proxy.stall()).toBeGreaterThanOrEqual(1);
    await until('node 2 notices the silent stream', () => logs[2].includes('no pong within 300 ms'), 10_000);
    const r = await submitRequest(port, client, { task: inferTask, assignment: { prompt: [3, 4, 5], maxTokens: 4, seed: 9 }, maxPrice: 10, minNodes: N, timeoutMs: 40_000 });
    expect(r.outcome).toBe('settled');
    expect(r.refusal).toBeNull();
    expect([...r.nodes].sort()).toEqual([...ids].sort());
  }, 60_000);
});
