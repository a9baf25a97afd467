/**
 * One devnet node (or the referee) in its own worker thread. It loads the model, chooses its CPU
 * path and thread count, registers and subscribes on the ledger (through the parent, which owns
 * the SQLite ledger), then follows the ledger's event stream: when sampled it executes the
 * assignment, commits, reveals when the reveal phase opens, and answers bisection rounds from its
 * own trace. Byzantine nodes tamper (a forged token and its consistent trace), copy another
 * node's commitment, or stay silent.
 *
 * Each worker holds its own Ed25519 key (its id is the public key) and signs every event it sends;
 * the ledger admits nothing else. A request's assignment arrives as the request's input bytes,
 * read from the ledger (its data-availability store), and is used only if its BLAKE3 digest is the
 * `input` the client signed.
 *
 * The engine's CPU path and thread pool are per process (native/cpu/isa.cc, thread_pool.cc), so
 * every worker sets its own path and thread count under a lock shared by all workers (`engineLock`)
 * and holds it while it computes: each node's work really runs on the path it was given.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { configure, info, type Isa } from '../engine/config.js';
import { blake3 } from '../engine/hash.js';
import { loadModel } from '../model/load.js';
import { LlamaModel } from '../model/llama.js';
import { commitment } from '../protocol/commitment.js';
import { rawPublicKey, signEvent, type Signer } from '../protocol/signing.js';
import { Trace } from '../protocol/trace.js';
import type { Effect, Event } from '../protocol/types.js';
import { execute, forge, refereeLeaf, type Assignment, type Execution } from './executor.js';

export type Role = 'honest' | 'tamper' | 'copy' | 'silent' | 'referee';

export interface WorkerSetup {
  /** The node's (or referee's) id: its Ed25519 public key. */
  id: string;
  /** Its private key, PKCS#8 DER. */
  key: Uint8Array;
  role: Role;
  isa: Isa;
  threads: number;
  modelPath: string;
  task: string;
  price: number;
  collateral: number;
  lock: SharedArrayBuffer;
}

/** Parent -> worker. */
export type ToWorker =
  | { t: 'log'; items: { event: Event; effects: Effect[] }[]; inputs: Record<string, Uint8Array> }
  | { t: 'reexecute'; request: string; mode: 'leaf' | 'full'; leafIndex: number; digest: string; input: Uint8Array }
  | { t: 'stop' };

/** Worker -> parent. */
export type FromWorker =
  | { t: 'submit'; events: Record<string, unknown>[] }
  | { t: 'ready'; isa: string; threads: number }
  | { t: 'executed'; request: string; outputDigest: string; isa: string; threads: number; ms: number }
  | { t: 'error'; message: string };

const setup = workerData as WorkerSetup;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);
const privateKey = createPrivateKey({ key: Buffer.from(setup.key), format: 'der', type: 'pkcs8' });
const signer: Signer = { privateKey, publicKey: rawPublicKey(privateKey) };
if (signer.publicKey !== setup.id) throw new Error(`devnet worker: key does not match id ${setup.id}`);
/** Every event leaves this worker signed by its key. */
const submit = (...events: Record<string, unknown>[]) => send({ t: 'submit', events: events.map((e) => signEvent(e, signer)) });

/** The assignment in a request's input bytes, checked against the digest the client signed. */
function assignmentOf(digest: string, bytes: Uint8Array | undefined): Assignment {
  if (!bytes) throw new Error(`input ${digest} is not available`);
  if (blake3(bytes).toString('hex') !== digest) throw new Error(`input ${digest}: the bytes do not hash to it`);
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as Assignment;
}
const lock = new Int32Array(setup.lock);

/** Runs `fn` holding the engine lock, on this node's CPU path and thread count. */
function onEngine<T>(fn: () => T): { value: T; isa: string; threads: number } {
  while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1, 100);
  try {
    configure({ isa: setup.isa, threads: setup.threads });
    const i = info();
    return { value: fn(), isa: i.isa, threads: i.threads };
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0, 1);
  }
}

interface Job { assignment?: Assignment; result?: Execution; trace?: Trace; salt?: string; committed: boolean; revealed: boolean; inDispute: boolean }

const model = new LlamaModel((await loadModel(setup.modelPath)).weights);
const jobs = new Map<string, Job>();
const assignments = new Map<string, Assignment>();
const me = setup.id;
/** Commitments a copier has seen, by request. */
const seen = new Map<string, string>();

function job(request: string): Job {
  let j = jobs.get(request);
  if (!j) jobs.set(request, (j = { committed: false, revealed: false, inDispute: false }));
  return j;
}

/** Sampled: compute (unless silent or a copier) and commit. */
function work(request: string): void {
  const j = job(request);
  const a = assignments.get(request);
  if (!a || j.committed || setup.role === 'silent' || setup.role === 'copy') return;
  const t0 = performance.now();
  const run = onEngine(() => {
    const honest = execute(model, a);
    return setup.role === 'tamper' ? forge(model, a, honest, Number.parseInt(request.slice(0, 8), 16)) : honest;
  });
  j.result = run.value;
  j.trace = Trace.fromLeafHashes(run.value.leaves);
  j.salt = randomBytes(32).toString('hex');
  j.committed = true;
  send({ t: 'executed', request, outputDigest: run.value.outputDigest, isa: run.isa, threads: run.threads, ms: performance.now() - t0 });
  submit({ type: 'commit', request, node: me, commitment: commitment(run.value.outputDigest, run.value.traceRoot, me, j.salt) });
}

function onItem(event: Event, effects: Effect[]): void {
  // A copier republishes the first commitment it sees on a request it was sampled for.
  if (setup.role === 'copy' && event.type === 'commit' && event.node !== me) {
    if (!seen.has(event.request)) seen.set(event.request, event.commitment);
    const j = jobs.get(event.request);
    if (j && !j.committed && j.assignment) {
      j.committed = true;
      submit({ type: 'commit', request: event.request, node: me, commitment: event.commitment });
    }
  }
  for (const x of effects) {
    if ((x.type === 'sampled' && x.nodes.includes(me)) || (x.type === 'replaced' && x.node === me)) {
      const j = job(x.request);
      j.assignment = assignments.get(x.request);
      const copied = seen.get(x.request);
      if (setup.role === 'copy' && copied && !j.committed) {
        j.committed = true;
        submit({ type: 'commit', request: x.request, node: me, commitment: copied });
      }
      work(x.request);
    } else if (x.type === 'revealPhase') {
      const j = jobs.get(x.request);
      if (j?.result && j.salt && !j.revealed) {
        j.revealed = true;
        submit({ type: 'reveal', request: x.request, node: me, outputDigest: j.result.outputDigest, traceRoot: j.result.traceRoot, traceLeaves: j.result.leaves.length, salt: j.salt });
      }
    } else if (x.type === 'disputeOpened') {
      const j = jobs.get(x.request);
      if (j) j.inDispute = x.a.includes(me) || x.b.includes(me);
    } else if (x.type === 'bisectRound') {
      const j = jobs.get(x.request);
      if (j?.inDispute && j.trace) {
        const [left, right] = j.trace.children(x.lo, x.hi);
        submit({ type: 'bisect', request: x.request, node: me, left, right });
      }
    } else if (x.type === 'slashed' && x.node === me && setup.role !== 'honest') {
      // A patient adversary re-bonds, so its share of the eligible nodes stays the same.
      submit({ type: 'deposit', account: me, amount: x.amount }, { type: 'addCollateral', node: me, amount: x.amount });
    } else if (x.type === 'closed') {
      jobs.delete(x.request.id);
      seen.delete(x.request.id);
      assignments.delete(x.request.id);
    }
  }
}

port.on('message', (m: ToWorker) => {
  try {
    if (m.t === 'stop') {
      port.close();
      return;
    }
    if (m.t === 'log') {
      for (const { event, effects } of m.items) {
        if (event.type === 'request') assignments.set(event.request, assignmentOf(event.input, m.inputs[event.input]));
        onItem(event, effects);
      }
      return;
    }
    // The referee: one leaf (or, when the traces cannot be bisected, the whole request).
    const a = assignmentOf(m.digest, m.input);
    const run = onEngine(() => (m.mode === 'leaf' ? { leafHash: refereeLeaf(model, a, m.leafIndex) } : execute(model, a)));
    const v = run.value;
    submit('leafHash' in v
      ? { type: 'reexecuted', request: m.request, referee: me, leafHash: v.leafHash }
      : { type: 'reexecuted', request: m.request, referee: me, outputDigest: v.outputDigest, traceRoot: v.traceRoot, traceLeaves: v.leaves.length });
  } catch (e) {
    send({ t: 'error', message: `${setup.role} ${me.slice(0, 8)}: ${(e as Error).stack ?? String(e)}` });
  }
});

const ready = onEngine(() => 0);
if (setup.role !== 'referee') {
  submit(
    { type: 'deposit', account: me, amount: setup.collateral },
    { type: 'register', node: me, collateral: setup.collateral },
    { type: 'subscribe', node: me, task: setup.task, price: setup.price },
  );
}
send({ t: 'ready', isa: ready.isa, threads: ready.threads });
