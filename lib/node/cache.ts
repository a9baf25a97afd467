/**
 * A content-addressed cache of models and WASM modules: blobs/<blake3 hex>. A blob is written to
 * partial/<digest>.part, hashed while it streams in, and renamed into blobs/ only when its BLAKE3
 * equals the digest asked for; a blob is hashed again the first time a process uses it (a file
 * changed on disk is refused, not run). Downloads resume: the partial file is hashed again to
 * rebuild the hasher state (BLAKE3 state cannot be saved portably), then an HTTP Range request
 * continues from its length; a server that ignores Range (200) makes the download start over.
 *
 * Redirects are followed (up to maxRedirects, default 10: Hugging Face `resolve/` URLs answer
 * 302 to a CDN), http to https but never https to http: a downgrade would let anyone on the path
 * serve the bytes (the digest still decides, but a downgrade is refused before spending the
 * download). A local `path` source is hard-linked into the cache where the file system allows
 * (same device, permission to link), so a model is on disk once; else it is copied. A hard link
 * shares the bytes: a tool that rewrites the source in place changes the blob too, which the
 * next process refuses when it hashes the blob again (docs/node.md, "The cache").
 */
import { createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, realpathSync, renameSync, rmSync, statSync, openSync, fsyncSync, closeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { AtomaError, fail } from '../engine/errors.js';
import { createHasher, hashFile } from '../engine/hash.js';

export type CacheSource = { url: string } | { path: string };

/** How far a download has come: `bytes` of `total` (null when the server does not say). */
export interface FetchProgress {
  from: string;
  bytes: number;
  total: number | null;
  done: boolean;
}

export interface CacheFetchOptions {
  /** Stop after this many bytes of the body (tests use it to leave a partial file). */
  abortAfterBytes?: number;
  timeoutMs?: number;
  /** Redirects followed before ERR_FETCH (default 10). */
  maxRedirects?: number;
  /**
   * Called when a download or copy starts, each time another 5% of it has arrived (64 MiB when
   * the size is unknown) and when it ends: at most ~22 calls, however large the file.
   */
  onProgress?: (p: FetchProgress) => void;
}

/** Of a path source, what reached the cache (for the node's log and tests). */
export type CacheFill = 'cached' | 'linked' | 'copied' | 'downloaded';

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * @example
 * const cache = new ContentCache('/var/cache/atoma');
 * const file = await cache.fetch('3f2a...', { url: 'http://127.0.0.1:9000/model.gguf' });
 */
export class ContentCache {
  private readonly verified = new Set<string>();
  /** How each digest this object fetched got into the cache. */
  readonly fills = new Map<string, CacheFill>();
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
    if (have) {
      this.fills.set(digest, 'cached');
      return have;
    }
    const part = this.partialPath(digest);
    const hasher = createHasher();
    if ('path' in source) {
      rmSync(part, { force: true });
      if (linkInto(source.path, part)) {
        this.fills.set(digest, 'linked');
        return this.commit(digest, part, (await hashFile(part)).toString('hex'), source.path);
      }
      this.fills.set(digest, 'copied');
      let total: number | null = null;
      try {
        total = statSync(source.path).size;
      } catch { /* the read below names the problem */ }
      await this.pipe(createReadStream(source.path), part, hasher, 0, opts, source.path, total);
    } else {
      this.fills.set(digest, 'downloaded');
      let offset = existsSync(part) ? statSync(part).size : 0;
      // Rebuild the hash state of the bytes already on disk.
      if (offset > 0) for await (const c of createReadStream(part)) hasher.update(c as Buffer);
      const res = await follow(source.url, offset, opts.timeoutMs ?? 60_000, opts.maxRedirects ?? 10);
      const length = Number(res.headers['content-length']);
      const total = Number.isSafeInteger(length) && length >= 0 ? length + (res.statusCode === 206 ? offset : 0) : null;
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
          await this.pipe(res, part, fresh, 0, opts, source.url, total);
          return this.commit(digest, part, fresh.digest().toString('hex'), source.url);
        }
      } else {
        res.resume();
        fail('ERR_FETCH', `${source.url}: HTTP ${res.statusCode}`);
      }
      await this.pipe(res, part, hasher, offset, opts, source.url, total);
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
    offset: number, opts: CacheFetchOptions, from: string, total: number | null): Promise<void> {
    const out = createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
    let n = 0;
    const progress = opts.onProgress;
    const step = total !== null ? Math.max(1, Math.ceil(total / 20)) : 64 << 20;
    let next = offset + step;
    progress?.({ from, bytes: offset, total, done: false });
    try {
      for await (const chunk of src) {
        let c = chunk as Buffer;
        if (opts.abortAfterBytes !== undefined && n + c.length > opts.abortAfterBytes) c = c.subarray(0, opts.abortAfterBytes - n);
        hasher.update(c);
        n += c.length;
        if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
        if (progress && offset + n >= next) {
          progress({ from, bytes: offset + n, total, done: false });
          next = (Math.floor((offset + n) / step) + 1) * step;
        }
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
    progress?.({ from, bytes: offset + n, total, done: true });
  }
}

/**
 * Hard-links `source` (its real path: a link to a symlink would resolve relative to the cache)
 * to `part`. False where the file system or its permissions refuse (another device, no
 * hard links, protected_hardlinks): the caller copies instead.
 */
function linkInto(source: string, part: string): boolean {
  let real: string;
  try {
    real = realpathSync(source);
    if (!statSync(real).isFile()) return false;
  } catch {
    return false;   // the copy's read names the problem (ERR_IO)
  }
  try {
    linkSync(real, part);
    return true;
  } catch {
    return false;
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Where a redirect from `at` (the request that began at `origin`) to `location` leads, or
 * ERR_FETCH: only http and https, and never from an https origin down to http.
 */
export function redirectTarget(origin: string, at: string, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, at);
  } catch {
    fail('ERR_FETCH', `${origin}: ${at} redirects to a bad Location '${location}'`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') fail('ERR_FETCH', `${origin}: ${at} redirects to ${next.href}, not http or https`);
  if (origin.startsWith('https:') && next.protocol === 'http:') fail('ERR_FETCH', `${origin}: refused a redirect from https down to ${next.href}`);
  return next;
}

/** GET `url`, following redirects (redirectTarget) up to `maxRedirects`. */
async function follow(url: string, offset: number, timeoutMs: number, maxRedirects: number): Promise<http.IncomingMessage> {
  if (!/^https?:\/\//.test(url)) fail('ERR_FETCH', `${url}: not an http or https URL`);
  let at = url;
  for (let hops = 0; ; hops++) {
    const res = await get(at, offset, timeoutMs);
    if (!REDIRECTS.has(res.statusCode ?? 0)) return res;
    res.resume();
    const location = res.headers.location;
    if (!location) fail('ERR_FETCH', `${url}: HTTP ${res.statusCode} from ${at} without a Location header`);
    if (hops >= maxRedirects) fail('ERR_FETCH', `${url}: more than ${maxRedirects} redirects (the last to ${location})`);
    at = redirectTarget(url, at, location).href;
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
