/** Sui config and key loading: real suiprivkey strings and sui.keystore files, typed errors. */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Secp256k1Keypair } from '@mysten/sui/keypairs/secp256k1';
import { decodeSuiPrivateKey } from '@mysten/sui/cryptography';
import { AtomaError } from '../lib/engine/errors.js';
import { loadSuiConfig, loadSuiKey, parseSuiConfig } from '../lib/protocol/sui/index.js';

let dir: string;
const ed = Ed25519Keypair.fromSecretKey(new Uint8Array(32).fill(3));
const k1 = Secp256k1Keypair.fromSecretKey(new Uint8Array(32).fill(4));
/** A keystore entry as the Sui CLI writes it: base64(flag || 32-byte secret). */
const entry = (kp: Ed25519Keypair | Secp256k1Keypair) => {
  const { secretKey } = decodeSuiPrivateKey(kp.getSecretKey());
  const flag = kp.getKeyScheme() === 'ED25519' ? 0 : 1;
  return Buffer.concat([Buffer.from([flag]), Buffer.from(secretKey)]).toString('base64');
};

function errCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (!(e instanceof AtomaError)) throw e;
    return e.code;
  }
  return 'no error';
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'atoma-sui-'));
  writeFileSync(join(dir, 'two.keystore'), JSON.stringify([entry(ed), entry(k1)]));
  writeFileSync(join(dir, 'one.keystore'), JSON.stringify([entry(ed)]));
  writeFileSync(join(dir, 'badflag.keystore'), JSON.stringify([Buffer.concat([Buffer.from([9]), Buffer.alloc(32, 1)]).toString('base64')]));
  writeFileSync(join(dir, 'short.keystore'), JSON.stringify([Buffer.alloc(20, 1).toString('base64')]));
  writeFileSync(join(dir, 'notjson.keystore'), 'AAAA');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadSuiKey', () => {
  it('decodes suiprivkey strings to the same address', () => {
    expect(loadSuiKey(ed.getSecretKey()).toSuiAddress()).toBe(ed.toSuiAddress());
    expect(loadSuiKey({ privateKey: k1.getSecretKey() }).toSuiAddress()).toBe(k1.toSuiAddress());
  });

  it('reads sui.keystore files by address, index, or the single entry', () => {
    expect(loadSuiKey({ keystorePath: join(dir, 'two.keystore'), address: k1.toSuiAddress() }).toSuiAddress()).toBe(k1.toSuiAddress());
    expect(loadSuiKey({ keystorePath: join(dir, 'two.keystore'), index: 0 }).toSuiAddress()).toBe(ed.toSuiAddress());
    expect(loadSuiKey({ keystorePath: join(dir, 'one.keystore') }).toSuiAddress()).toBe(ed.toSuiAddress());
  });

  it('rejects bad keys with ERR_SUI_KEY and never echoes the secret', () => {
    expect(errCode(() => loadSuiKey('suiprivkey1qqqqq'))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey('0xdeadbeef'))).toBe('ERR_SUI_KEY');
    const corrupted = ed.getSecretKey().slice(0, -1) + (ed.getSecretKey().endsWith('q') ? 'p' : 'q');
    try {
      loadSuiKey(corrupted);
      expect.unreachable();
    } catch (e) {
      expect((e as AtomaError).code).toBe('ERR_SUI_KEY');
      expect((e as Error).message).not.toContain(corrupted);
    }
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'missing.keystore') }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'notjson.keystore') }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'two.keystore') }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'two.keystore'), index: 2 }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'two.keystore'), address: '0x' + '1'.repeat(64) }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'badflag.keystore') }))).toBe('ERR_SUI_KEY');
    expect(errCode(() => loadSuiKey({ keystorePath: join(dir, 'short.keystore') }))).toBe('ERR_SUI_KEY');
  });
});

describe('parseSuiConfig / loadSuiConfig', () => {
  const base = {
    rpcUrl: 'http://127.0.0.1:9000',
    packageId: '0xabc',
    atomaDb: '0xdb',
    key: { keystorePath: '/x/sui.keystore', address: '0x1' },
  };

  it('normalizes ids and fills defaults', () => {
    const c = parseSuiConfig(base);
    expect(c.packageId).toBe('0x' + '0'.repeat(61) + 'abc');
    expect(c.eventPackageId).toBe(c.packageId);
    expect(c.atomaDb).toEqual({ objectId: '0x' + '0'.repeat(62) + 'db' });
    expect(c.random.objectId).toBe('0x' + '0'.repeat(63) + '8');
    expect(c.gasBudget).toBe(50_000_000n);
    expect(c.events).toEqual({ pageSize: 50, maxPagesPerPoll: 20, pollIntervalMs: 1000, cursorDbPath: 'atoma-sui-events.sqlite' });
  });

  it('rejects every malformed setting with ERR_SUI_CONFIG', () => {
    const bad: unknown[] = [
      null,
      { ...base, rpcUrl: 'ftp://x' },
      { ...base, rpcUrl: 'not a url' },
      { ...base, packageId: 'abc' },
      { ...base, packageId: '0x' + '1'.repeat(65) },
      { ...base, atomaDb: undefined },
      { ...base, atomaDb: { objectId: '0xdb', initialSharedVersion: -1 } },
      { ...base, atomaDb: { objectId: '0xdb', initialSharedVersion: 1, extra: 1 } },
      { ...base, nodeBadge: { objectId: '0x1', version: 3 } },
      { ...base, nodeBadge: { objectId: '0x1', version: 3, digest: 'not-base58!' } },
      { ...base, random: '0x9' },
      { ...base, key: undefined },
      { ...base, key: { privateKey: 'hex' } },
      { ...base, key: { keystorePath: '' } },
      { ...base, gasBudget: 0 },
      { ...base, gasBudget: '1e9' },
      { ...base, events: { pageSize: 51 } },
      { ...base, events: { pollIntervalMs: 1.5 } },
      { ...base, events: { cursorDb: 'typo' } },
      { ...base, rpcURL: 'typo' },
    ];
    for (const raw of bad) expect(errCode(() => parseSuiConfig(raw)), JSON.stringify(raw)).toBe('ERR_SUI_CONFIG');
  });

  it('loads a TOML file with snake_case keys and the Rust node names', () => {
    const p = join(dir, 'config.toml');
    writeFileSync(
      p,
      [
        '[sui]',
        'http_rpc_node_addr = "http://127.0.0.1:9000"',
        'atoma_package_id = "0x12"',
        'event_package_id = "0x11"',
        'atoma_db = { object_id = "0xdb", initial_shared_version = 17 }',
        'node_badge = { object_id = "0xbd", version = 101, digest = "11111111111111111111111111111111" }',
        'gas_budget = 10000000',
        `key = { keystore_path = "${join(dir, 'two.keystore')}", address = "${ed.toSuiAddress()}" }`,
        '[sui.events]',
        'page_size = 10',
        `cursor_db_path = "${join(dir, 'cursor.sqlite')}"`,
      ].join('\n'),
    );
    const c = loadSuiConfig(p);
    expect(c.rpcUrl).toBe('http://127.0.0.1:9000/');
    expect(c.packageId.endsWith('12')).toBe(true);
    expect(c.eventPackageId.endsWith('11')).toBe(true);
    expect(c.atomaDb.initialSharedVersion).toBe(17n);
    expect(c.nodeBadge?.version).toBe(101n);
    expect(c.gasBudget).toBe(10_000_000n);
    expect(c.events.pageSize).toBe(10);
    expect(loadSuiKey(c.key).toSuiAddress()).toBe(ed.toSuiAddress());
  });

  it('reports unreadable and unparsable files', () => {
    expect(errCode(() => loadSuiConfig(join(dir, 'nope.toml')))).toBe('ERR_SUI_CONFIG');
    writeFileSync(join(dir, 'broken.toml'), 'atoma_db = [');
    expect(errCode(() => loadSuiConfig(join(dir, 'broken.toml')))).toBe('ERR_SUI_CONFIG');
  });

  it('the TOML example in docs/sui.md loads', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'sui.md'), 'utf8');
    const toml = /```toml\n([\s\S]*?)```/.exec(doc)![1].replaceAll('0x…', '0xabc').replace('/home/me/.sui/sui_config/sui.keystore', join(dir, 'one.keystore'));
    const p = join(dir, 'doc.toml');
    writeFileSync(p, toml);
    const c = loadSuiConfig(p);
    expect(c.atomaDb.initialSharedVersion).toBe(123n);
    expect(c.random.initialSharedVersion).toBe(456n);
    expect(c.events.maxPagesPerPoll).toBe(20);
  });
});

