/**
 * What a node owes the ledger, in its own database (node.db: SQLite, WAL, synchronous=FULL), so
 * that a crash at any point (kill -9) loses nothing a restart needs:
 * - the event cursor: the next ledger sequence number to read. It moves in the same transaction
 *   as the rows an event changes, so an event is either fully recorded or read again.
 * - every assignment (request, task, input digest, state, salt, result digests, trace leaves).
 *   The salt and the result are written BEFORE the commit is submitted: a node that committed
 *   and then died can still open its commitment with the same salt.
 * - the referee's pending re-executions.
 *
 * States: assigned -> executed (result + salt stored) -> committed -> revealed -> closed; or
 * dropped (replaced, or the ledger refused it: a deadline passed) or failed (a fault of this
 * node's run: a timeout, a dead worker, limits; an input refused for a deterministic reason is not
 * failed but executed, with the canonical refusal result of refusal.ts). Leaves are kept until the request closes: bisection rounds are answered from them.
 */
import type Database from 'better-sqlite3';
import { fail } from '../engine/errors.js';
import { openNodeDatabase } from './node-db.js';

export type AssignmentState = 'assigned' | 'executed' | 'committed' | 'revealed' | 'closed' | 'dropped' | 'failed';

export interface AssignmentRow {
  request: string;
  /** Ledger task id. */
  task: string;
  /** BLAKE3 of the input bytes (null until known: a replacement learns it from the request record). */
  input: string | null;
  state: AssignmentState;
  /** The deadline of the current phase (commit, then reveal), ledger ms. */
  deadline: number;
  revealOpen: boolean;
  salt: string | null;
  outputDigest: string | null;
  traceRoot: string | null;
  traceLeaves: number | null;
  /** The leaf hashes, 32 bytes each, in order. */
  leaves: Buffer | null;
  inDispute: boolean;
  /** A bisection round not yet answered: [lo, hi). */
  bisect: { lo: number; hi: number } | null;
  outcome: string | null;
  error: string | null;
}

export interface RefereeJob {
  request: string;
  mode: 'leaf' | 'full';
  leafIndex: number;
  deadline: number;
}

export class AssignmentStore {
  private readonly db: Database.Database;
  private readonly stmts: Record<string, Database.Statement>;

  /** Opens the tables in node.db (its own connection; WAL lets the job store share the file). */
  constructor(path: string) {
    this.db = openNodeDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS assignments (
        request TEXT PRIMARY KEY, task TEXT NOT NULL, input TEXT, state TEXT NOT NULL, deadline INTEGER NOT NULL,
        reveal_open INTEGER NOT NULL DEFAULT 0, salt TEXT, output_digest TEXT, trace_root TEXT, trace_leaves INTEGER, leaves BLOB,
        in_dispute INTEGER NOT NULL DEFAULT 0, bisect_lo INTEGER, bisect_hi INTEGER, outcome TEXT, error TEXT,
        created INTEGER NOT NULL, updated INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS referee_jobs (request TEXT PRIMARY KEY, mode TEXT NOT NULL, leaf_index INTEGER NOT NULL, deadline INTEGER NOT NULL) WITHOUT ROWID;`);
    const now = 'updated = unixepoch() * 1000';
    this.stmts = {
      getMeta: this.db.prepare('SELECT value FROM ledger_meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT OR REPLACE INTO ledger_meta (key, value) VALUES (?, ?)'),
      assign: this.db.prepare("INSERT OR IGNORE INTO assignments (request, task, input, state, deadline, created, updated) VALUES (?, ?, ?, 'assigned', ?, ?, ?)"),
      input: this.db.prepare(`UPDATE assignments SET input = ?, ${now} WHERE request = ?`),
      executed: this.db.prepare(`UPDATE assignments SET state = 'executed', salt = ?, output_digest = ?, trace_root = ?, trace_leaves = ?, leaves = ?, ${now} WHERE request = ? AND state = 'assigned'`),
      state: this.db.prepare(`UPDATE assignments SET state = ?, error = COALESCE(?, error), ${now} WHERE request = ?`),
      reveal: this.db.prepare(`UPDATE assignments SET reveal_open = 1, deadline = ?, ${now} WHERE request = ?`),
      dispute: this.db.prepare(`UPDATE assignments SET in_dispute = 1, ${now} WHERE request = ?`),
      bisect: this.db.prepare(`UPDATE assignments SET bisect_lo = ?, bisect_hi = ?, deadline = ?, ${now} WHERE request = ? AND in_dispute = 1`),
      answered: this.db.prepare(`UPDATE assignments SET bisect_lo = NULL, bisect_hi = NULL, ${now} WHERE request = ? AND bisect_lo = ? AND bisect_hi = ?`),
      close: this.db.prepare(`UPDATE assignments SET state = CASE WHEN state IN ('dropped', 'failed') THEN state ELSE 'closed' END, outcome = ?, leaves = NULL, bisect_lo = NULL, bisect_hi = NULL, ${now} WHERE request = ?`),
      get: this.db.prepare('SELECT * FROM assignments WHERE request = ?'),
      open: this.db.prepare("SELECT * FROM assignments WHERE state IN ('assigned', 'executed', 'committed', 'revealed') ORDER BY created, request"),
      count: this.db.prepare('SELECT state, COUNT(*) AS n FROM assignments GROUP BY state'),
      addJob: this.db.prepare('INSERT OR REPLACE INTO referee_jobs (request, mode, leaf_index, deadline) VALUES (?, ?, ?, ?)'),
      delJob: this.db.prepare('DELETE FROM referee_jobs WHERE request = ?'),
      jobs: this.db.prepare('SELECT request, mode, leaf_index, deadline FROM referee_jobs ORDER BY deadline, request'),
    };
  }

  /** The next ledger sequence number to read, or null before the first run. */
  get cursor(): number | null {
    const r = this.stmts.getMeta.get('cursor') as { value: string } | undefined;
    return r ? Number(r.value) : null;
  }

  /**
   * Binds node.db to one ledger (its genesis id) on the first start; a later start on another
   * ledger is refused: the cursor and assignments mean nothing there.
   */
  bindLedger(genesis: string): void {
    const r = this.stmts.getMeta.get('genesis') as { value: string } | undefined;
    if (!r) this.stmts.setMeta.run('genesis', genesis);
    else if (r.value !== genesis) fail('ERR_LEDGER', `node.db follows the ledger with genesis ${r.value}, not this one (${genesis}): use another cache_dir`);
  }

  /** Sets the cursor without an event (the first run starts at the ledger's head). */
  startAt(seq: number): void {
    this.stmts.setMeta.run('cursor', String(seq));
  }

  /**
   * Records an event's consequences and moves the cursor past it in one transaction. `fn` only
   * writes rows of this store.
   */
  record(seq: number, fn: () => void): void {
    this.db.transaction(() => {
      fn();
      this.stmts.setMeta.run('cursor', String(seq + 1));
    })();
  }

  /** A new assignment (ignored when the request is already recorded). */
  assign(request: string, task: string, input: string | null, deadline: number): void {
    const t = Date.now();
    this.stmts.assign.run(request, task, input, deadline, t, t);
  }

  setInput(request: string, input: string): void {
    this.stmts.input.run(input, request);
  }

  /** The result and salt, stored before the commit goes out. False when the row is not 'assigned'. */
  executed(request: string, salt: string, r: { outputDigest: string; traceRoot: string; leaves: Uint8Array }): boolean {
    return this.stmts.executed.run(salt, r.outputDigest, r.traceRoot, r.leaves.length / 32, Buffer.from(r.leaves.buffer, r.leaves.byteOffset, r.leaves.byteLength), request).changes === 1;
  }

  setState(request: string, state: AssignmentState, error?: string): void {
    this.stmts.state.run(state, error ?? null, request);
  }

  revealOpen(request: string, deadline: number): void {
    this.stmts.reveal.run(deadline, request);
  }

  disputeOpened(request: string): void {
    this.stmts.dispute.run(request);
  }

  bisectRound(request: string, lo: number, hi: number, deadline: number): void {
    this.stmts.bisect.run(lo, hi, deadline, request);
  }

  bisectAnswered(request: string, lo: number, hi: number): void {
    this.stmts.answered.run(request, lo, hi);
  }

  closed(request: string, outcome: string): void {
    this.stmts.close.run(outcome, request);
  }

  get(request: string): AssignmentRow | null {
    const r = this.stmts.get.get(request) as Record<string, unknown> | undefined;
    return r ? toRow(r) : null;
  }

  /** Assignments whose request has not closed for this node, oldest first. */
  open(): AssignmentRow[] {
    return (this.stmts.open.all() as Record<string, unknown>[]).map(toRow);
  }

  /** Number of assignments per state (for logs and tests). */
  counts(): Record<string, number> {
    return Object.fromEntries((this.stmts.count.all() as { state: string; n: number }[]).map((r) => [r.state, r.n]));
  }

  addRefereeJob(j: RefereeJob): void {
    this.stmts.addJob.run(j.request, j.mode, j.leafIndex, j.deadline);
  }

  removeRefereeJob(request: string): void {
    this.stmts.delJob.run(request);
  }

  refereeJobs(): RefereeJob[] {
    return (this.stmts.jobs.all() as { request: string; mode: 'leaf' | 'full'; leaf_index: number; deadline: number }[])
      .map((r) => ({ request: r.request, mode: r.mode, leafIndex: r.leaf_index, deadline: r.deadline }));
  }

  close(): void {
    this.db.close();
  }
}

function toRow(r: Record<string, unknown>): AssignmentRow {
  return {
    request: r.request as string, task: r.task as string, input: (r.input as string | null) ?? null, state: r.state as AssignmentState,
    deadline: r.deadline as number, revealOpen: r.reveal_open === 1, salt: (r.salt as string | null) ?? null,
    outputDigest: (r.output_digest as string | null) ?? null, traceRoot: (r.trace_root as string | null) ?? null,
    traceLeaves: (r.trace_leaves as number | null) ?? null, leaves: (r.leaves as Buffer | null) ?? null, inDispute: r.in_dispute === 1,
    bisect: r.bisect_lo === null || r.bisect_lo === undefined ? null : { lo: r.bisect_lo as number, hi: r.bisect_hi as number },
    outcome: (r.outcome as string | null) ?? null, error: (r.error as string | null) ?? null,
  };
}
