/**
 * `atoma node`: a node that serves the tasks of its node.toml. Start-up order: node key, models
 * into the content cache (verified), the job database (unfinished jobs from a previous run are
 * queued again), the ledger, one engine thread per model, the protocol side when the config
 * names ledger tasks (participant.ts: register, subscribe, follow the stream, resume assignments
 * stored in node.db), then the HTTP API. `startParticipant` is that protocol side on its own: the
 * devnet's node processes (devnet-node.ts) start the same one.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { loadModel } from '../model/load.js';
import type { LoadedModel, Tokenizer } from '../model/types.js';
import { signEvent, type Signer } from '../protocol/signing.js';
import { AssignmentStore } from './assignments.js';
import { openLedgerPort, type LedgerPort } from './ledger-port.js';
import { Participant, type ParticipantHooks } from './participant.js';
import { ContentCache } from './cache.js';
import { loadConfig, type FunctionConfig, type NodeConfig, type TaskConfig } from './config.js';
import { readFileSync } from 'node:fs';
import { DEFAULT_MEMORY_MB, WasmFunction } from '../wasm/runner.js';
import { WasmTasks, type WasmModuleConfig } from './wasm-tasks.js';
import { ModelEngine, type WireRequest, type WireResult } from './engine.js';
import { startHttp, type HttpServer } from './http.js';
import { JobStore, type JobRow } from './jobs.js';
import { loadOrCreateNodeKey, signResponse, type NodeKey } from './keys.js';
import { stderrLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ApiError, completionBody, type ParsedRequest } from './openai.js';
import { JobQueue, QueueFullError } from './queue.js';
import { AtomaError, fail } from '../engine/errors.js';

export interface NodeOptions {
  logger?: Logger;
  /** Override the listen port (0: any free port; tests). */
  port?: number;
}

export interface NodeFunction {
  config: FunctionConfig;
  fn: WasmFunction;
}

export interface Task {
  config: TaskConfig;
  model: LoadedModel;
}

/** What a finished request turns into (the non-streamed answer, also served by /v1/results/:id). */
export interface Answer {
  body: Record<string, unknown>;
  text: string;
  finish: 'stop' | 'length';
}

/** What the protocol side of a node needs to start (startParticipant). */
export interface ParticipantSetup {
  ledger: LedgerPort;
  key: Signer;
  /** node.db: the cursor and the assignments (assignments.ts). */
  dbPath: string;
  queue: JobQueue;
  /** The ledger tasks served, with their model (or, kind `wasm`, module) digests and prices. */
  subscriptions: { task: string; digest: string; price: number; kind?: 'inference' | 'wasm' }[];
  /** The node's WASM modules: run `wasm` task assignments (and a referee's re-executions of them). */
  wasm?: WasmTasks;
  referee: boolean;
  faucet?: number;
  collateral?: number;
  log: Logger;
  /** Test networks only (lib/node/devnet-node.ts); `atoma node` passes none. */
  hooks?: ParticipantHooks;
}

/**
 * The protocol side of a node, started: opens node.db, checks each ledger task's model digest
 * (ERR_DIGEST_MISMATCH), registers once, subscribes with the given prices and follows the stream
 * from the stored cursor. `atoma node` (AtomaNode) and each devnet node process use it.
 *
 * @example
 * const { participant, store } = await startParticipant({ ledger, key, dbPath: 'node.db', queue, subscriptions, referee: false, log });
 * await participant.stop(30_000); store.close();
 */
export async function startParticipant(s: ParticipantSetup): Promise<{ participant: Participant; store: AssignmentStore }> {
  const store = new AssignmentStore(s.dbPath);
  try {
    const participant = new Participant({
      port: s.ledger, node: s.key.publicKey, sign: (e) => signEvent(e, s.key), store, queue: s.queue,
      tasks: new Map(s.subscriptions.filter((t) => (t.kind ?? 'inference') === 'inference').map((t) => [t.task, t.digest])),
      wasmTasks: new Map(s.subscriptions.filter((t) => t.kind === 'wasm').map((t) => [t.task, t.digest])), wasm: s.wasm,
      referee: s.referee, log: s.log, hooks: s.hooks,
    });
    await participant.join({ faucet: s.faucet, collateral: s.collateral, subscriptions: s.subscriptions });
    await participant.start();
    return { participant, store };
  } catch (e) {
    store.close();
    throw e;
  }
}

/** 'stop' when generation ended at a stop token (EOS or an end-of-turn marker such as Gemma's <end_of_turn>). */
export function finishReason(tok: Pick<Tokenizer, 'stopIds'>, tokens: readonly number[]): 'stop' | 'length' {
  return tokens.length > 0 && tok.stopIds.includes(tokens[tokens.length - 1]) ? 'stop' : 'length';
}

export class AtomaNode {
  private http: HttpServer | null = null;
  private readonly inflight = new Map<string, Promise<WireResult>>();
  private closing: Promise<void> | null = null;
  readonly metrics: Metrics;
  /** The protocol side (null when the config names no ledger task and is no referee). */
  participant: Participant | null = null;
  private assignments: AssignmentStore | null = null;

  private constructor(
    readonly config: NodeConfig,
    readonly key: NodeKey,
    readonly tasks: Map<string, Task>,
    readonly functions: Map<string, NodeFunction>,
    readonly jobs: JobStore,
    readonly queue: JobQueue,
    private readonly engines: Map<string, ModelEngine>,
    readonly ledger: LedgerPort,
    readonly log: Logger,
    private readonly wasm: WasmTasks,
  ) {
    this.metrics = new Metrics({ queueDepth: () => queue.depth, running: () => queue.active, ledger: () => this.participant?.totals ?? null });
  }

  /**
   * Starts a node from a config (or the path of a node.toml).
   *
   * @example
   * const node = await AtomaNode.start('node.toml');
   * console.log(node.url);   // http://127.0.0.1:8080
   * await node.close();
   */
  static async start(cfg: NodeConfig | string, opts: NodeOptions = {}): Promise<AtomaNode> {
    const config = typeof cfg === 'string' ? loadConfig(cfg) : cfg;
    const log = opts.logger ?? stderrLogger;
    mkdirSync(config.cacheDir, { recursive: true });
    const key = loadOrCreateNodeKey(config.keyFile);
    const cache = new ContentCache(config.cacheDir);
    const tasks = new Map<string, Task>();
    const engines = new Map<string, ModelEngine>();
    const functions = new Map<string, NodeFunction>();
    const modules = new Map<string, WasmModuleConfig>();
    const compiled: [string, WasmFunction][] = [];
    const ledger = openLedgerPort(config.ledger);
    let jobs: JobStore | null = null;
    try {
      for (const t of config.tasks) {
        const path = await cache.fetch(t.digest, t.source, { onProgress: (p) => log('info', p.done ? 'model fetched' : 'fetching model', { task: t.name, ...p }) });
        log('info', 'model verified', { task: t.name, digest: t.digest, path, fill: cache.fills.get(t.digest) });
        const model = await loadModel(path);
        tasks.set(t.name, { config: t, model });
        if (!engines.has(t.digest)) {
          const engine = await ModelEngine.start(path, t.digest, { packedCacheDir: config.cacheDir });
          engines.set(t.digest, engine);
          // The sidecar is about the model's size again: say where it is, so the disk use has a name.
          if (engine.packed?.file) log('info', engine.packed.built ? 'wrote the decode layout' : 'mapped the decode layout', { task: t.name, file: engine.packed.file });
        }
      }
      for (const f of config.functions) {
        const path = await cache.fetch(f.digest, f.source);
        const bytes = readFileSync(path);
        const memoryMb = f.memoryMb ?? DEFAULT_MEMORY_MB;
        const fn = await WasmFunction.load(bytes, { memoryMb });
        // The cache verified the file; the runner hashes the bytes it compiled: both must agree.
        if (fn.moduleDigest !== f.digest) fail('ERR_DIGEST_MISMATCH', `${path}: module digest ${fn.moduleDigest}, expected ${f.digest}`);
        functions.set(f.name, { config: f, fn });
        // Ledger assignments of this module run within the largest limits any entry for it allows.
        const prior = modules.get(f.digest);
        modules.set(f.digest, { bytes, maxFuel: Math.max(prior?.maxFuel ?? 0, f.fuel), maxMemoryMb: Math.max(prior?.maxMemoryMb ?? 0, memoryMb) });
        compiled.push([f.digest, fn]);
        log('info', 'function verified', { function: f.name, digest: f.digest });
      }
      jobs = new JobStore(join(config.cacheDir, 'node.db'));
    } catch (e) {
      for (const en of engines.values()) await en.close();
      ledger.close();
      throw e;
    }
    const queue = new JobQueue(engines, config.limits.queueLength, config.limits.maxBatch);
    const wasm = new WasmTasks(modules, config.limits.queueLength);
    for (const [d, fn] of compiled) wasm.preload(d, fn);
    const node = new AtomaNode(config, key, tasks, functions, jobs, queue, engines, ledger, log, wasm);
    try {
      await node.joinLedger();
    } catch (e) {
      await node.close(0);
      throw e;
    }
    node.recover();
    node.http = await startHttp(node, config.listen.host, opts.port ?? config.listen.port);
    log('info', 'listening', { url: node.url, publicKey: key.publicKey, ledger: config.ledger.kind, tasks: [...tasks.keys()] });
    return node;
  }

  /**
   * The protocol side: with ledger tasks in the config (or referee = true), checks each ledger
   * task's model digest against the config (ERR_DIGEST_MISMATCH), registers once, subscribes with
   * the configured prices, and follows the stream from the cursor stored in node.db.
   */
  private async joinLedger(): Promise<void> {
    const p = this.config.participation;
    const served = [
      ...this.config.tasks.filter((t) => t.ledgerTask !== undefined).map((t) => ({ task: t.ledgerTask!, digest: t.digest, price: t.pricePerRequest ?? 0, kind: 'inference' as const })),
      ...this.config.functions.filter((f) => f.ledgerTask !== undefined).map((f) => ({ task: f.ledgerTask!, digest: f.digest, price: f.pricePerRequest ?? 0, kind: 'wasm' as const })),
    ];
    if (served.length === 0 && !p.referee) return;
    const { participant, store } = await startParticipant({
      ledger: this.ledger, key: this.key, dbPath: join(this.config.cacheDir, 'node.db'), queue: this.queue, referee: p.referee,
      subscriptions: served, wasm: this.wasm,
      faucet: p.faucet, collateral: p.collateral, log: this.log,
    });
    this.assignments = store;
    this.participant = participant;
  }

  get url(): string {
    return this.http?.url ?? '';
  }

  get ledgerKind(): string {
    return this.config.ledger.kind;
  }

  /** The task a request's "model" names: a task name or a model digest; 404 otherwise. */
  task(model: string): Task {
    const t = this.tasks.get(model) ?? [...this.tasks.values()].find((x) => x.config.digest === model);
    if (!t) throw new ApiError(404, `The model '${model}' does not exist on this node`, 'invalid_request_error', 'model', 'model_not_found');
    return t;
  }

  /** Tokenizes a validated request into an engine request. */
  prepare(task: Task, p: ParsedRequest, id: string): WireRequest {
    const tok = task.model.tokenizer;
    const prompt = p.kind === 'chat' ? tok.encodeChat(p.messages!, { addGenerationPrompt: true, addBos: true }) : tok.encode(p.prompt!, { addBos: true });
    const ctx = task.model.weights.config.contextLength;
    if (prompt.length === 0) throw new ApiError(400, 'the prompt encodes to no tokens', 'invalid_request_error', p.kind === 'chat' ? 'messages' : 'prompt', 'invalid_value');
    if (prompt.length + p.maxTokens - 1 > ctx)
      throw new ApiError(400, `${prompt.length} prompt tokens + ${p.maxTokens} new tokens exceed the context of ${ctx}`, 'invalid_request_error', 'max_tokens', 'context_length_exceeded');
    return { id, prompt, maxTokens: p.maxTokens, seed: p.seed, temperature: p.temperature, topK: p.topK, topP: p.topP, stopTokens: [...tok.stopIds] };
  }

  /**
   * Runs a job that was accepted (recorded in the job database): joins an identical request in
   * flight, answers from the database when it already finished, otherwise queues it.
   */
  execute(row: Omit<JobRow, 'result' | 'error'>, onToken?: (t: number) => void, force = false): Promise<WireResult> {
    const running = this.inflight.get(row.id);
    if (running) return running;
    const prior = this.jobs.get(row.id);
    if (prior?.result) return Promise.resolve(prior.result);
    if (prior?.error) return Promise.reject(new AtomaError(prior.error.message, prior.error.code));
    const task = this.tasks.get(row.task);
    if (!task) return Promise.reject(new ApiError(404, `task '${row.task}' is no longer served`, 'invalid_request_error', 'model', 'model_not_found'));
    const p = this.queue.submit({ model: task.config.digest, request: row.request, onToken }, force).then((r) => {
      this.jobs.finish(row.id, r);
      this.metrics.tokens(r.promptTokens, r.tokens.length);
      return r;
    }, (e: unknown) => {
      // A job the engine refuses would be refused again: record it. A node shutting down leaves it pending.
      if (e instanceof AtomaError && e.code !== 'ERR_DISPOSED' && !(e instanceof QueueFullError)) this.jobs.fail(row.id, { code: e.code, message: e.message });
      throw e;
    }).finally(() => this.inflight.delete(row.id));
    this.inflight.set(row.id, p);
    return p;
  }

  /** The full answer of a finished job, signed. */
  answer(row: Omit<JobRow, 'result' | 'error'>, r: WireResult): Answer {
    const task = this.tasks.get(row.task)!;
    const tok = task.model.tokenizer;
    const text = tok.decode(r.tokens);
    const finish = finishReason(tok, r.tokens);
    const signed = { model: task.config.digest, requestHash: row.id, outputDigest: r.outputDigest, traceRoot: r.traceRoot };
    const atoma = { ...signed, signature: signResponse(this.key, signed), publicKey: this.key.publicKey };
    const body = completionBody(row.kind, `${row.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${row.id.slice(0, 24)}`, row.meta.created as number,
      task.config.name, text, finish, { prompt: r.promptTokens, completion: r.tokens.length }, atoma);
    return { body, text, finish };
  }

  /** Re-queues the jobs a previous run accepted but did not finish. */
  private recover(): void {
    for (const row of this.jobs.pending()) {
      this.log('info', 'recovering unfinished job', { id: row.id, task: row.task });
      this.execute(row, undefined, true).then(
        () => this.log('info', 'recovered job finished', { id: row.id }),
        (e: Error) => this.log('error', 'recovered job failed', { id: row.id, error: e.message }),
      );
    }
  }

  /**
   * Graceful stop: no new connections, queued and running jobs finish (up to `graceMs`; what is
   * left stays pending in the job database for the next start), then threads and databases close.
   */
  close(graceMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      this.log('info', 'shutting down', { queued: this.queue.depth, running: this.queue.active });
      const httpClosed = this.http?.close();
      // No new assignments (unsubscribe); the in-flight ones execute, commit and reveal first.
      if (this.participant) await this.participant.stop(Math.min(graceMs, this.config.participation.drainMs));
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        this.queue.drain().then(() => true),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(false), graceMs); }),
      ]);
      clearTimeout(timer);
      if (!drained) this.log('warn', 'jobs left pending for the next start', { queued: this.queue.depth, running: this.queue.active });
      await Promise.race([httpClosed, new Promise((r) => setTimeout(r, 2000))]);
      this.http?.destroy();
      for (const e of this.engines.values()) await e.close();
      this.jobs.close();
      this.assignments?.close();
      this.ledger.close();
      this.log('info', 'stopped');
    })();
    return this.closing;
  }
}

