/**
 * The node's encryption keys in one file (JSON, mode 0600, replaced atomically). Keys rotate:
 * `rotate()` makes a new current key and lets the old ones live for a grace period, so requests
 * sealed just before a rotation still open; after that they are refused with ERR_KEY_EXPIRED.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { fail } from '../engine/errors.js';
import { generateX25519, keyIdOf, privateKeyFromDer, rawPublicKey } from './keys.js';

export interface KeyringOptions {
  /** How long a key is current before `rotateIfDue` replaces it (default 24 h). */
  lifetimeMs?: number;
  /** How long a replaced key still opens requests (default 10 min). */
  graceMs?: number;
}

/** A node key as published for clients (no private part). */
export interface PublishedKey {
  keyId: string;
  /** Raw X25519 public key, base64. */
  publicKey: string;
  /** Milliseconds since the epoch. */
  notBefore: number;
  /** After this, requests sealed to the key are refused. */
  notAfter: number;
}

interface StoredKey extends PublishedKey {
  /** PKCS#8 DER, base64. */
  privateKey: string;
}

interface KeyringFile {
  version: 1;
  keys: StoredKey[];
}

/**
 * A file-backed keyring.
 *
 * @example
 * const ring = NodeKeyring.open('/var/lib/atoma/keys.json');
 * await directory.publish({ nodeId, ...ring.current() });
 * ring.rotateIfDue();
 */
export class NodeKeyring {
  private constructor(private readonly path: string, private data: KeyringFile, private readonly lifetimeMs: number, private readonly graceMs: number) {}

  /** Opens the keyring at `path`, creating it with a first key when the file does not exist. */
  static open(path: string, opts: KeyringOptions & { now?: number } = {}): NodeKeyring {
    const lifetimeMs = opts.lifetimeMs ?? 24 * 3600_000;
    const graceMs = opts.graceMs ?? 10 * 60_000;
    if (!(lifetimeMs > 0) || !(graceMs >= 0)) fail('ERR_RANGE', 'keyring: lifetimeMs must be positive and graceMs not negative');
    let data: KeyringFile;
    if (existsSync(path)) {
      try {
        data = JSON.parse(readFileSync(path, 'utf8')) as KeyringFile;
      } catch (e) {
        fail('ERR_IO', `keyring ${path}: not readable JSON (${(e as Error).message})`);
      }
      if (data.version !== 1 || !Array.isArray(data.keys)) fail('ERR_IO', `keyring ${path}: unknown format`);
      for (const k of data.keys) {
        if (keyIdOf(Buffer.from(k.publicKey, 'base64')) !== k.keyId) fail('ERR_IO', `keyring ${path}: key ${k.keyId} does not match its public key`);
      }
      const ring = new NodeKeyring(path, data, lifetimeMs, graceMs);
      if (data.keys.length === 0) ring.rotate(opts.now);
      return ring;
    }
    const ring = new NodeKeyring(path, { version: 1, keys: [] }, lifetimeMs, graceMs);
    ring.rotate(opts.now);
    return ring;
  }

  /** The key clients should seal to now (the newest). */
  current(): PublishedKey {
    const k = this.data.keys[this.data.keys.length - 1];
    return { keyId: k.keyId, publicKey: k.publicKey, notBefore: k.notBefore, notAfter: k.notAfter };
  }

  /** Every key that still opens requests at `now`. */
  published(now = Date.now()): PublishedKey[] {
    return this.data.keys.filter((k) => k.notAfter > now).map(({ privateKey: _p, ...pub }) => pub);
  }

  /** Makes a new current key; the previous ones expire after the grace period. Returns the new key. */
  rotate(now = Date.now()): PublishedKey {
    const { keyId, publicKey, privateKey } = generateX25519();
    for (const k of this.data.keys) k.notAfter = Math.min(k.notAfter, now + this.graceMs);
    this.data.keys = this.data.keys.filter((k) => k.notAfter > now);
    this.data.keys.push({
      keyId, publicKey: publicKey.toString('base64'), notBefore: now, notAfter: now + this.lifetimeMs + this.graceMs,
      privateKey: (privateKey.export({ type: 'pkcs8', format: 'der' }) as Buffer).toString('base64'),
    });
    this.save();
    return this.current();
  }

  /** Rotates when the current key is older than the lifetime; returns whether it did. */
  rotateIfDue(now = Date.now()): boolean {
    if (now - this.current().notBefore < this.lifetimeMs) return false;
    this.rotate(now);
    return true;
  }

  /** The private key (PKCS#8 DER) for a key id. ERR_KEY_UNKNOWN or ERR_KEY_EXPIRED otherwise. */
  privateKeyDer(keyId: string, now = Date.now()): Buffer {
    const k = this.data.keys.find((x) => x.keyId === keyId);
    if (!k) fail('ERR_KEY_UNKNOWN', `no node key ${keyId} in this keyring (sealed to another node, or long rotated away)`);
    if (now >= k.notAfter) fail('ERR_KEY_EXPIRED', `node key ${keyId} expired at ${new Date(k.notAfter).toISOString()}: seal to the current key`);
    return Buffer.from(k.privateKey, 'base64');
  }

  /** The private key as a KeyObject (for attestation and tests). */
  privateKey(keyId: string, now = Date.now()): KeyObject {
    const key = privateKeyFromDer(this.privateKeyDer(keyId, now));
    if (keyIdOf(rawPublicKey(key)) !== keyId) fail('ERR_INTERNAL', `keyring: key ${keyId} is corrupt`);
    return key;
  }

  private save(): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 2), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
