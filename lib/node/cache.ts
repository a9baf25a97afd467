/**
 * A content-addressed cache of models and WASM modules: blobs/<blake3 hex>. A blob is written to
 * partial/<digest>.part, hashed while it streams in, and renamed into blobs/ only when its BLAKE3
 * equals the digest asked for; a blob is hashed again the first time a process uses it (a file
 * changed on disk is refused, not run). Downloads resume: the partial file is hashed again to
 * rebuild the hasher state (BLAKE3 state cannot be saved portably), then an HTTP Range request
 * continues from its length; a server that ignores Range (200) makes the download start over.
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, openSync, fsyncSync, closeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { AtomaError, fail } from '../engine/errors.js';
import { createHasher, hashFile } from '../engine/hash.js';

export type CacheSource = { url: string } | { path: string };

export interface CacheFetchOptions {
  /** Stop after this many bytes of the body (tests use it to leave a partial file). */
  abortAfterBytes?: number;
  timeoutMs?: number;
}

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * @example
 * const cache = new ContentCache('/var/cache/atoma');
 * const file = await cache.fetch('3f2a...', { url: 'http://127.0.0.1:9000/model.gguf' });
 */
export class ContentCache {
  private readonly verified = new Set<string>();
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    mkdirSync(join(dir, 'partial'), { recursive: true });
  }

  blobPath(digest: string): string {
    return join(this.dir, 'blobs', digest);
  }

  partialPath(digest: string): string {
    return join(this.dir, 'partial', `${digest}.part`);
  }

  /** The verified path of a blob already in the cache, or null. A blob that no longer matches is deleted. */
  async get(digest: string): Promise<string | null> {
    if (!DIGEST.test(digest)) fail('ERR_ARGUMENT', `cache: digest must be 64 lowercase hex digits, got '${digest}'`);
    const p = this.blobPath(digest);
    if (!existsSync(p)) return null;
    if (this.verified.has(digest)) return p;
    const actual = (await hashFile(p)).toString('hex');
    if (actual !== digest) {
      rmSync(p, { force: true });
      return null;
    }
    this.verified.add(digest);
    return p;
  }

  /** Returns the verified path of the blob, fetching it from `source` if it is not cached. */
  async fetch(digest: string, source: CacheSource, opts: CacheFetchOptions = {}): Promise<string> {
    const have = await this.get(digest);
    if (have) return have;
    const part = this.partialPath(digest);
    const hasher = createHasher();
    if ('path' in source) {
      rmSync(part, { force: true });
      await this.pipe(createReadStream(source.path), part, hasher, 0, opts, source.path);
    } else {
      let offset = existsSync(part) ? statSync(part).size : 0;
      // Rebuild the hash state of the bytes already on disk.
      if (offset > 0) for await (const c of createReadStream(part)) hasher.update(c as Buffer);
      const res = await get(source.url, offset, opts.timeoutMs ?? 60_000);
      if (res.statusCode === 206 && offset > 0) {
        const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== offset) {
          res.destroy();
          fail('ERR_FETCH', `${source.url}: the server resumed at the wrong offset (${String(res.headers['content-range'])}, expected ${offset})`);
        }
      } else if (res.statusCode === 200) {
        if (offset > 0) {
          // The server sent the whole file: start over.
          const fresh = createHasher();
          offset = 0;
          rmSync(part, { force: true });
          await this.pipe(res, part, fresh, 0, opts, source.url);
          return this.commit(digest, part, fresh.digest().toString('hex'), source.url);
        }
      } else {
        res.resume();
        fail('ERR_FETCH', `${source.url}: HTTP ${res.statusCode}`);
      }
      await this.pipe(res, part, hasher, offset, opts, source.url);
    }
    return this.commit(digest, part, hasher.digest().toString('hex'), 'path' in source ? source.path : source.url);
  }

  private commit(digest: string, part: string, actual: string, from: string): string {
    if (actual !== digest) {
      rmSync(part, { force: true });
      fail('ERR_DIGEST_MISMATCH', `${from}: BLAKE3 is ${actual}, expected ${digest}; the download was discarded`);
    }
    const fd = openSync(part, 'r');
    try {
      fsyncSync(fd);   // the bytes are on disk before the name says they are complete
    } finally {
      closeSync(fd);
    }
    const dest = this.blobPath(digest);
    renameSync(part, dest);
    this.verified.add(digest);
    return dest;
  }

  private async pipe(src: AsyncIterable<unknown> & { destroy?(): void }, part: string, hasher: ReturnType<typeof createHasher>,
    offset: number, opts: CacheFetchOptions, from: string): Promise<void> {
    const out = createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
    let n = 0;
    try {
      for await (const chunk of src) {
        let c = chunk as Buffer;
        if (opts.abortAfterBytes !== undefined && n + c.length > opts.abortAfterBytes) c = c.subarray(0, opts.abortAfterBytes - n);
        hasher.update(c);
        n += c.length;
        if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
        if (opts.abortAfterBytes !== undefined && n >= opts.abortAfterBytes) {
          src.destroy?.();
          throw new AtomaError(`${from}: download stopped after ${n} bytes (abortAfterBytes)`, 'ERR_FETCH');
        }
      }
    } catch (e) {
      if (e instanceof AtomaError) throw e;
      throw new AtomaError(`${from}: ${(e as Error).message}`, e instanceof Error && 'code' in e && e.code === 'ENOENT' ? 'ERR_IO' : 'ERR_FETCH');
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
  }
}

function get(url: string, offset: number, timeoutMs: number): Promise<http.IncomingMessage> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, timeout: timeoutMs }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new AtomaError(`${url}: ${e.message}`, 'ERR_FETCH')));
  });
}
