/** BLAKE3 (all three modes), file hashing and the spec's Merkle tree (section 2). */
import { fail } from './errors.js';
import { native, type NativeHasher } from './native.js';

export interface Blake3Options {
  /** Keyed-hash mode with a 32-byte key. */
  key?: Uint8Array;
  /** Derive-key mode with this context string. */
  context?: string;
  /** Output bytes (extendable output); 32 by default. */
  length?: number;
}

function bytes(data: ArrayBufferView | string, name: string): ArrayBufferView {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (!ArrayBuffer.isView(data)) fail('ERR_TYPE', `${name} must be bytes (a typed array or Buffer) or a string`);
  return data;
}

/**
 * BLAKE3 of bytes or a UTF-8 string.
 *
 * @example
 * blake3('abc').toString('hex')
 * blake3(data, { key }).toString('hex')
 */
export function blake3(data: ArrayBufferView | string, opts: Blake3Options = {}): Buffer {
  if (opts.key !== undefined && opts.context !== undefined) fail('ERR_USAGE', 'blake3: give a key or a context, not both');
  const length = opts.length ?? 32;
  if (opts.key !== undefined) return native.blake3(bytes(data, 'data'), 1, bytes(opts.key, 'key'), length);
  if (opts.context !== undefined) return native.blake3(bytes(data, 'data'), 2, String(opts.context), length);
  return native.blake3(bytes(data, 'data'), 0, null, length);
}

/**
 * An incremental BLAKE3 state, for data that arrives in pieces.
 *
 * @example
 * const h = createHasher();
 * for await (const chunk of process.stdin) h.update(chunk);
 * h.digest().toString('hex');
 */
export function createHasher(opts: Omit<Blake3Options, 'length'> = {}): NativeHasher {
  if (opts.key !== undefined && opts.context !== undefined) fail('ERR_USAGE', 'createHasher: give a key or a context, not both');
  if (opts.key !== undefined) return new native.Hasher(1, bytes(opts.key, 'key'));
  if (opts.context !== undefined) return new native.Hasher(2, String(opts.context));
  return new native.Hasher(0);
}

/** BLAKE3 of a readable stream (stdin, a socket, an HTTP body). */
export async function hashStream(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const h = createHasher();
  for await (const chunk of stream) h.update(chunk);
  return h.digest();
}

/** BLAKE3 of a file of any size (memory-mapped, hashed off the JavaScript thread). */
export async function hashFile(path: string): Promise<Buffer> {
  if (typeof path !== 'string' || path === '') fail('ERR_USAGE', 'hashFile: path must be a non-empty string');
  return native.hashFile(path, true);
}

/** The Merkle leaf hash BLAKE3(0x00 || data). */
export function merkleLeaf(data: ArrayBufferView | string): Buffer {
  return native.merkleLeaf(bytes(data, 'data'));
}

/** RFC 6962 root over the leaves' data (each hashed as a leaf first); empty: BLAKE3(""). */
export function merkleRoot(leaves: readonly (ArrayBufferView | string)[]): Buffer {
  return merkleRootOfLeafHashes(leaves.map((l) => merkleLeaf(l)));
}

/** RFC 6962 root over already computed leaf hashes (32 bytes each). */
export function merkleRootOfLeafHashes(leafHashes: readonly Uint8Array[]): Buffer {
  for (const h of leafHashes) if (!(h instanceof Uint8Array) || h.length !== 32) fail('ERR_SHAPE', 'each leaf hash must be 32 bytes');
  return native.merkleRoot(Buffer.concat(leafHashes));
}
