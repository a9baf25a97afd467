/**
 * A CommonJS dependency required on first use instead of at import. For packages that only some
 * paths of a module need (ws to follow a stream, better-sqlite3 to open a database), so importing
 * the package root does not load them (bench/import.mjs, test/package.test.ts).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * @example
 * const sqlite = lazyRequire<typeof Database>('better-sqlite3');
 * const db = new (sqlite())(path);
 */
export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
