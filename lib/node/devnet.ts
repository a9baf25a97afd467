/**
 * A whole network on one machine: the ledger service (serveLedger: SQLite in a temp dir, HTTP and
 * WebSocket on 127.0.0.1, in this process), one OS process per node and one for the referee
 * (lib/node/devnet-node.ts: the real node's protocol side, participant.ts, with its own node.db),
 * and a client in this process that sends inference requests for a tiny init model (its BLAKE3
 * digest is the task's model id). Each node process gets its CPU path and thread count in its
 * environment (ATOMA_ISA, ATOMA_THREADS): honest nodes compute in parallel on a mix of paths, so
 * agreement between them is the canonical arithmetic at work. Byzantine nodes are the same node
 * with the hooks of lib/node/byzantine.ts: they tamper, copy commitments or stay silent.
 * Everything runs through the real rules: sampling, commit-reveal, deadlines, bisection disputes
 * with a referee that recomputes one leaf, payment and slashing.
 *
 * As on a network of processes that do not trust each other: every participant (node, client,
 * referee) has its own Ed25519 key, its id is the public key, and it signs every event it sends;
 * the referee's key is named in genesis; the client stores each request's assignment on the ledger
 * as the request's input, and nodes fetch it and check the bytes against the digest the client
 * signed. The report is read from the ledger's stream and from what each node process reports
 * over IPC (its path, its executions).
 *
 * Every node process dies with the devnet: this process kills them when the run ends, fails, or
 * is interrupted (SIGINT, SIGTERM: then the temp dir goes too), and a node exits by itself when
 * its IPC channel closes (this process died).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { info, type Isa } from '../engine/config.js';
import { AtomaError, fail } from '../engine/errors.js';
import { blake3, hashFile } from '../engine/hash.js';
import { initModel } from '../model/init.js';
import { serveLedger, type LedgerService } from '../protocol/ledger/service.js';
import { generateSigner, signEvent, type Signer } from '../protocol/signing.js';
import { DEFAULT_PARAMS, type Params } from '../protocol/params.js';
import type { Effect, Event, State } from '../protocol/types.js';
import { encodeAssignment } from './assignment-input.js';
import { BYZANTINE_ROLES } from './byzantine.js';
import type { FromNode, NodeSetup, Role, ToNode } from './devnet-node.js';
import type { Assignment } from './executor.js';
import { ServicePort } from './ledger-port.js';
import { compiledEntry } from '../engine/compiled-entry.js';

export type { Role };
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
  /**
   * The ledger's clock. 'wall' (default): deadlines pass with this machine's clock, as on a real
   * network, so a node slowed down by a loaded machine can miss one. 'fair': deadlines pass when
   * the protocol's progress says so (fairClock): outcomes no longer depend on machine speed,
   * which is what tests need. Give long deadlines with it: nodes still read them on their clocks.
   */
  clock?: 'wall' | 'fair';
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

function nodePath(): string {
  return compiledEntry(import.meta.url, 'node/devnet-node.js', 'the devnet node');
}

/**
 * Kills the node processes and removes the temp dir if this process exits or is interrupted
 * before the run's own cleanup; returns the function that takes these handlers back.
 */
function cleanupOnExit(children: ChildProcess[], dir: string): () => void {
  const now = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    now();
    uninstall();
    // Nobody else handles it: what the signal would have done without this handler (exit).
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  const uninstall = () => {
    process.off('exit', now);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('exit', now);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return uninstall;
}

const h = (...parts: (string | number)[]) => blake3(parts.join('/')).toString('hex');

/**
 * The 'fair' ledger clock (DevnetOptions.clock). It never reaches a deadline that a node which
 * acts (honest, tamperer, referee, a copier yet to copy a commitment) still has to meet, so no
 * such node is slashed for being slow; and it jumps to the deadlines that only nodes which never
 * act are waiting on (a silent node's commit, a copier's reveal), so their timeouts cost no
 * waiting. The set of pending deadlines is the one nextDeadline (machine.ts) ticks on.
 */
export function fairClock(state: () => State | undefined, role: (node: string) => Role | undefined): () => number {
  let ahead = 0;
  return () => {
    const t = Date.now() + ahead;
    const s = state();
    if (!s) return t;
    let live = Infinity;
    let idle = Infinity;
    for (const id in s.requests) {
      const r = s.requests[id];
      if (r.phase === 'dispute') {
        live = Math.min(live, r.dispute!.deadline);
        continue;
      }
      for (const x of r.slots) {
        if (r.phase === 'commit' ? x.status !== 'committing' : x.status !== 'committed') continue;
        const never = r.phase === 'commit' ? role(x.node) === 'silent' : role(x.node) === 'copy';
        if (never) idle = Math.min(idle, x.deadline);
        else live = Math.min(live, x.deadline);
      }
    }
    if (idle < live && t <= idle) ahead += idle + 1 - t;
    return Math.min(Date.now() + ahead, live - 1);
  };
}

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
  const file = nodePath();
  const t0 = performance.now();

  const dir = mkdtempSync(join(tmpdir(), 'atoma-devnet-'));
  const children: ChildProcess[] = [];
  const uninstall = cleanupOnExit(children, dir);
  let svc: LedgerService | undefined;
  let port: ServicePort | undefined;
  let stopStream: (() => void) | undefined;
  let ending = false;
  try {
    const modelPath = join(dir, 'model.gguf');
    initModel(modelPath, { seed: 1 });
    const modelDigest = (await hashFile(modelPath)).toString('hex');
    const params: Partial<Params> = {
      maxSampleSize: Math.max(DEFAULT_PARAMS.maxSampleSize, o.sample),
      commitMs: 5_000, revealMs: 3_000, bisectRoundMs: 3_000, reexecuteMs: 20_000, ...o.params,
    };
    const roles = new Map<string, Role>();
    // Every participant's key; the referee's is named in genesis (the court the nodes accept).
    const clientKey = generateSigner();
    const refereeKey = generateSigner();
    const nodeKeys: Signer[] = Array.from({ length: o.nodes }, () => generateSigner());
    const pem = (k: Signer) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // Every node process streams from 127.0.0.1 (a restarted one briefly twice): room for all of them.
    const clock = o.clock === 'fair' ? fairClock(() => svc?.ledger.state, (n) => roles.get(n)) : undefined;
    svc = await serveLedger({ db: join(dir, 'ledger.db'), host: '127.0.0.1', port: 0, tickMs: 20, params, referees: [refereeKey.publicKey], faucet: true, maxStreamsPerAddress: 2 * o.nodes + 16, clock });
    const L = svc.ledger;
    const P = (port = new ServicePort(svc.url));
    const p = L.state.params;
    const run = h('devnet', seed, Date.now(), Math.random());
    const task = h(run, 'task');
    const client = clientKey.publicKey;
    const price = 10;
    // The client's funds (the devnet faucet) and the task exist before any node subscribes to it.
    await P.submit(signEvent({ type: 'deposit', account: client, amount: 2 ** 49 }, clientKey));
    await P.submit(signEvent({ type: 'createTask', task, creator: client, kind: 'inference', digest: modelDigest, security: { mode: 'sampling', n: o.sample }, minReputation: 0 }, clientKey));

    // Nodes: the first B are byzantine; paths cycle over the CPU's ISAs with 1 and 2 threads.
    const isas = info().isas as Isa[];
    const paths: DevnetNode[] = [];
    const pathKey = new Map<string, string>();
    const setups: (NodeSetup & { isa: Isa; threads: number })[] = [];
    const node = (i: number, id: string, key: Signer, role: Role, isa: Isa, threads: number, collateral: number) =>
      setups.push({ url: svc!.url, key: pem(key), id, role, dir: join(dir, `node-${i}`), modelPath, digest: modelDigest, task, price, collateral, isa, threads });
    for (let i = 0; i < o.nodes; i++) {
      const role: Role = i < o.byzantine ? (behavior === 'mixed' ? BYZANTINE_ROLES[i % 3] : behavior) : 'honest';
      roles.set(nodeKeys[i].publicKey, role);
      node(i, nodeKeys[i].publicKey, nodeKeys[i], role, isas[i % isas.length], 1 + (Math.floor(i / isas.length) % 2), p.minCollateral);
    }
    node(o.nodes, refereeKey.publicKey, refereeKey, 'referee', isas[0], 1, 0);
    const byz = (n: string) => roles.get(n) !== 'honest';

    // Metrics.
    const r: DevnetReport = {
      complete: false, nodes: o.nodes, sample: o.sample, byzantine: o.byzantine, behavior, maxTokens,
      requests: 0, settled: 0, failed: 0, refused: 0, disputes: 0, disputesWonByHonest: 0, falseDisputes: 0, leafDisputes: 0,
      tamperedSettled: 0, settledWithoutHonest: 0, timeouts: 0, slashes: 0, slashedAmount: 0, byzantineSlashed: 0, honestSlashed: 0,
      payments: 0, paidAmount: 0, honestDisagreements: 0, crossPathAgreements: 0, pathMismatches: 0, executions: 0,
      latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 }, seconds: 0, ledgerEvents: 0, signedEvents: 0, ledgerVerified: false, modelDigest, paths, errors: [],
    };
    const error = (m: string) => { if (r.errors.length < 10) r.errors.push(m); };
    const byzSlashed = new Set<string>();
    const honestSlashed = new Set<string>();
    const latencies: number[] = [];
    interface Open { started: number; reveals: Map<string, string> }
    const open = new Map<string, Open>();
    let nextQ = 0;
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((res) => { finish = res; });
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
            closeOne();
            break;
          }
        }
      }
    };

    // The client: keeps `concurrency` requests open; each input goes on the ledger before the signed request names it.
    const sendNext = () => {
      if (nextQ >= o.requests) return;
      const q = nextQ++;
      const request = h(run, 'request', q);
      const words = blake3(`devnet prompt/${seed}/${q}`, { length: 64 });
      const a: Assignment = { prompt: Array.from({ length: 4 + (words[0] % 5) }, (_, i) => words[i + 1] % 480), maxTokens, seed: seed * 1_000_003 + q, temperature: 0.8 };
      const { bytes, digest } = encodeAssignment(a);
      open.set(request, { started: performance.now(), reveals: new Map() });
      r.requests++;
      P.putInput(bytes, clientKey)
        .then((input) => P.submit(signEvent({ type: 'request', request, task, client, maxPrice: price, minNodes: 1, input }, clientKey)))
        .catch((e: AtomaError) => {
          // Refused (no eligible nodes): the client gives up on it.
          error(`request refused: ${e.code} ${e.message}`);
          r.refused++;
          open.delete(request);
          closeOne();
        });
    };
    function closeOne() {
      done++;
      progress();
      if (done >= o.requests) finish();
      else sendNext();
    }

    // The report follows the ledger's stream, as any participant does.
    stopStream = P.stream((await P.head()).seq, (item) => observe(item.event, item.effects), (e) => {
      if (!ending) error(`the devnet's ledger stream broke: ${e.message}`);
    });

    // Start the node processes; each registers and subscribes once its model is loaded.
    let ready = 0;
    let allReady!: () => void;
    let startFailed!: (e: Error) => void;
    const started = new Promise<void>((res, rej) => { allReady = res; startFailed = rej; });
    setups.forEach(({ isa, threads, ...s }, i) => {
      const child = fork(file, [], {
        env: { ...process.env, ATOMA_ISA: isa, ATOMA_THREADS: String(threads) },
        // ATOMA_DEVNET_LOG=1: the nodes' JSON logs go through to this stderr; else only a failed start's last words are kept.
        execArgv: [], stdio: ['ignore', 'ignore', process.env.ATOMA_DEVNET_LOG ? 'inherit' : 'pipe', 'ipc'],
      });
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000); });
      child.on('message', (m: FromNode) => {
        if (m.t === 'hello') child.send({ t: 'setup', setup: s } satisfies ToNode);
        else if (m.t === 'ready') {
          if (s.role !== 'referee') {
            paths.push({ id: s.id, role: s.role, isa: m.isa, threads: m.threads, sampled: 0, slashed: 0 });
            pathKey.set(s.id, `${m.isa}/${m.threads}`);
          }
          if (++ready === setups.length) allReady();
        } else if (m.t === 'executed') {
          r.executions++;
          if (m.isa !== isa || m.threads !== threads) r.pathMismatches++;
        } else if (m.t === 'error') error(m.message);
      });
      child.on('error', (e) => error(`node ${i} (${s.role}): ${e.message}`));
      child.on('exit', (code, signal) => {
        if (ending) return;
        const why = `node ${i} (${s.role}) exited (${signal ?? code})${stderr ? `: ${stderr.trim()}` : ''}`;
        error(why);
        // A node that cannot start (no native addon, no model) stops the run instead of stalling it.
        if (ready < setups.length) startFailed(new AtomaError(`devnet: ${why}`, 'ERR_DEVNET'));
      });
    });
    const deadline = new Promise<void>((res) => setTimeout(res, o.timeoutMs ?? 300_000).unref());
    await Promise.race([started, deadline]);
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
    ending = true;
    stopStream?.();
    await Promise.all(children.map((c) => new Promise<void>((res) => {
      if (c.exitCode !== null || c.signalCode !== null) return res();
      c.once('exit', () => res());
      c.kill('SIGKILL');
    })));
    port?.close();
    await svc?.close();
    rmSync(dir, { recursive: true, force: true });
    uninstall();
  }
}
