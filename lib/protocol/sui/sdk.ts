/**
 * The Sui SDK (@mysten/sui), loaded on first use.
 *
 * Why not a static import: the package root re-exports this folder, and the SDK's keypairs pull
 * in noble curves, BIP-32/39, zkLogin and GraphQL, about 0.5 s and 25 MiB at import. Every user
 * of the engine or the node would pay that, though the node itself never calls Sui. Why not
 * `import()`: the key loader and the transaction builders are synchronous, and stay so.
 * So the SDK's CommonJS build is required on first use. Its objects (Transaction, keypairs)
 * interoperate with those of its ESM build, which a caller may import itself: the SDK brands them
 * with `Symbol.for` keys rather than class identity, and everything here only calls their methods.
 */
import { createRequire } from 'node:module';

type Modules = {
  client: typeof import('@mysten/sui/client');
  cryptography: typeof import('@mysten/sui/cryptography');
  ed25519: typeof import('@mysten/sui/keypairs/ed25519');
  secp256k1: typeof import('@mysten/sui/keypairs/secp256k1');
  secp256r1: typeof import('@mysten/sui/keypairs/secp256r1');
  transactions: typeof import('@mysten/sui/transactions');
  utils: typeof import('@mysten/sui/utils');
};

const PATHS: { [K in keyof Modules]: string } = {
  client: '@mysten/sui/client',
  cryptography: '@mysten/sui/cryptography',
  ed25519: '@mysten/sui/keypairs/ed25519',
  secp256k1: '@mysten/sui/keypairs/secp256k1',
  secp256r1: '@mysten/sui/keypairs/secp256r1',
  transactions: '@mysten/sui/transactions',
  utils: '@mysten/sui/utils',
};

const require = createRequire(import.meta.url);
const loaded: Partial<Modules> = {};

/**
 * @example
 * const tx = new (sui('transactions').Transaction)();
 */
export function sui<K extends keyof Modules>(name: K): Modules[K] {
  return (loaded[name] ??= require(PATHS[name]) as Modules[K]);
}
