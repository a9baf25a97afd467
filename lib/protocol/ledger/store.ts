/**
 * The embedded ledger: the protocol rules (machine.ts) over a SQLite database (better-sqlite3).
 * - WAL journal, synchronous=FULL: a commit is on disk before it is acknowledged, so neither a
 *   crash of the process (kill -9) nor of the machine loses an acknowledged event.
 * - Every event is applied in one transaction with the state it produces: the event log row,
 *   the state rows the event wrote (the rules report them, so the cost does not grow with the
 *   number of nodes or accounts), the closed requests and the scalar state. A refused event rolls
 *   back and changes nothing; the in-memory state is taken back with the rules' undo when the
 *   database refuses a write or a commit.
 * - `submitBatch` groups events into one transaction (group commit, one fsync) with a savepoint
 *   per event, so a refused event in a batch leaves the others applied.
 * - The event log alone rebuilds the state (`replay`); the ledger stamps each event's time and
 *   entropy before applying it, so the log holds everything a replay needs.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { AtomaError, fail } from '../../engine/errors.js';
import { applyInPlace, emptyState, nextDeadline } from '../machine.js';
import { DEFAULT_PARAMS, type Params } from '../params.js';
import type { Effect, Event, RequestRecord, State } from '../types.js';
import { STAMPED, validateEvent } from '../validate.js';

const SCALARS = ['params', 'seq', 'time', 'beacon', 'treasury', 'minted'] as const;

export interface LedgerOptions {
  /** Genesis parameters for a new database (ignored when it exists). */
  params?: Partial<Params>;
  /** Clock in ms (default Date.now); the ledger never lets time go backwards. */
  clock?: () => number;
  /** 32 random bytes as hex (default node:crypto). */
  entropy?: () => string;
}

export type SubmitResult = { ok: true; seq: number; event: Event; effects: Effect[] } | { ok: false; error: { code: string; message: string } };

/**
 * @example
 * const ledger = Ledger.open('atoma.db');
 * const { seq, effects } = ledger.submit({ type: 'deposit', account, amount: 5_000_000 });
 * ledger.close();
 */
export class Ledger {
  /** The live state, updated in place by the rules (machine.ts applyInPlace). */
  private readonly st: State;
  private readonly clock: () => number;
  private readonly entropy: () => string;
  private readonly stmts: Record<string, Database.Statement>;

  private constructor(readonly db: Database.Database, opts: LedgerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.entropy = opts.entropy ?? (() => randomBytes(32).toString('hex'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL, effects TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rows (tbl TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS closed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, outcome TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;`);
    this.stmts = {
      event: db.prepare('INSERT INTO events (seq, at, body, effects) VALUES (?, ?, ?, ?)'),
      put: db.prepare('INSERT OR REPLACE INTO rows (tbl, id, body) VALUES (?, ?, ?)'),
      del: db.prepare('DELETE FROM rows WHERE tbl = ? AND id = ?'),
      meta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      closed: db.prepare('INSERT INTO closed (id, seq, outcome, body) VALUES (?, ?, ?, ?)'),
      isClosed: db.prepare('SELECT 1 FROM closed WHERE id = ?'),
      closedGet: db.prepare('SELECT seq, outcome, body FROM closed WHERE id = ?'),
      events: db.prepare('SELECT seq, body, effects FROM events WHERE seq >= ? ORDER BY seq LIMIT ?'),
    };
    this.st = this.load();
  }

  /** Opens (or creates, with a genesis event and a fresh beacon) the ledger in a SQLite file. */
  static open(path: string, opts: LedgerOptions = {}): Ledger {
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (e) {
      fail('ERR_IO', `cannot open ledger database ${path}: ${(e as Error).message}`);
    }
    const ledger = new Ledger(db, opts);
    if (ledger.st.seq === 0) {
      const r = ledger.submitStamped({ type: 'genesis', at: ledger.now(), params: { ...DEFAULT_PARAMS, ...opts.params }, beacon: ledger.entropy() });
      if (!r.ok) fail('ERR_LEDGER', `genesis refused: ${r.error.message}`);
    }
    return ledger;
  }

  /** The current state (treat as read-only). */
  get state(): State {
    return this.st;
  }

  private now(): number {
    return Math.max(this.clock(), this.st.time);
  }

  private load(): State {
    const s = emptyState() as unknown as Record<string, unknown>;
    for (const { key, value } of this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]) s[key] = JSON.parse(value);
    for (const { tbl, id, body } of this.db.prepare('SELECT tbl, id, body FROM rows').iterate() as Iterable<{ tbl: string; id: string; body: string }>) {
      (s[tbl] as Record<string, unknown>)[id] = JSON.parse(body);
    }
    return s as unknown as State;
  }

  /** Stamps the ledger's fields (time, entropy) on a client's event. Clients may not set them. */
  private stamp(input: unknown): Event {
    validateEvent(input, { stamped: false });
    const e = { ...(input as Record<string, unknown>), at: this.now() } as Record<string, unknown>;
    for (const field of STAMPED[e.type as Event['type']] ?? []) e[field] = this.entropy();
    if (e.type === 'genesis') fail('ERR_EVENT', 'genesis is written by the ledger when it is created');
    return e as unknown as Event;
  }

  /**
   * Applies one stamped event and writes its consequences (inside a transaction the caller holds).
   * On success its undo goes on `undos`, for the caller to run if the transaction does not commit.
   */
  private applyAndWrite(e: Event, undos: (() => void)[]): { seq: number; effects: Effect[] } {
    if (e.type === 'request' && this.stmts.isClosed.get(e.request)) fail('ERR_DUPLICATE', `request ${e.request} was already used`);
    const st = this.st;
    const seq = st.seq;
    const prev = SCALARS.map((k) => st[k]);
    const { effects, changes, undo } = applyInPlace(st, e);
    try {
      this.stmts.event.run(seq, e.at, JSON.stringify(e), JSON.stringify(effects));
      for (const { table, id } of changes) {
        const v = (st[table] as Record<string, unknown>)[id];
        if (v === undefined) this.stmts.del.run(table, id);
        else this.stmts.put.run(table, id, JSON.stringify(v));
      }
      SCALARS.forEach((k, i) => {
        if (prev[i] !== st[k] || seq === 0) this.stmts.meta.run(k, JSON.stringify(st[k]));
      });
      for (const x of effects) if (x.type === 'closed') this.stmts.closed.run(x.request.id, seq, x.outcome, JSON.stringify(x.request));
    } catch (err) {
      undo();
      throw err;
    }
    undos.push(undo);
    return { seq, effects };
  }

  private submitStamped(e: Event): SubmitResult {
    const undos: (() => void)[] = [];
    try {
      const { seq, effects } = this.db.transaction(() => this.applyAndWrite(e, undos))();
      return { ok: true, seq, event: e, effects };
    } catch (err) {
      for (const undo of undos.reverse()) undo();
      return { ok: false, error: errorOf(err) };
    }
  }

  /**
   * Applies one client event in its own transaction. Throws an AtomaError (nothing changed) when
   * the event is malformed or the rules refuse it.
   */
  submit(input: unknown): { seq: number; event: Event; effects: Effect[] } {
    const r = this.submitBatch([input])[0];
    if (!r.ok) throw new AtomaError(r.error.message, r.error.code);
    return r;
  }

  /** Applies events in one transaction (one fsync), each in its own savepoint: results in order. */
  submitBatch(inputs: readonly unknown[]): SubmitResult[] {
    const results: SubmitResult[] = [];
    const undos: (() => void)[] = [];
    const savepoint = this.db.transaction((e: Event) => this.applyAndWrite(e, undos));
    try {
      this.db.transaction(() => {
        for (const input of inputs) {
          try {
            const e = this.stamp(input);
            const { seq, effects } = savepoint(e); // nested transaction = SAVEPOINT
            results.push({ ok: true, seq, event: e, effects });
          } catch (err) {
            // A refused event (or a refused write) has already been taken back by the rules' undo.
            results.push({ ok: false, error: errorOf(err) });
          }
        }
      })();
    } catch (err) {
      // The commit itself failed (disk full, I/O error): nothing of the batch is applied.
      for (const undo of undos.reverse()) undo();
      const error = errorOf(err);
      return inputs.map(() => ({ ok: false as const, error }));
    }
    return results;
  }

  /** Applies a tick (deadlines) if one is due. */
  tickIfDue(): SubmitResult | null {
    return nextDeadline(this.st) < this.now() ? this.submitBatch([{ type: 'tick' }])[0] : null;
  }

  /** Logged events from seq on, with their effects. */
  events(from = 0, limit = 1000): { seq: number; event: Event; effects: Effect[] }[] {
    return (this.stmts.events.all(from, limit) as { seq: number; body: string; effects: string }[]).map((r) => ({ seq: r.seq, event: JSON.parse(r.body), effects: JSON.parse(r.effects) }));
  }

  /** A closed request's final record. */
  closedRequest(id: string): { seq: number; outcome: string; request: RequestRecord } | undefined {
    const r = this.stmts.closedGet.get(id) as { seq: number; outcome: string; body: string } | undefined;
    return r && { seq: r.seq, outcome: r.outcome, request: JSON.parse(r.body) };
  }

  /** Rebuilds the state from the event log alone. */
  replay(): State {
    const s = emptyState();
    for (const r of this.db.prepare('SELECT body FROM events ORDER BY seq').iterate() as Iterable<{ body: string }>) applyInPlace(s, JSON.parse(r.body));
    return s;
  }

  /** True when the stored state equals the replay of the log (canonical JSON compare). */
  verify(): boolean {
    return canonical(this.replay()) === canonical(this.load());
  }

  close(): void {
    this.db.close();
  }
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof AtomaError) return { code: err.code, message: err.message };
  return { code: 'ERR_LEDGER', message: (err as Error)?.message ?? String(err) };
}

/** JSON with object keys sorted, for comparing states. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
}
