/**
 * The node's SQLite file (node.db in the cache directory), opened the one way every store in it
 * needs: WAL (the job store and the assignment store share the file, each on its own connection),
 * synchronous=FULL (a row written before a reply or a ledger submission survives kill -9), and a
 * busy timeout so the two connections wait for each other instead of failing.
 */
import type Database from 'better-sqlite3';
import { fail } from '../engine/errors.js';
import { lazyRequire } from '../engine/lazy.js';

const sqlite = lazyRequire<typeof Database>('better-sqlite3');

export function openNodeDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new (sqlite())(path);
  } catch (e) {
    fail('ERR_IO', `cannot open the node database ${path}: ${(e as Error).message}`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}
