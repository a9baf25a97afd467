/** atoma node: node.toml validation, the node key and signatures, the content cache. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomaError } from '../lib/engine/errors.js';
import { blake3, hashFile } from '../lib/engine/hash.js';
import { decodeLayoutPreferred } from '../lib/model/linear.js';
import { initModel } from '../lib/model/init.js';
import { AtomaNode } from '../lib/node/node.js';
import { ContentCache, redirectTarget, type FetchProgress } from '../lib/node/cache.js';
import { parseConfig } from '../lib/node/config.js';
import { loadOrCreateNodeKey, requestHash, signResponse, verifyResponse } from '../lib/node/keys.js';
import { root, runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-node-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function code(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    return { code: (e as AtomaError).code, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

const TASK = `[[tasks]]\nname = "tiny"\nmodel = "${'ab'.repeat(32)}"\npath = "m.gguf"\n`;

describe('node.toml', () => {
  it('loads the example of docs/node.md', () => {
    const doc = readFileSync(join(root, 'docs', 'node.md'), 'utf8');
    const m = /```toml\n([\s\S]*?)```/.exec(doc);
    expect(m).not.toBeNull();
    const cfg = parseConfig(m![1], '/srv/atoma');
    expect(cfg.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(cfg.cacheDir).toBe('/srv/atoma/cache');
    expect(cfg.ledger).toEqual({ kind: 'embedded', path: '/srv/atoma/ledger.db' });
    expect(cfg.keyFile).toBe('/srv/atoma/node.key');
    expect(cfg.limits).toEqual({ queueLength: 64, maxTokens: 512, maxRequestBytes: 1048576, maxBatch: 8 });
    expect(cfg.tasks).toEqual([{ name: 'tiny', digest: '0'.repeat(64), source: { url: 'http://127.0.0.1:9000/tiny.gguf' }, pricePer1kTokens: 10 }]);
    expect(cfg.functions).toEqual([{ name: 'minify', digest: '1'.repeat(64), source: { path: '/srv/atoma/functions/json-minify.wasm' }, pricePerCall: 1, fuel: 100000000 }]);
  });

  it('applies defaults and the service ledger', () => {
    const cfg = parseConfig(`[ledger]\nkind = "service"\nurl = "http://127.0.0.1:7400"\n${TASK}`, '/x');
    expect(cfg.ledger).toEqual({ kind: 'service', url: 'http://127.0.0.1:7400' });
    expect(cfg.listen.host).toBe('127.0.0.1');
    expect(cfg.tasks[0].source).toEqual({ path: '/x/m.gguf' });
  });

  it.each([
    ['[limits]\nmax_tokns = 5\n' + TASK, 'limits.max_tokns'],
    ['[limits]\nmax_tokens = 0\n' + TASK, 'limits.max_tokens'],
    ['[limits]\nqueue_length = "8"\n' + TASK, 'limits.queue_length'],
    ['[node]\nlisten = "localhost"\n' + TASK, 'node.listen'],
    ['[ledger]\nkind = "chain"\n' + TASK, 'ledger.kind'],
    ['[ledger]\nkind = "service"\n' + TASK, 'ledger.url'],
    ['[ledger]\nkind = "service"\nurl = "ws://x"\n' + TASK, 'ledger.url'],
    ['[node]\nlisten = "127.0.0.1:1"\n', 'tasks'],
    [TASK.replace('ab'.repeat(32), 'xyz'), 'tasks[0].model'],
    [TASK + 'url = "http://127.0.0.1/m"\n', 'tasks[0]'],
    [TASK + TASK, "tasks[1].name 'tiny'"],
    [TASK + 'price_per_1k_tokens = -1\n', 'tasks[0].price_per_1k_tokens'],
    ['stray = 1\n' + TASK, 'unknown key stray'],
    ['[node\n', 'not valid TOML'],
    [TASK + '[[functions]]\nname = "f"\nmodule = "00"\npath = "f.wasm"\n', 'functions[0].module'],
    [TASK + `[[functions]]\nname = "a b"\nmodule = "${'0'.repeat(64)}"\npath = "f.wasm"\n`, 'functions[0].name'],
    [TASK + `[[functions]]\nname = "f"\nmodule = "${'0'.repeat(64)}"\npath = "f.wasm"\nfuel = 0\n`, 'functions[0].fuel'],
    ['functions = 3\n' + TASK, 'functions must be an array'],
  ])('rejects %j naming %s', (text, key) => {
    const e = code(() => parseConfig(text, '/x'));
    expect(e.code).toBe('ERR_NODE_CONFIG');
    expect(e.message).toContain(key);
  });
});

describe('node key and signatures', () => {
  it('creates the key with mode 0600, reloads it, refuses a readable one', () => {
    const path = join(dir, 'keys', 'node.key');
    const a = loadOrCreateNodeKey(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadOrCreateNodeKey(path).publicKey).toBe(a.publicKey);
    expect(a.publicKey).toMatch(/^[0-9a-f]{64}$/);
    chmodSync(path, 0o644);
    expect(code(() => loadOrCreateNodeKey(path)).code).toBe('ERR_NODE_KEY');
    chmodSync(path, 0o600);
    writeFileSync(join(dir, 'bad.key'), 'not a key', { mode: 0o600 });
    expect(code(() => loadOrCreateNodeKey(join(dir, 'bad.key'))).code).toBe('ERR_NODE_KEY');
  });

  it('signs and verifies; any changed field fails', () => {
    const key = loadOrCreateNodeKey(join(dir, 'sig.key'));
    const f = { model: 'aa'.repeat(32), requestHash: requestHash('{"x":1}'), outputDigest: 'bb'.repeat(32), traceRoot: 'cc'.repeat(32) };
    const sig = signResponse(key, f);
    expect(verifyResponse(f, sig, key.publicKey)).toBe(true);
    expect(verifyResponse({ ...f, outputDigest: 'bd'.repeat(32) }, sig, key.publicKey)).toBe(false);
    expect(verifyResponse({ ...f, requestHash: requestHash('{"x":2}') }, sig, key.publicKey)).toBe(false);
    const other = loadOrCreateNodeKey(join(dir, 'other.key'));
    expect(verifyResponse(f, sig, other.publicKey)).toBe(false);
    expect(verifyResponse(f, 'zz', key.publicKey)).toBe(false);
  });
});

describe('content cache', () => {
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 8)) & 255;
  const digest = blake3(data).toString('hex');
  let server: http.Server;
  let base = '';
  const ranges: string[] = [];
  let honourRange = true;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      // /hop/N answers 302 to /hop/N-1 (a relative Location), /hop/0 to the blob's absolute URL.
      const hop = /^\/hop\/(\d+)$/.exec(req.url ?? '');
      if (hop) {
        const n = Number(hop[1]);
        res.writeHead(302, { location: n === 0 ? `${base}/blob` : `/hop/${n - 1}` }).end();
        return;
      }
      if (req.url !== '/blob') {
        res.writeHead(404).end();
        return;
      }
      const r = req.headers.range;
      ranges.push(r ?? '');
      const m = r && honourRange ? /^bytes=(\d+)-$/.exec(r) : null;
      if (m) {
        const from = Number(m[1]);
        res.writeHead(206, { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}`, 'content-length': data.length - from });
        res.end(data.subarray(from));
      } else {
        res.writeHead(200, { 'content-length': data.length });
        res.end(data);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fetches a local file, verified, and refuses a mismatch', async () => {
    const src = join(dir, 'blob.bin');
    writeFileSync(src, data);
    const cache = new ContentCache(join(dir, 'c1'));
    const p = await cache.fetch(digest, { path: src });
    expect(readFileSync(p).equals(data)).toBe(true);
    const wrong = 'ee'.repeat(32);
    await expect(cache.fetch(wrong, { path: src })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(existsSync(cache.blobPath(wrong))).toBe(false);
    expect(existsSync(cache.partialPath(wrong))).toBe(false);
  });

  it('hard-links a local file into the cache (one copy on disk), and never alters the source', async () => {
    const src = join(dir, 'linked.bin');
    writeFileSync(src, data);
    const cache = new ContentCache(join(dir, 'c-link'));
    await expect(cache.fetch('ee'.repeat(32), { path: src })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(statSync(src).nlink).toBe(1);
    const p = await cache.fetch(digest, { path: src });
    expect(cache.fills.get(digest)).toBe('linked');
    expect(statSync(p).ino).toBe(statSync(src).ino);
    expect(statSync(src).nlink).toBe(2);
    // A blob that no longer verifies is unlinked from the cache; the source file stays.
    const again = new ContentCache(join(dir, 'c-link'));
    writeFileSync(src, Buffer.alloc(data.length, 1));
    expect(await again.get(digest)).toBeNull();
    expect(existsSync(src)).toBe(true);
  });

  it('copies a local file when it cannot be linked (another file system)', async (ctx) => {
    // /dev/shm is a tmpfs: a hard link to it from the temp directory's file system fails with EXDEV.
    if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(dir).dev) ctx.skip();
    const other = mkdtempSync('/dev/shm/atoma-cache-');
    try {
      const src = join(other, 'blob.bin');
      writeFileSync(src, data);
      const cache = new ContentCache(join(dir, 'c-copy'));
      const p = await cache.fetch(digest, { path: src });
      expect(cache.fills.get(digest)).toBe('copied');
      expect(statSync(p).ino).not.toBe(statSync(src).ino);
      expect(readFileSync(p).equals(data)).toBe(true);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('follows redirects (relative and absolute), up to a bound, and reports progress', async () => {
    const cache = new ContentCache(join(dir, 'c-redirect'));
    const seen: FetchProgress[] = [];
    const p = await cache.fetch(digest, { url: `${base}/hop/3` }, { onProgress: (x) => seen.push(x) });
    expect(readFileSync(p).equals(data)).toBe(true);
    expect(seen[0]).toEqual({ from: `${base}/hop/3`, bytes: 0, total: data.length, done: false });
    expect(seen.at(-1)).toEqual({ from: `${base}/hop/3`, bytes: data.length, total: data.length, done: true });
    // Every 5% at most: a bounded number of lines whatever the size.
    expect(seen.length).toBeLessThanOrEqual(22);
    for (let i = 1; i < seen.length; i++) expect(seen[i].bytes).toBeGreaterThanOrEqual(seen[i - 1].bytes);
    const other = new ContentCache(join(dir, 'c-redirect-2'));
    // /hop/N is N + 1 redirects.
    await expect(other.fetch('ab'.repeat(32), { url: `${base}/hop/3` }, { maxRedirects: 3 })).rejects.toMatchObject({ code: 'ERR_FETCH', message: expect.stringContaining('more than 3 redirects') });
    await expect(other.fetch(digest, { url: `${base}/hop/2` }, { maxRedirects: 3 })).resolves.toBe(other.blobPath(digest));
  });

  it('redirects never go from https down to http, nor leave http(s)', () => {
    expect(redirectTarget('http://a.example/m', 'http://a.example/m', 'https://cdn.example/x').href).toBe('https://cdn.example/x');
    expect(redirectTarget('https://a.example/m', 'https://a.example/m', '/x?y=1').href).toBe('https://a.example/x?y=1');
    expect(redirectTarget('http://a.example/m', 'https://b.example/m', 'http://c.example/x').href).toBe('http://c.example/x');
    expect(() => redirectTarget('https://a.example/m', 'https://a.example/m', 'http://cdn.example/x')).toThrow(expect.objectContaining({ code: 'ERR_FETCH', message: expect.stringContaining('from https down to http://cdn.example/x') }));
    expect(() => redirectTarget('http://a.example/m', 'http://a.example/m', 'file:///etc/passwd')).toThrow(expect.objectContaining({ code: 'ERR_FETCH' }));
  });

  it('resumes an interrupted download with a Range request', async () => {
    const cache = new ContentCache(join(dir, 'c2'));
    ranges.length = 0;
    await expect(cache.fetch(digest, { url: `${base}/blob` }, { abortAfterBytes: 100_000 })).rejects.toMatchObject({ code: 'ERR_FETCH' });
    expect(statSync(cache.partialPath(digest)).size).toBe(100_000);
    expect(existsSync(cache.blobPath(digest))).toBe(false);
    const p = await cache.fetch(digest, { url: `${base}/blob` });
    expect(ranges).toEqual(['', 'bytes=100000-']);
    expect(readFileSync(p).equals(data)).toBe(true);
    expect(existsSync(cache.partialPath(digest))).toBe(false);
    // Cached: no further request.
    await cache.fetch(digest, { url: `${base}/blob` });
    expect(ranges.length).toBe(2);
  });

  it('starts over when the server ignores Range', async () => {
    const cache = new ContentCache(join(dir, 'c3'));
    await expect(cache.fetch(digest, { url: `${base}/blob` }, { abortAfterBytes: 50_000 })).rejects.toMatchObject({ code: 'ERR_FETCH' });
    honourRange = false;
    try {
      const p = await cache.fetch(digest, { url: `${base}/blob` });
      expect(readFileSync(p).equals(data)).toBe(true);
    } finally {
      honourRange = true;
    }
  });

  it('refuses a download whose hash differs, a corrupt partial file, and an altered blob', async () => {
    const cache = new ContentCache(join(dir, 'c4'));
    const wrong = 'dd'.repeat(32);
    await expect(cache.fetch(wrong, { url: `${base}/blob` })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(existsSync(cache.blobPath(wrong))).toBe(false);
    // A partial file with wrong bytes: the resumed whole does not verify and is discarded.
    writeFileSync(cache.partialPath(digest), Buffer.alloc(1000, 7));
    await expect(cache.fetch(digest, { url: `${base}/blob` })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(existsSync(cache.partialPath(digest))).toBe(false);
    const p = await cache.fetch(digest, { url: `${base}/blob` });
    // Altered on disk: a new process (new cache object) re-hashes it and refuses it.
    const bytes = readFileSync(p);
    bytes[5] ^= 1;
    writeFileSync(p, bytes);
    const again = new ContentCache(join(dir, 'c4'));
    expect(await again.get(digest)).toBeNull();
    expect(existsSync(p)).toBe(false);
    await expect(again.fetch(digest, { url: `${base}/nothing` })).rejects.toMatchObject({ code: 'ERR_FETCH' });
  });
});

/** Bytes the model files under `root` take (not the databases or keys), each inode once (as du counts hard links). */
function diskBytes(root: string): number {
  const seen = new Set<number>();
  let total = 0;
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const st = statSync(join(root, name));
    if (!st.isFile() || seen.has(st.ino) || /\.(db|db-wal|db-shm|key)$/.test(name)) continue;
    seen.add(st.ino);
    total += st.size;
  }
  return total;
}

describe("a node's model on disk", () => {
  it('a path model is linked, not copied, and the decode layout goes to cache_dir, logged', async () => {
    const home = mkdtempSync(join(tmpdir(), 'atoma-node-disk-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'atoma-env-cache-'));
    const model = join(home, 'm.gguf');
    initModel(model, { seed: 5, format: 'q8_0' });
    const digest = (await hashFile(model)).toString('hex');
    const cfg = parseConfig(`[node]\ncache_dir = "cache"\n[ledger]\nkind = "embedded"\npath = "ledger.db"\n[keys]\nnode_key = "node.key"\n` +
      `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\npath = "m.gguf"\n`, home);
    const logs: { msg: string; [k: string]: unknown }[] = [];
    // The engine thread takes its environment from here: the old default (ATOMA_CACHE_DIR) points elsewhere.
    const saved = process.env.ATOMA_CACHE_DIR;
    process.env.ATOMA_CACHE_DIR = elsewhere;
    let node: AtomaNode | undefined;
    try {
      node = await AtomaNode.start(cfg, { port: 0, logger: (_level, msg, f) => logs.push({ msg, ...f }) });
    } finally {
      if (saved === undefined) delete process.env.ATOMA_CACHE_DIR;
      else process.env.ATOMA_CACHE_DIR = saved;
      await node?.close();
    }
    const blob = join(home, 'cache', 'blobs', digest);
    expect(statSync(blob).ino).toBe(statSync(model).ino);
    expect(logs.find((l) => l.msg === 'model verified')).toMatchObject({ fill: 'linked', path: blob });
    const size = statSync(model).size;
    expect(readdirSync(elsewhere)).toEqual([]);
    if (decodeLayoutPreferred()) {
      // The sidecar (about the model's size) is the one other copy, in cache_dir, and named in the log.
      const wrote = logs.find((l) => l.msg === 'wrote the decode layout');
      expect(wrote?.file).toMatch(new RegExp(`^${join(home, 'cache', 'packed')}/${digest}\\.`));
      expect(existsSync(wrote!.file as string)).toBe(true);
      expect(diskBytes(home)).toBeLessThan(2.2 * size);
    } else {
      expect(logs.some((l) => /decode layout/.test(l.msg))).toBe(false);
      expect(diskBytes(home)).toBeLessThan(1.2 * size);
    }
    rmSync(home, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });
});

describe('atoma node CLI', () => {
  it('exits 1 naming the bad key, 2 without --config', () => {
    const cfg = join(dir, 'bad.toml');
    writeFileSync(cfg, '[limits]\nmax_tokens = -3\n' + TASK);
    const r = runCli(['node', '--config', cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('limits.max_tokens');
    expect(r.stderr).toContain('[ERR_NODE_CONFIG]');
    expect(runCli(['node']).status).toBe(2);
    expect(runCli(['node', '--help']).stdout).toContain('--config');
  });
});
