/**
 * Configuration of the Sui ledger client: where the RPC node is, which package and objects to
 * use, which key signs, and how events are polled. Everything is validated up front with
 * ERR_SUI_CONFIG so a typo fails at start-up, not at the first settlement.
 *
 * The same settings can come from a TOML (or JSON) file; there keys are snake_case
 * (`atoma_package_id`, `atoma_db`, ...) and may sit under a `[sui]` table. See docs/sui.md.
 */
import { readFileSync } from 'node:fs';
import { fail } from '../../engine/errors.js';
import { lazyRequire } from '../../engine/lazy.js';
import { SUI_RANDOM_OBJECT_ID } from './abi.js';
import type { SuiKeySource } from './keys.js';
import { normalizeOwned, normalizeShared, parseObjectId, parseU64, type OwnedObjectSpec, type SharedObjectSpec } from './objects.js';

const toml = lazyRequire<typeof import('smol-toml')>('smol-toml');

/** Validated settings. Ids are normalized to `0x` + 64 lowercase hex digits. */
export interface SuiLedgerConfig {
  /** JSON-RPC URL of a Sui full node (http or https). */
  rpcUrl: string;
  /** Package id that transactions call (the newest version after upgrades). */
  packageId: string;
  /** Package id that defines the event types (the original id); defaults to packageId. */
  eventPackageId: string;
  /** The AtomaDb shared object. */
  atomaDb: SharedObjectSpec;
  /** This node's NodeBadge, once registered. */
  nodeBadge?: OwnedObjectSpec;
  /** `sui::random::Random` (0x8). */
  random: SharedObjectSpec;
  /** USDC package id (payments); kept for the rest of the node, not used by these calls. */
  usdcPackageId?: string;
  /** Gas budget in MIST per transaction. */
  gasBudget: bigint;
  /** Signing key source. */
  key: SuiKeySource;
  events: {
    /** Events per queryEvents page (the RPC caps this at 50). */
    pageSize: number;
    /** Pages fetched per poll, so one poll is bounded. */
    maxPagesPerPoll: number;
    /** Pause between polls when caught up. */
    pollIntervalMs: number;
    /** SQLite file holding the event cursor. */
    cursorDbPath: string;
  };
}

/** Default gas budget: 0.05 SUI, the value the Rust node uses. */
export const DEFAULT_GAS_BUDGET = 50_000_000n;
/** Sui's JSON-RPC caps a queryEvents page at 50 (QUERY_MAX_RESULT_LIMIT). */
export const MAX_EVENT_PAGE_SIZE = 50;

const TOP_KEYS = new Set(['rpcUrl', 'packageId', 'eventPackageId', 'atomaDb', 'nodeBadge', 'random', 'usdcPackageId', 'gasBudget', 'key', 'events']);
const EVENT_KEYS = new Set(['pageSize', 'maxPagesPerPoll', 'pollIntervalMs', 'cursorDbPath']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) fail('ERR_SUI_CONFIG', `${where}: unknown setting "${k}" (allowed: ${[...allowed].join(', ')})`);
  }
}

function intIn(v: unknown, what: string, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    fail('ERR_SUI_CONFIG', `${what} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

/** Accepts `"0x…"` or `{ objectId, initialSharedVersion }`. */
function sharedSpec(v: unknown, what: string): SharedObjectSpec {
  if (typeof v === 'string') return normalizeShared({ objectId: v }, what, 'ERR_SUI_CONFIG');
  if (!isRecord(v)) fail('ERR_SUI_CONFIG', `${what} must be an object id or { objectId, initialSharedVersion }`);
  checkKeys(v, new Set(['objectId', 'initialSharedVersion']), what);
  return normalizeShared(v as unknown as SharedObjectSpec, what, 'ERR_SUI_CONFIG');
}

function ownedSpec(v: unknown, what: string): OwnedObjectSpec {
  if (typeof v === 'string') return normalizeOwned({ objectId: v }, what, 'ERR_SUI_CONFIG');
  if (!isRecord(v)) fail('ERR_SUI_CONFIG', `${what} must be an object id or { objectId, version, digest }`);
  checkKeys(v, new Set(['objectId', 'version', 'digest']), what);
  return normalizeOwned(v as unknown as OwnedObjectSpec, what, 'ERR_SUI_CONFIG');
}

function keySource(v: unknown): SuiKeySource {
  if (typeof v === 'string') return { privateKey: v };
  if (!isRecord(v)) fail('ERR_SUI_CONFIG', 'key must be a suiprivkey string, { privateKey } or { keystorePath, address?, index? }');
  if ('privateKey' in v) {
    checkKeys(v, new Set(['privateKey']), 'key');
    if (typeof v.privateKey !== 'string' || !v.privateKey.startsWith('suiprivkey1')) {
      fail('ERR_SUI_CONFIG', 'key.privateKey must be a Bech32 string starting with "suiprivkey1"');
    }
    return { privateKey: v.privateKey };
  }
  checkKeys(v, new Set(['keystorePath', 'address', 'index']), 'key');
  if (typeof v.keystorePath !== 'string' || v.keystorePath.length === 0) fail('ERR_SUI_CONFIG', 'key.keystorePath must be a file path');
  const out: SuiKeySource = { keystorePath: v.keystorePath };
  if (v.address !== undefined) out.address = parseObjectId(v.address, 'key.address', 'ERR_SUI_CONFIG');
  if (v.index !== undefined) out.index = intIn(v.index, 'key.index', 0, 1 << 20, 0);
  return out;
}

/**
 * Validates raw settings (camelCase) into a SuiLedgerConfig.
 *
 * @example
 * const cfg = parseSuiConfig({
 *   rpcUrl: 'https://fullnode.mainnet.sui.io:443',
 *   packageId: '0x…', atomaDb: { objectId: '0x…', initialSharedVersion: 1 },
 *   key: { keystorePath: '/home/me/.sui/sui_config/sui.keystore', address: '0x…' },
 *   events: { cursorDbPath: './atoma-sui.sqlite' },
 * });
 */
export function parseSuiConfig(raw: unknown): SuiLedgerConfig {
  if (!isRecord(raw)) fail('ERR_SUI_CONFIG', 'sui config must be an object');
  checkKeys(raw, TOP_KEYS, 'sui config');

  if (typeof raw.rpcUrl !== 'string') fail('ERR_SUI_CONFIG', 'rpcUrl is required (JSON-RPC URL of a Sui full node)');
  let url: URL;
  try {
    url = new URL(raw.rpcUrl);
  } catch {
    return fail('ERR_SUI_CONFIG', `rpcUrl "${raw.rpcUrl}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('ERR_SUI_CONFIG', `rpcUrl must be http(s), got ${url.protocol}`);

  if (raw.packageId === undefined) fail('ERR_SUI_CONFIG', 'packageId is required');
  const packageId = parseObjectId(raw.packageId, 'packageId', 'ERR_SUI_CONFIG');
  const eventPackageId = raw.eventPackageId === undefined ? packageId : parseObjectId(raw.eventPackageId, 'eventPackageId', 'ERR_SUI_CONFIG');
  if (raw.atomaDb === undefined) fail('ERR_SUI_CONFIG', 'atomaDb is required (the AtomaDb shared object id)');
  const atomaDb = sharedSpec(raw.atomaDb, 'atomaDb');
  const random = raw.random === undefined ? { objectId: SUI_RANDOM_OBJECT_ID } : sharedSpec(raw.random, 'random');
  if (random.objectId !== SUI_RANDOM_OBJECT_ID) fail('ERR_SUI_CONFIG', `random must be the system object ${SUI_RANDOM_OBJECT_ID}`);
  if (raw.key === undefined) fail('ERR_SUI_CONFIG', 'key is required (suiprivkey string or keystore file)');

  const ev = raw.events === undefined ? {} : raw.events;
  if (!isRecord(ev)) fail('ERR_SUI_CONFIG', 'events must be a table');
  checkKeys(ev, EVENT_KEYS, 'events');
  if (ev.cursorDbPath !== undefined && (typeof ev.cursorDbPath !== 'string' || ev.cursorDbPath.length === 0)) {
    fail('ERR_SUI_CONFIG', 'events.cursorDbPath must be a file path');
  }

  const cfg: SuiLedgerConfig = {
    rpcUrl: url.toString(),
    packageId,
    eventPackageId,
    atomaDb,
    random,
    gasBudget: raw.gasBudget === undefined ? DEFAULT_GAS_BUDGET : parseU64(raw.gasBudget, 'gasBudget', 'ERR_SUI_CONFIG'),
    key: keySource(raw.key),
    events: {
      pageSize: intIn(ev.pageSize, 'events.pageSize', 1, MAX_EVENT_PAGE_SIZE, MAX_EVENT_PAGE_SIZE),
      maxPagesPerPoll: intIn(ev.maxPagesPerPoll, 'events.maxPagesPerPoll', 1, 10_000, 20),
      pollIntervalMs: intIn(ev.pollIntervalMs, 'events.pollIntervalMs', 10, 3_600_000, 1_000),
      cursorDbPath: (ev.cursorDbPath as string | undefined) ?? 'atoma-sui-events.sqlite',
    },
  };
  if (cfg.gasBudget === 0n) fail('ERR_SUI_CONFIG', 'gasBudget must be > 0');
  if (raw.nodeBadge !== undefined) cfg.nodeBadge = ownedSpec(raw.nodeBadge, 'nodeBadge');
  if (raw.usdcPackageId !== undefined) cfg.usdcPackageId = parseObjectId(raw.usdcPackageId, 'usdcPackageId', 'ERR_SUI_CONFIG');
  return cfg;
}

function snakeToCamel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeToCamel);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = snakeToCamel(v);
  return out;
}

/** Renames the file keys shared with the Rust node's config to ours. */
const FILE_ALIASES: Record<string, string> = {
  httpRpcNodeAddr: 'rpcUrl',
  atomaPackageId: 'packageId',
  atomaEventPackageId: 'eventPackageId',
};

/**
 * Reads settings from a TOML (`.toml`) or JSON file; a `[sui]` table is used if present.
 *
 * @example
 * const cfg = loadSuiConfig('./config.toml');
 */
export function loadSuiConfig(path: string): SuiLedgerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return fail('ERR_SUI_CONFIG', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : toml().parse(text);
  } catch (e) {
    return fail('ERR_SUI_CONFIG', `${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (isRecord(doc) && isRecord(doc.sui)) doc = doc.sui;
  const camel = snakeToCamel(doc);
  if (isRecord(camel)) {
    for (const [from, to] of Object.entries(FILE_ALIASES)) {
      if (from in camel) {
        if (to in camel) fail('ERR_SUI_CONFIG', `${path}: both ${from} and ${to} given`);
        camel[to] = camel[from];
        delete camel[from];
      }
    }
  }
  return parseSuiConfig(camel);
}
