/**
 * Durable event cursor: the last processed event's id per stream, in one small SQLite table,
 * so a restarted node resumes exactly after the last event it finished handling.
 *
 * The cursor is written only after a page's events were handled (at-least-once delivery): a
 * crash between handling and saving replays that page, never skips it.
 */
import type Database from 'better-sqlite3';
import { fail } from '../../engine/errors.js';
import { lazyRequire } from '../../engine/lazy.js';
import type { SuiEventId } from './events.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sui_event_cursor (
  stream      TEXT PRIMARY KEY,
  tx_digest   TEXT NOT NULL,
  event_seq   TEXT NOT NULL,
  events_seen INTEGER NOT NULL DEFAULT 0,
  updated_ms  INTEGER NOT NULL
)`;

const sqlite = lazyRequire<typeof Database>('better-sqlite3');

interface Row {
  tx_digest: string;
  event_seq: string;
  events_seen: number;
}

/**
 * @example
 * const store = new SqliteCursorStore('./atoma-sui.sqlite');
 * const cursor = store.load('0x…::db'); // null on first start
 */
export class SqliteCursorStore {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string], Row>;
  private readonly putStmt: Database.Statement<[string, string, string, number, number]>;

  /** Opens (creating if needed) the database at `path`; `':memory:'` works for tests. */
  constructor(path: string) {
    let db: Database.Database;
    try {
      db = new (sqlite())(path);
      // WAL: the writer does not block readers (e.g. an operator inspecting the file).
      if (path !== ':memory:') db.pragma('journal_mode = WAL');
      db.exec(SCHEMA);
    } catch (e) {
      fail('ERR_SUI_CURSOR', `cannot open cursor database ${path}: ${(e as Error).message}`);
    }
    this.db = db;
    this.getStmt = this.db.prepare<[string], Row>('SELECT tx_digest, event_seq, events_seen FROM sui_event_cursor WHERE stream = ?');
    this.putStmt = this.db.prepare(
      `INSERT INTO sui_event_cursor (stream, tx_digest, event_seq, events_seen, updated_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(stream) DO UPDATE SET tx_digest = excluded.tx_digest, event_seq = excluded.event_seq,
         events_seen = sui_event_cursor.events_seen + excluded.events_seen, updated_ms = excluded.updated_ms`,
    );
  }

  /** The saved cursor of `stream`, or null if nothing was processed yet. */
  load(stream: string): SuiEventId | null {
    const row = this.getStmt.get(stream);
    return row === undefined ? null : { txDigest: row.tx_digest, eventSeq: row.event_seq };
  }

  /** Total events recorded as handled for `stream` (for status output). */
  eventsSeen(stream: string): number {
    return this.getStmt.get(stream)?.events_seen ?? 0;
  }

  /** Saves `cursor` for `stream`, adding `handled` to its event count. */
  save(stream: string, cursor: SuiEventId, handled: number): void {
    if (typeof cursor?.txDigest !== 'string' || typeof cursor.eventSeq !== 'string') {
      fail('ERR_SUI_CURSOR', 'cursor must be { txDigest, eventSeq } strings');
    }
    this.putStmt.run(stream, cursor.txDigest, cursor.eventSeq, handled, Date.now());
  }

  close(): void {
    this.db.close();
  }
}
