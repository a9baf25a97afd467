/**
 * A whole network on one machine: the embedded SQLite ledger (in this thread, in a temp dir), one
 * worker thread per node (lib/node/devnet-worker.ts), a referee worker, and a client that sends
 * inference requests for a tiny init model (its BLAKE3 digest is the task's model id). Honest
 * nodes run on a mix of CPU paths and thread counts, so agreement between them is the canonical
 * arithmetic at work; byzantine nodes tamper, copy commitments or stay silent. Everything runs
 * through the real rules: sampling, commit-reveal, deadlines, bisection disputes with a referee
 * that recomputes one leaf, payment and slashing. The ledger thread is the only writer: workers
 * post events, it applies them in batches (one transaction each) and streams the logged events
 * and effects back to every worker, as the ledger service's WebSocket stream does.
 *
 * As on a network of processes that do not trust each other: every participant (node, client,
 * referee) has its own Ed25519 key, its id is the public key, and it signs every event it sends;
 * the referee's key is named in genesis; the client stores each request's assignment on the ledger
 * as the request's input, and nodes check the bytes they get against the digest the client signed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { info, type Isa } from '../engine/config.js';
import { AtomaError, fail } from '../engine/errors.js';
import { blake3, hashFile } from '../engine/hash.js';
import { packageRoot } from '../engine/native.js';
import { initModel } from '../model/init.js';
import { canonical, Ledger } from '../protocol/ledger/store.js';
import { generateSigner, signEvent, type Signer } from '../protocol/signing.js';
import { DEFAULT_PARAMS, type Params } from '../protocol/params.js';
import type { Effect, Event } from '../protocol/types.js';
import type { Assignment } from './executor.js';
import type { FromWorker, Role, ToWorker, WorkerSetup } from './devnet-worker.js';

export type ByzantineBehavior = 'tamper' | 'copy' | 'silent' | 'mixed';

export interface DevnetOptions {
  nodes: number;
  /** Nodes sampled per request. */
  sample: number;
  byzantine: number;
  requests: number;
  /** What byzantine nodes do (default 'mixed': tamper, copy, silent in turn). */
  behavior?: ByzantineBehavior;
  /** Tokens generated per request (default 8). */
  maxTokens?: number;
  /** Requests the client keeps open at once (default 8). */
  concurrency?: number;
  /** Seed of the prompts and request seeds (default 1). */
  seed?: number;
  /** Ledger parameters (deadlines default to a few seconds here). */
  params?: Partial<Params>;
  /** The run stops (with complete: false) after this long (default 300 s). */
  timeoutMs?: number;
  onProgress?: (p: DevnetProgress) => void;
}

export interface DevnetProgress { done: number; total: number; settled: number; disputes: number; slashes: number }

export interface DevnetNode { id: string; role: Role; isa: string; threads: number; sampled: number; slashed: number }

export interface DevnetReport {
  complete: boolean;
  nodes: number; sample: number; byzantine: number; behavior: ByzantineBehavior; maxTokens: number;
  requests: number; settled: number; failed: number; refused: number;
  disputes: number; disputesWonByHonest: number; falseDisputes: number;
  /** Disputes bisected down to one leaf the referee recomputed (the rest: full re-execution). */
  leafDisputes: number;
  /** Settled requests whose result came from a tampering node or differs from an honest reveal. */
  tamperedSettled: number;
  /** Settled requests that had no honest node among their revealers (only byzantine ones). */
  settledWithoutHonest: number;
  timeouts: number; slashes: number; slashedAmount: number;
  byzantineSlashed: number; honestSlashed: number;
  payments: number; paidAmount: number;
  /** Requests where honest nodes revealed different results (must be 0). */
  honestDisagreements: number;
  /** Requests where honest nodes on two or more (ISA, threads) paths revealed the same result. */
  crossPathAgreements: number;
  /** Executions that ran on another path than the node was given (must be 0). */
  pathMismatches: number;
  executions: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  seconds: number;
  ledgerEvents: number;
  /** Logged events signed by their actor (all but genesis, ticks and the faucet's deposits). */
  signedEvents: number;
  /** Replay equals state, every logged signature verifies, nonces and inputs are in place. */
  ledgerVerified: boolean;
  modelDigest: string;
  paths: DevnetNode[];
  errors: string[];
}

function workerPath(): string {
  const sibling = fileURLToPath(new URL('./devnet-worker.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  // Running from the TypeScript sources (tests): the compiled worker in dist/.
  const built = join(packageRoot, 'dist', 'node', 'devnet-worker.js');
  if (!existsSync(built)) fail('ERR_IO', `the devnet worker is not built (${built}): run \`npm run build:ts\``);
  return built;
}

const h = (...parts: (string | number)[]) => blake3(parts.join('/')).toString('hex');

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function positive(v: number, name: string, min = 1): void {
  if (!Number.isSafeInteger(v) || v < min) fail('ERR_USAGE', `devnet: ${name} must be an integer >= ${min}`);
}

/**
 * Runs a devnet to completion and reports what happened.
 *
 * @example
 * const r = await runDevnet({ nodes: 10, sample: 3, byzantine: 2, requests: 50 });
 * r.falseDisputes;     // 0: honest nodes on different CPU paths always agree
 * r.tamperedSettled;   // 0 unless every sampled node was byzantine
 */
export async function runDevnet(o: DevnetOptions): Promise<DevnetReport> {
  positive(o.nodes, 'nodes');
  positive(o.sample, 'sample');
  positive(o.requests, 'requests');
  positive(o.byzantine, 'byzantine', 0);
  if (o.byzantine > o.nodes) fail('ERR_USAGE', 'devnet: byzantine must be at most nodes');
  if (o.sample > o.nodes) fail('ERR_USAGE', 'devnet: sample must be at most nodes');
  const behavior = o.behavior ?? 'mixed';
  if (!['tamper', 'copy', 'silent', 'mixed'].includes(behavior)) fail('ERR_USAGE', 'devnet: behavior must be tamper, copy, silent or mixed');
  const maxTokens = o.maxTokens ?? 8;
  positive(maxTokens, 'maxTokens');
  // Prompts are up to 8 tokens; the init model's context is 512.
  if (maxTokens > 504) fail('ERR_USAGE', 'devnet: maxTokens must be at most 504 (the tiny model has a 512-token context)');
  const concurrency = o.concurrency ?? 8;
  positive(concurrency, 'concurrency');
  const seed = o.seed ?? 1;
  const file = workerPath();
  const t0 = performance.now();

  const dir = mkdtempSync(join(tmpdir(), 'atoma-devnet-'));
  const workers: Worker[] = [];
  let ledger: Ledger | undefined;
  let tick: NodeJS.Timeout | undefined;
  try {
    const modelPath = join(dir, 'model.gguf');
    initModel(modelPath, { seed: 1 });
    const modelDigest = (await hashFile(modelPath)).toString('hex');
    const params: Partial<Params> = {
      maxSampleSize: Math.max(DEFAULT_PARAMS.maxSampleSize, o.sample),
      commitMs: 5_000, revealMs: 3_000, bisectRoundMs: 3_000, reexecuteMs: 20_000, ...o.params,
    };
    // Every participant's key; the referee's is named in genesis (the court the nodes accept).
    const clientKey = generateSigner();
    const refereeKey = generateSigner();
    const nodeKeys: Signer[] = Array.from({ length: o.nodes }, () => generateSigner());
    const der = (k: Signer) => new Uint8Array(k.privateKey.export({ type: 'pkcs8', format: 'der' }));
    const L = ledger = Ledger.open(join(dir, 'ledger.db'), { params, referees: [refereeKey.publicKey], faucet: true });
    const p = L.state.params;
    const run = h('devnet', seed, Date.now(), Math.random());
    const task = h(run, 'task');
    const client = clientKey.publicKey;
    const price = 10;
    // The client's funds (the devnet faucet) and the task exist before any node subscribes to it.
    L.submit({ type: 'deposit', account: client, amount: 2 ** 49 });
    L.submit(signEvent({ type: 'createTask', task, creator: client, kind: 'inference', digest: modelDigest, security: { mode: 'sampling', n: o.sample }, minReputation: 0 }, clientKey));

    // Nodes: the first B are byzantine; paths cycle over the CPU's ISAs with 1 and 2 threads.
    const isas = info().isas as Isa[];
    const kinds: Role[] = ['tamper', 'copy', 'silent'];
    const roles = new Map<string, Role>();
    const paths: DevnetNode[] = [];
    const lock = new SharedArrayBuffer(4);
    const pathKey = new Map<string, string>();
    const setups: WorkerSetup[] = [];
    for (let i = 0; i < o.nodes; i++) {
      const role: Role = i < o.byzantine ? (behavior === 'mixed' ? kinds[i % 3] : behavior) : 'honest';
      const id = nodeKeys[i].publicKey;
      roles.set(id, role);
      setups.push({ id, key: der(nodeKeys[i]), role, isa: isas[i % isas.length], threads: 1 + (Math.floor(i / isas.length) % 2), modelPath, task, price, collateral: p.minCollateral, lock });
    }
    setups.push({ id: refereeKey.publicKey, key: der(refereeKey), role: 'referee', isa: isas[0], threads: 1, modelPath, task, price, collateral: 0, lock });
    const byz = (n: string) => roles.get(n) !== 'honest';

    // Metrics.
    const r: DevnetReport = {
      complete: false, nodes: o.nodes, sample: o.sample, byzantine: o.byzantine, behavior, maxTokens,
      requests: 0, settled: 0, failed: 0, refused: 0, disputes: 0, disputesWonByHonest: 0, falseDisputes: 0, leafDisputes: 0,
      tamperedSettled: 0, settledWithoutHonest: 0, timeouts: 0, slashes: 0, slashedAmount: 0, byzantineSlashed: 0, honestSlashed: 0,
      payments: 0, paidAmount: 0, honestDisagreements: 0, crossPathAgreements: 0, pathMismatches: 0, executions: 0,
      latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 }, seconds: 0, ledgerEvents: 0, signedEvents: 0, ledgerVerified: false, modelDigest, paths, errors: [],
    };
    const byzSlashed = new Set<string>();
    const honestSlashed = new Set<string>();
    const latencies: number[] = [];
    interface Open { started: number; reveals: Map<string, string> }
    const open = new Map<string, Open>();
    /** Each open request's input digest (the assignment is on the ledger under it). */
    const inputOf = new Map<string, string>();
    let nextQ = 0;
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((res) => { finish = res; });
    const referee = () => workers[workers.length - 1];
    const progress = () => o.onProgress?.({ done, total: o.requests, settled: r.settled, disputes: r.disputes, slashes: r.slashes });

    const nodeOf = (id: string) => paths.find((n) => n.id === id) ?? { id, role: 'honest', isa: '', threads: 0, sampled: 0, slashed: 0 };
    const observe = (event: Event, effects: Effect[]) => {
      if (event.type === 'reveal') open.get(event.request)?.reveals.set(event.node, event.outputDigest);
      for (const x of effects) {
        switch (x.type) {
          case 'sampled':
            for (const n of x.nodes) nodeOf(n).sampled++;
            break;
          case 'replaced':
            if (x.node) nodeOf(x.node).sampled++;
            break;
          case 'disputeOpened':
            r.disputes++;
            if (![...x.a, ...x.b].some(byz)) r.falseDisputes++;
            if (x.mode === 'leaf') r.leafDisputes++;
            break;
          case 'disputeResolved':
            if (x.winner.length > 0 && !x.winner.some(byz)) r.disputesWonByHonest++;
            break;
          case 'reexecute':
          {
            // The referee reads the request's input from the ledger, like the nodes.
            const digest = inputOf.get(x.request)!;
            referee().postMessage({ t: 'reexecute', request: x.request, mode: x.mode, leafIndex: x.leafIndex, digest, input: L.getInput(digest)! } satisfies ToWorker);
          }
            break;
          case 'slashed':
            r.slashes++;
            r.slashedAmount += x.amount;
            if (x.reason === 'timeout') r.timeouts++;
            (byz(x.node) ? byzSlashed : honestSlashed).add(x.node);
            nodeOf(x.node).slashed++;
            break;
          case 'paid':
            r.payments++;
            r.paidAmount += x.amount;
            break;
          case 'settled': {
            r.settled++;
            const reveals = open.get(x.request)?.reveals ?? new Map<string, string>();
            const honest = [...reveals].filter(([n]) => !byz(n)).map(([, d]) => d);
            if (honest.length === 0) r.settledWithoutHonest++;
            if (x.nodes.some((n) => roles.get(n) === 'tamper') || honest.some((d) => d !== x.outputDigest)) r.tamperedSettled++;
            break;
          }
          case 'failed':
            r.failed++;
            break;
          case 'closed': {
            const req = open.get(x.request.id);
            if (!req) break;
            latencies.push(performance.now() - req.started);
            const honest = [...req.reveals].filter(([n]) => !byz(n));
            if (new Set(honest.map(([, d]) => d)).size > 1) r.honestDisagreements++;
            else if (new Set(honest.map(([n]) => pathKey.get(n))).size > 1) r.crossPathAgreements++;
            open.delete(x.request.id);
            inputOf.delete(x.request.id);
            closeOne();
            break;
          }
        }
      }
    };

    // The ledger thread: a queue of posted events, applied in one batch per turn of the loop.
    let queue: Record<string, unknown>[] = [];
    let scheduled = false;
    const broadcast = (items: { event: Event; effects: Effect[] }[]) => {
      if (items.length === 0) return;
      // The inputs of the requests in this batch travel with it, as a node would fetch them (GET /inputs).
      const inputs: Record<string, Uint8Array> = {};
      for (const { event } of items) if (event.type === 'request') inputs[event.input] = L.getInput(event.input)!;
      const m: ToWorker = { t: 'log', items, inputs };
      for (const w of workers) w.postMessage(m);
    };
    const flush = () => {
      scheduled = false;
      const batch = queue;
      queue = [];
      if (batch.length === 0) return;
      const results = L.submitBatch(batch);
      const items: { event: Event; effects: Effect[] }[] = [];
      results.forEach((res, i) => {
        if (res.ok) {
          items.push({ event: res.event, effects: res.effects });
          observe(res.event, res.effects);
        } else if (batch[i].type === 'request') {
          if (r.errors.length < 10) r.errors.push(`request refused: ${res.error.code} ${res.error.message}`);
          // Refused (no eligible nodes): the client gives up on it.
          r.refused++;
          open.delete(batch[i].request as string);
          inputOf.delete(batch[i].request as string);
          closeOne();
        } else if (batch[i].type === 'register' || batch[i].type === 'subscribe' || ['ERR_SIGNATURE', 'ERR_REPLAY', 'ERR_NOT_REFEREE', 'ERR_FAUCET'].includes(res.error.code)) {
          // Never expected: every participant signs with its own key and a fresh nonce.
          if (r.errors.length < 10) r.errors.push(`${String(batch[i].type)} refused: ${res.error.code} ${res.error.message}`);
        }
      });
      broadcast(items);
    };
    const post = (...events: Record<string, unknown>[]) => {
      queue.push(...events);
      if (!scheduled) { scheduled = true; setImmediate(flush); }
    };

    // The client: keeps `concurrency` requests open.
    const sendNext = () => {
      if (nextQ >= o.requests) return;
      const q = nextQ++;
      const request = h(run, 'request', q);
      const words = blake3(`devnet prompt/${seed}/${q}`, { length: 64 });
      const a: Assignment = { prompt: Array.from({ length: 4 + (words[0] % 5) }, (_, i) => words[i + 1] % 480), maxTokens, seed: seed * 1_000_003 + q, temperature: 0.8 };
      // The input is the assignment's canonical JSON, stored on the ledger before the request names it.
      const input = L.putInput(Buffer.from(canonical(a), 'utf8'));
      inputOf.set(request, input);
      open.set(request, { started: performance.now(), reveals: new Map() });
      r.requests++;
      post(signEvent({ type: 'request', request, task, client, maxPrice: price, minNodes: 1, input }, clientKey));
    };
    function closeOne() {
      done++;
      progress();
      if (done >= o.requests) finish();
      else sendNext();
    }

    // Start the workers; each registers and subscribes once its model is loaded.
    let ready = 0;
    let allReady!: () => void;
    let startFailed!: (e: Error) => void;
    const started = new Promise<void>((res, rej) => { allReady = res; startFailed = rej; });
    setups.forEach((s, i) => {
      const w = new Worker(file, { workerData: s });
      workers.push(w);
      w.on('message', (m: FromWorker) => {
        if (m.t === 'submit') post(...m.events);
        else if (m.t === 'ready') {
          if (s.role !== 'referee') {
            paths.push({ id: s.id, role: s.role, isa: m.isa, threads: m.threads, sampled: 0, slashed: 0 });
            pathKey.set(s.id, `${m.isa}/${m.threads}`);
          }
          if (++ready === setups.length) allReady();
        } else if (m.t === 'executed') {
          r.executions++;
          if (m.isa !== s.isa || m.threads !== s.threads) r.pathMismatches++;
        } else if (m.t === 'error' && r.errors.length < 10) r.errors.push(m.message);
      });
      w.on('error', (e) => {
        if (r.errors.length < 10) r.errors.push(`worker ${i}: ${e.stack ?? e.message}`);
        // A node that cannot start (no native addon, no model) stops the run instead of stalling it.
        if (ready < setups.length) startFailed(new AtomaError(`devnet: worker ${i} (${s.role}) failed to start: ${e.message}`, 'ERR_DEVNET'));
      });
    });
    const deadline = new Promise<void>((res) => setTimeout(res, o.timeoutMs ?? 300_000).unref());
    await Promise.race([started, deadline]);
    // Let the last registrations land before the first sample is drawn.
    await new Promise((res) => setTimeout(res, 50));
    tick = setInterval(() => {
      const t = L.tickIfDue();
      if (t?.ok) {
        observe(t.event, t.effects);
        broadcast([{ event: t.event, effects: t.effects }]);
      }
    }, 20);
    for (let i = 0; i < Math.min(concurrency, o.requests); i++) sendNext();
    await Promise.race([finished, deadline]);
    r.complete = done >= o.requests;

    const sorted = latencies.sort((a, b) => a - b);
    r.latencyMs = { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? 0 };
    r.byzantineSlashed = byzSlashed.size;
    r.honestSlashed = honestSlashed.size;
    r.ledgerEvents = L.state.seq;
    for (let from = 0; from < L.state.seq; from += 1000) r.signedEvents += L.events(from, 1000).filter((x) => 'sig' in x.event).length;
    r.ledgerVerified = L.verify();
    r.seconds = (performance.now() - t0) / 1000;
    paths.sort((a, b) => setups.findIndex((s) => s.id === a.id) - setups.findIndex((s) => s.id === b.id));
    return r;
  } finally {
    if (tick) clearInterval(tick);
    await Promise.all(workers.map((w) => w.terminate()));
    ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
