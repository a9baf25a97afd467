/**
 * The node's own database (SQLite, WAL, synchronous=FULL) in the cache directory: every accepted
 * request is written here before it is queued and marked done with its result after. A node that
 * dies mid-request finds the unfinished rows on start and runs them again; generation is
 * deterministic, so the result is the one the first run would have given.
 */
import type Database from 'better-sqlite3';
import { fail } from '../engine/errors.js';
import { openNodeDatabase } from './node-db.js';
import type { WireRequest, WireResult } from './engine.js';

export interface JobRow {
  id: string;
  task: string;
  kind: 'completion' | 'chat';
  request: WireRequest;
  /** The response fields that do not come from the engine (e.g. created time), fixed at accept. */
  meta: Record<string, unknown>;
  result: WireResult | null;
  /** Set when the engine refused the job (it is not run again). */
  error: { code: string; message: string } | null;
}

export class JobStore {
  private readonly db: Database.Database;
  private readonly stmts: Record<string, Database.Statement>;

  constructor(path: string) {
    this.db = openNodeDatabase(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS jobs (
      id TEXT PRIMARY KEY, task TEXT NOT NULL, kind TEXT NOT NULL, request TEXT NOT NULL, meta TEXT NOT NULL,
      status TEXT NOT NULL, result TEXT, error TEXT, created INTEGER NOT NULL, finished INTEGER)`);
    this.stmts = {
      insert: this.db.prepare("INSERT OR IGNORE INTO jobs (id, task, kind, request, meta, status, created) VALUES (?, ?, ?, ?, ?, 'pending', ?)"),
      finish: this.db.prepare("UPDATE jobs SET status = 'done', result = ?, finished = ? WHERE id = ?"),
      failed: this.db.prepare("UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?"),
      get: this.db.prepare('SELECT id, task, kind, request, meta, result, error FROM jobs WHERE id = ?'),
      pending: this.db.prepare("SELECT id, task, kind, request, meta, result, error FROM jobs WHERE status = 'pending' ORDER BY created, id"),
    };
  }

  /** Records an accepted job; false when a job with this id is already recorded. */
  add(job: Omit<JobRow, 'result' | 'error'>): boolean {
    return this.stmts.insert.run(job.id, job.task, job.kind, JSON.stringify(job.request), JSON.stringify(job.meta), Date.now()).changes === 1;
  }

  finish(id: string, result: WireResult): void {
    this.stmts.finish.run(JSON.stringify(result), Date.now(), id);
  }

  /** A job the engine refused: recorded so that a restart does not run it again. */
  fail(id: string, error: { code: string; message: string }): void {
    this.stmts.failed.run(JSON.stringify(error), Date.now(), id);
  }

  get(id: string): JobRow | null {
    const r = this.stmts.get.get(id) as Record<string, string | null> | undefined;
    return r ? row(r) : null;
  }

  pending(): JobRow[] {
    return (this.stmts.pending.all() as Record<string, string | null>[]).map(row);
  }

  close(): void {
    this.db.close();
  }
}

function row(r: Record<string, string | null>): JobRow {
  return {
    id: r.id!, task: r.task!, kind: r.kind as JobRow['kind'], request: JSON.parse(r.request!) as WireRequest,
    meta: JSON.parse(r.meta!) as Record<string, unknown>, result: r.result ? (JSON.parse(r.result) as WireResult) : null,
    error: r.error ? (JSON.parse(r.error) as JobRow['error']) : null,
  };
}
