/**
 * node.toml: the one configuration file of `atoma node`. Parsed with smol-toml and validated key
 * by key, so a mistake is reported as ERR_NODE_CONFIG naming the key (e.g. `limits.max_tokens`).
 * Relative paths are resolved against the directory of the file, so a config can be moved with
 * its files. See docs/node.md for the format.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { lazyRequire } from '../engine/lazy.js';
import { fail } from '../engine/errors.js';

/** Loaded when a config is parsed, not when the package root is imported. */
const toml = lazyRequire<typeof import('smol-toml')>('smol-toml');

export interface TaskConfig {
  /** The name clients put in "model". */
  name: string;
  /** BLAKE3 hex of the model file (the network's model identity). */
  digest: string;
  /** Where to fetch it: an http(s) URL or a local file path (absolute after loading). */
  source: { url: string } | { path: string };
  /** Price in the ledger's smallest unit per 1000 generated tokens. */
  pricePer1kTokens: number;
  /**
   * The ledger task this model serves (64 hex): the node subscribes to it and executes its
   * assignments. The ledger task's model digest must equal `digest` (ERR_DIGEST_MISMATCH).
   */
  ledgerTask?: string;
  /** The price per request the node asks on the ledger (its subscription price; with ledgerTask). */
  pricePerRequest?: number;
}

/** A WebAssembly function the node runs (lib/wasm), fetched like a model. */
export interface FunctionConfig {
  name: string;
  /** BLAKE3 hex of the .wasm module bytes. */
  digest: string;
  source: { url: string } | { path: string };
  /** Price in the ledger's smallest unit per call. */
  pricePerCall: number;
  /** Fuel budget per call (about one instruction per unit); on a ledger, the most an assignment may ask for. */
  fuel: number;
  /** Linear memory cap in MiB (memory_mb; absent: 64); on a ledger, the most an assignment may ask for. */
  memoryMb?: number;
  /**
   * The ledger task (kind `wasm`) this module serves (64 hex): the node subscribes to it and runs
   * its assignments. The ledger task's module digest must equal `digest` (ERR_DIGEST_MISMATCH).
   */
  ledgerTask?: string;
  /** The price per request the node asks on the ledger (with ledgerTask). */
  pricePerRequest?: number;
}

/** How the node takes part in the protocol (docs/node.md, "On a ledger"). */
export interface LedgerParticipation {
  /** Faucet deposit before the first registration (local ledgers; 0: none). */
  faucet: number;
  /** Collateral to register with (default: the ledger's minCollateral). */
  collateral?: number;
  /** Answer `reexecute` effects: the node key must be one of the genesis referees. */
  referee: boolean;
  /** SIGTERM: how long to finish in-flight assignments before exiting (ms). */
  drainMs: number;
}

export interface NodeConfig {
  listen: { host: string; port: number };
  cacheDir: string;
  /** `pingMs`: the service stream's ping interval (ledger.ping_ms; default 5000). */
  ledger: { kind: 'embedded'; path: string } | { kind: 'service'; url: string; pingMs?: number };
  /** The [ledger] keys of the protocol side; it runs when a task names a ledger_task or referee is on. */
  participation: LedgerParticipation;
  keyFile: string;
  limits: { queueLength: number; maxTokens: number; maxRequestBytes: number; maxBatch: number };
  tasks: TaskConfig[];
  functions: FunctionConfig[];
}

type Table = Record<string, unknown>;

function table(v: unknown, key: string): Table {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date) fail('ERR_NODE_CONFIG', `${key} must be a table`);
  return v as Table;
}

/** Rejects keys the schema does not know: a typo must not silently fall back to a default. */
function known(t: Table, key: string, keys: string[]): void {
  for (const k of Object.keys(t)) if (!keys.includes(k)) fail('ERR_NODE_CONFIG', `unknown key ${key ? key + '.' : ''}${k} (expected one of: ${keys.join(', ')})`);
}

function str(t: Table, k: string, key: string, def?: string): string {
  const v = t[k] ?? def;
  if (typeof v !== 'string' || v === '') fail('ERR_NODE_CONFIG', `${key}.${k} must be a non-empty string${t[k] === undefined ? ' (missing)' : ''}`);
  return v;
}

function int(t: Table, k: string, key: string, def: number, min: number, max: number): number {
  const v = t[k] ?? def;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) fail('ERR_NODE_CONFIG', `${key}.${k} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return n;
}

function bool(t: Table, k: string, key: string, def: boolean): boolean {
  const v = t[k] ?? def;
  if (typeof v !== 'boolean') fail('ERR_NODE_CONFIG', `${key}.${k} must be true or false, got ${JSON.stringify(t[k])}`);
  return v;
}

function parseListen(s: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) fail('ERR_NODE_CONFIG', `node.listen must be host:port, got '${s}'`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** Validates a parsed TOML document; `base` resolves relative paths. */
export function validateConfig(doc: unknown, base: string): NodeConfig {
  const root = table(doc, 'the document');
  known(root, '', ['node', 'ledger', 'keys', 'limits', 'tasks', 'functions']);
  const node = table(root.node ?? {}, 'node');
  known(node, 'node', ['listen', 'cache_dir']);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));

  const ledgerT = table(root.ledger ?? {}, 'ledger');
  known(ledgerT, 'ledger', ['kind', 'path', 'url', 'faucet', 'collateral', 'referee', 'drain_ms', 'ping_ms']);
  const kind = ledgerT.kind ?? 'embedded';
  let ledger: NodeConfig['ledger'];
  if (kind === 'embedded') {
    if (ledgerT.url !== undefined) fail('ERR_NODE_CONFIG', 'ledger.url is only for kind = "service"');
    if (ledgerT.ping_ms !== undefined) fail('ERR_NODE_CONFIG', 'ledger.ping_ms is only for kind = "service"');
    ledger = { kind, path: at(str(ledgerT, 'path', 'ledger', 'ledger.db')) };
  } else if (kind === 'service') {
    if (ledgerT.path !== undefined) fail('ERR_NODE_CONFIG', 'ledger.path is only for kind = "embedded"');
    const url = str(ledgerT, 'url', 'ledger');
    if (!/^http:\/\/[^/]+(\/.*)?$/.test(url)) fail('ERR_NODE_CONFIG', `ledger.url must be http://host:port of \`atoma ledger serve\`, got '${url}'`);
    ledger = { kind, url, ...(ledgerT.ping_ms === undefined ? {} : { pingMs: int(ledgerT, 'ping_ms', 'ledger', 5000, 50, 600_000) }) };
  } else {
    fail('ERR_NODE_CONFIG', `ledger.kind must be "embedded" or "service", got ${JSON.stringify(kind)}`);
  }

  const keys = table(root.keys ?? {}, 'keys');
  known(keys, 'keys', ['node_key']);
  const limitsT = table(root.limits ?? {}, 'limits');
  known(limitsT, 'limits', ['queue_length', 'max_tokens', 'max_request_bytes', 'max_batch']);

  // A node serves at least one model or one WASM function.
  const noFunctions = !Array.isArray(root.functions) || root.functions.length === 0;
  if (root.tasks === undefined && noFunctions) fail('ERR_NODE_CONFIG', 'tasks must be a non-empty array of tables ([[tasks]]) unless [[functions]] are given');
  if (root.tasks !== undefined && (!Array.isArray(root.tasks) || (root.tasks.length === 0 && noFunctions))) fail('ERR_NODE_CONFIG', 'tasks must be a non-empty array of tables ([[tasks]])');
  // A cached artifact: its BLAKE3 digest and exactly one source, an http(s) URL or a path.
  const content = (t: Record<string, unknown>, key: string, field: string, what: string) => {
    const digest = str(t, field, key).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(digest)) fail('ERR_NODE_CONFIG', `${key}.${field} must be the ${what} BLAKE3 digest (64 hex digits)`);
    if ((t.url === undefined) === (t.path === undefined)) fail('ERR_NODE_CONFIG', `${key} needs exactly one of url or path`);
    if (t.path !== undefined) return { digest, source: { path: at(str(t, 'path', key)) } as TaskConfig['source'] };
    const url = str(t, 'url', key);
    if (!/^https?:\/\//.test(url)) fail('ERR_NODE_CONFIG', `${key}.url must be an http:// or https:// URL`);
    return { digest, source: { url } as TaskConfig['source'] };
  };
  const names = new Set<string>();
  const ledgerTasks = new Set<string>();

  // The [ledger] keys of one served ledger task (a model's or a function's).
  const ledgerKeys = (t: Table, key: string, cfg: { ledgerTask?: string; pricePerRequest?: number }) => {
    if (t.ledger_task !== undefined) {
      const lt = str(t, 'ledger_task', key);
      if (!/^[0-9a-f]{64}$/.test(lt)) fail('ERR_NODE_CONFIG', `${key}.ledger_task must be the ledger task id (64 lowercase hex digits)`);
      if (ledgerTasks.has(lt)) fail('ERR_NODE_CONFIG', `${key}.ledger_task ${lt} is used twice`);
      ledgerTasks.add(lt);
      cfg.ledgerTask = lt;
      cfg.pricePerRequest = int(t, 'price_per_request', key, 0, 0, 2 ** 50 - 1);
    } else if (t.price_per_request !== undefined) fail('ERR_NODE_CONFIG', `${key}.price_per_request needs ${key}.ledger_task`);
  };

  const tasks = ((root.tasks ?? []) as unknown[]).map((v, i): TaskConfig => {
    const key = `tasks[${i}]`;
    const t = table(v, key);
    known(t, key, ['name', 'model', 'url', 'path', 'price_per_1k_tokens', 'ledger_task', 'price_per_request']);
    const name = str(t, 'name', key);
    if (names.has(name)) fail('ERR_NODE_CONFIG', `${key}.name '${name}' is used twice`);
    names.add(name);
    const { digest, source } = content(t, key, 'model', "model's");
    const cfg: TaskConfig = { name, digest, source, pricePer1kTokens: int(t, 'price_per_1k_tokens', key, 0, 0, Number.MAX_SAFE_INTEGER) };
    ledgerKeys(t, key, cfg);
    return cfg;
  });

  if (root.functions !== undefined && !Array.isArray(root.functions)) fail('ERR_NODE_CONFIG', 'functions must be an array of tables ([[functions]])');
  const fnames = new Set<string>();
  const functions = ((root.functions ?? []) as unknown[]).map((v, i): FunctionConfig => {
    const key = `functions[${i}]`;
    const t = table(v, key);
    known(t, key, ['name', 'module', 'url', 'path', 'price_per_call', 'fuel', 'memory_mb', 'ledger_task', 'price_per_request']);
    const name = str(t, 'name', key);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) fail('ERR_NODE_CONFIG', `${key}.name must be letters, digits, '.', '_' or '-'`);
    if (fnames.has(name)) fail('ERR_NODE_CONFIG', `${key}.name '${name}' is used twice`);
    fnames.add(name);
    const { digest, source } = content(t, key, 'module', "module's");
    const cfg: FunctionConfig = {
      name, digest, source, pricePerCall: int(t, 'price_per_call', key, 0, 0, Number.MAX_SAFE_INTEGER),
      fuel: int(t, 'fuel', key, 1_000_000_000, 1, Number.MAX_SAFE_INTEGER),
    };
    if (t.memory_mb !== undefined) cfg.memoryMb = int(t, 'memory_mb', key, 64, 1, 4096);
    ledgerKeys(t, key, cfg);
    return cfg;
  });

  return {
    functions,
    listen: parseListen(str(node, 'listen', 'node', '127.0.0.1:8080')),
    cacheDir: at(str(node, 'cache_dir', 'node', 'cache')),
    ledger,
    participation: {
      faucet: int(ledgerT, 'faucet', 'ledger', 0, 0, 2 ** 50 - 1),
      ...(ledgerT.collateral === undefined ? {} : { collateral: int(ledgerT, 'collateral', 'ledger', 0, 1, 2 ** 50 - 1) }),
      referee: bool(ledgerT, 'referee', 'ledger', false),
      drainMs: int(ledgerT, 'drain_ms', 'ledger', 30_000, 0, 3_600_000),
    },
    keyFile: at(str(keys, 'node_key', 'keys', 'node.key')),
    limits: {
      queueLength: int(limitsT, 'queue_length', 'limits', 64, 1, 1_000_000),
      maxTokens: int(limitsT, 'max_tokens', 'limits', 512, 1, 1_000_000),
      maxRequestBytes: int(limitsT, 'max_request_bytes', 'limits', 1 << 20, 64, 1 << 30),
      maxBatch: int(limitsT, 'max_batch', 'limits', 8, 1, 1024),
    },
    tasks,
  };
}

/** Parses TOML text (errors carry the TOML position). */
export function parseConfig(text: string, base: string): NodeConfig {
  let doc: unknown;
  try {
    doc = toml().parse(text);
  } catch (e) {
    fail('ERR_NODE_CONFIG', `node.toml is not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  return validateConfig(doc, base);
}

/**
 * Reads and validates node.toml.
 *
 * @example
 * const cfg = loadConfig('node.toml');   // throws AtomaError ERR_NODE_CONFIG naming the bad key
 */
export function loadConfig(path: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    fail('ERR_NODE_CONFIG', `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseConfig(text, dirname(resolve(path)));
}
