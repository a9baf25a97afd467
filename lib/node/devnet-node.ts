/**
 * One devnet node (or the referee) as its own OS process, forked by lib/node/devnet.ts from
 * dist/node/devnet-node.js. It is the real node's protocol side -- `startParticipant` (node.ts):
 * its own node.db, a ServicePort to the devnet's ledger service, the model's engine thread
 * (ModelEngine) behind a JobQueue -- so the devnet exercises the code `atoma node` runs. A
 * byzantine node is the same participant with the hooks of lib/node/byzantine.ts.
 *
 * The CPU path and thread count come from ATOMA_ISA and ATOMA_THREADS in this process's
 * environment (the engine's ISA and thread pool are per process): every node computes on its own
 * path, in parallel with the others.
 *
 * IPC: this process says {hello} once it listens, the parent sends one {setup} (the private key
 * travels there, not in argv or the environment); this process answers {ready} once it registered, subscribed and follows the
 * stream, then {executed} per execution and {error} for what the node logs as an error. It exits
 * when the IPC channel closes: a node never outlives its devnet.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { info } from '../engine/config.js';
import { LlamaModel } from '../model/llama.js';
import { loadModel } from '../model/load.js';
import { rawPublicKey, signEvent, type Signer } from '../protocol/signing.js';
import { byzantineHooks, type ByzantineRole } from './byzantine.js';
import { ModelEngine } from './engine.js';
import { ServicePort } from './ledger-port.js';
import { stderrLogger, type Logger } from './log.js';
import { startParticipant } from './node.js';
import type { ParticipantHooks } from './participant.js';
import { JobQueue } from './queue.js';

export type Role = 'honest' | ByzantineRole | 'referee';

export interface NodeSetup {
  /** The ledger service (http://127.0.0.1:PORT). */
  url: string;
  /** The node's Ed25519 private key, PKCS#8 PEM; its id is the public key. */
  key: string;
  id: string;
  role: Role;
  /** This node's own directory (node.db). */
  dir: string;
  modelPath: string;
  digest: string;
  task: string;
  price: number;
  collateral: number;
}

/** Parent -> node. */
export type ToNode = { t: 'setup'; setup: NodeSetup };

/** Node -> parent. */
export type FromNode =
  | { t: 'hello' }
  | { t: 'ready'; isa: string; threads: number }
  | { t: 'executed'; request: string; outputDigest: string; isa: string; threads: number; ms: number }
  | { t: 'error'; message: string };

const send = (m: FromNode) => {
  if (process.connected) process.send!(m);
};

async function run(s: NodeSetup): Promise<void> {
  const privateKey = createPrivateKey(s.key);
  const key: Signer = { privateKey, publicKey: rawPublicKey(privateKey) };
  if (key.publicKey !== s.id) throw new Error(`devnet node: the key does not match id ${s.id}`);
  const who = `${s.role} ${s.id.slice(0, 8)}`;
  const here = info();
  // What the devnet hears of a node: its executions (on this process's path) and its errors.
  const log: Logger = (level, msg, f = {}) => {
    if (level === 'error') send({ t: 'error', message: `${who}: ${msg} ${JSON.stringify(f)}` });
    if (process.env.ATOMA_DEVNET_LOG) stderrLogger(level, msg, { node: who, ...f });
  };
  mkdirSync(s.dir, { recursive: true });
  const ledger = new ServicePort(s.url);
  const engine = await ModelEngine.start(s.modelPath, s.digest);
  const queue = new JobQueue(new Map([[s.digest, engine]]), 256, 8);
  const submit = (e: Parameters<typeof ledger.submit>[0]) => ledger.submit(signEvent(e, key));
  const byzantine = s.role === 'honest' || s.role === 'referee' ? {} : byzantineHooks(s.role, {
    node: key.publicKey, submit, log,
    model: s.role === 'tamper' ? new LlamaModel((await loadModel(s.modelPath)).weights) : undefined,
  });
  const hooks: ParticipantHooks = {
    ...byzantine,
    executed: (request, outputDigest, ms) => send({ t: 'executed', request, outputDigest, isa: info().isa, threads: info().threads, ms }),
  };
  await startParticipant({
    ledger, key, dbPath: join(s.dir, 'node.db'), queue, referee: s.role === 'referee',
    subscriptions: s.role === 'referee' ? [] : [{ task: s.task, digest: s.digest, price: s.price }],
    faucet: s.role === 'referee' ? undefined : s.collateral, collateral: s.collateral, log, hooks,
  });
  send({ t: 'ready', isa: here.isa, threads: here.threads });
}

/** Reports a fault to the devnet, then exits (after the message left). */
function die(message: string): void {
  if (process.connected) process.send!({ t: 'error', message } satisfies FromNode, () => process.exit(1));
  else process.exit(1);
}

// The devnet is gone (ended, crashed or killed): so is this node.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (e) => die(`devnet node: ${e.stack ?? e.message}`));
process.on('unhandledRejection', (e) => die(`devnet node: ${(e as Error)?.stack ?? String(e)}`));
process.once('message', (m: ToNode) => {
  run(m.setup).catch((e: Error) => die(`devnet node ${m.setup.role} ${m.setup.id.slice(0, 8)} failed to start: ${e.stack ?? e.message}`));
});
// Messages that arrive before a listener exists are lost: the parent waits for this one.
send({ t: 'hello' });
