/**
 * Loading the node's Sui signing key.
 *
 * Two sources, both the formats the Sui CLI itself uses, so an operator can point us at the
 * key they already have:
 * - a Bech32 `suiprivkey1...` string (flag byte || 32-byte secret, HRP `suiprivkey`);
 * - a `sui.keystore` file: a JSON array whose entries are base64 of (flag byte || 32-byte
 *   secret). Flag 0 = Ed25519, 1 = Secp256k1, 2 = Secp256r1. Entries may also be Bech32 strings.
 */
import { readFileSync } from 'node:fs';
import type { Keypair, SignatureScheme } from '@mysten/sui/cryptography';
import { fail } from '../../engine/errors.js';
import { sui } from './sdk.js';

/** Where the key comes from: a `suiprivkey1...` string, or a keystore file plus a selector. */
export type SuiKeySource =
  | { privateKey: string }
  | {
      keystorePath: string;
      /** Pick the entry whose derived address equals this one. */
      address?: string;
      /** Or pick by position; if neither is given the keystore must hold exactly one key. */
      index?: number;
    };

const SECRET_KEY_BYTES = 32;

function keypairFor(scheme: SignatureScheme, secret: Uint8Array, where: string): Keypair {
  if (secret.length !== SECRET_KEY_BYTES) {
    fail('ERR_SUI_KEY', `${where}: secret key must be ${SECRET_KEY_BYTES} bytes, got ${secret.length}`);
  }
  switch (scheme) {
    case 'ED25519':
      return sui('ed25519').Ed25519Keypair.fromSecretKey(secret);
    case 'Secp256k1':
      return sui('secp256k1').Secp256k1Keypair.fromSecretKey(secret);
    case 'Secp256r1':
      return sui('secp256r1').Secp256r1Keypair.fromSecretKey(secret);
    default:
      return fail('ERR_SUI_KEY', `${where}: signature scheme ${scheme} cannot be loaded from a private key`);
  }
}

/** Decodes one Bech32 `suiprivkey1...` string into a keypair. */
export function keypairFromSuiPrivateKey(text: string, where = 'private key'): Keypair {
  const trimmed = text.trim();
  if (!trimmed.startsWith('suiprivkey1')) {
    fail('ERR_SUI_KEY', `${where}: expected a Bech32 string starting with "suiprivkey1"`);
  }
  let parsed: ReturnType<typeof import('@mysten/sui/cryptography').decodeSuiPrivateKey>;
  try {
    parsed = sui('cryptography').decodeSuiPrivateKey(trimmed);
  } catch (e) {
    // The SDK's message quotes the whole string; a log line must never carry the key, so keep
    // only the kind of failure.
    const why = /checksum/i.test((e as Error).message) ? 'bad checksum' : 'malformed';
    return fail('ERR_SUI_KEY', `${where}: not a valid suiprivkey Bech32 string (${why})`);
  }
  return keypairFor(parsed.scheme, parsed.secretKey, where);
}

/** Decodes one keystore entry: base64 of flag || secret, or a Bech32 string. */
export function keypairFromKeystoreEntry(entry: unknown, where: string): Keypair {
  if (typeof entry !== 'string') fail('ERR_SUI_KEY', `${where}: keystore entries must be strings`);
  if (entry.startsWith('suiprivkey1')) return keypairFromSuiPrivateKey(entry, where);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(entry) || entry.length % 4 !== 0) {
    fail('ERR_SUI_KEY', `${where}: not base64`);
  }
  const raw = Buffer.from(entry, 'base64');
  if (raw.length !== SECRET_KEY_BYTES + 1) {
    fail('ERR_SUI_KEY', `${where}: expected ${SECRET_KEY_BYTES + 1} bytes (flag + secret), got ${raw.length}`);
  }
  const flag = raw[0];
  const scheme = (sui('cryptography').SIGNATURE_FLAG_TO_SCHEME as Record<number, SignatureScheme | undefined>)[flag];
  if (scheme === undefined) fail('ERR_SUI_KEY', `${where}: unknown signature scheme flag ${flag}`);
  return keypairFor(scheme, new Uint8Array(raw.subarray(1)), where);
}

/**
 * Loads the node's signing key from a `suiprivkey1...` string or a Sui keystore file.
 *
 * @example
 * const kp = loadSuiKey({ keystorePath: `${process.env.HOME}/.sui/sui_config/sui.keystore`, address: '0x…' });
 * console.log(kp.toSuiAddress());
 */
export function loadSuiKey(source: SuiKeySource | string): Keypair {
  if (typeof source === 'string') return keypairFromSuiPrivateKey(source);
  if ('privateKey' in source) return keypairFromSuiPrivateKey(source.privateKey);
  const path = source.keystorePath;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return fail('ERR_SUI_KEY', `cannot read keystore ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    return fail('ERR_SUI_KEY', `keystore ${path} is not JSON`);
  }
  if (!Array.isArray(entries) || entries.length === 0) {
    fail('ERR_SUI_KEY', `keystore ${path} must be a non-empty JSON array of keys`);
  }
  if (source.address !== undefined) {
    const { isValidSuiAddress, normalizeSuiAddress } = sui('utils');
    if (!isValidSuiAddress(normalizeSuiAddress(source.address)) || !/^0x[0-9a-fA-F]{1,64}$/.test(source.address)) {
      fail('ERR_SUI_KEY', `"${source.address}" is not a Sui address`);
    }
    const want = normalizeSuiAddress(source.address);
    for (let i = 0; i < entries.length; i++) {
      const kp = keypairFromKeystoreEntry(entries[i], `keystore ${path} entry ${i}`);
      if (kp.toSuiAddress() === want) return kp;
    }
    return fail('ERR_SUI_KEY', `keystore ${path} holds no key for address ${want}`);
  }
  if (source.index !== undefined) {
    if (!Number.isInteger(source.index) || source.index < 0 || source.index >= entries.length) {
      fail('ERR_SUI_KEY', `keystore index ${source.index} out of range 0..${entries.length - 1}`);
    }
    return keypairFromKeystoreEntry(entries[source.index], `keystore ${path} entry ${source.index}`);
  }
  if (entries.length !== 1) {
    fail('ERR_SUI_KEY', `keystore ${path} holds ${entries.length} keys: name one with "address" or "index"`);
  }
  return keypairFromKeystoreEntry(entries[0], `keystore ${path} entry 0`);
}
