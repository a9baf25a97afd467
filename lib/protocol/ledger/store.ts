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
 * - Admission (every event from outside, in process or through the service): the schema, then the
 *   signature of the event's actor (signing.ts; ERR_SIGNATURE), then its (actor, nonce) against
 *   the nonces seen before (table `nonces`, written in the event's transaction, rebuilt from the
 *   log when missing; ERR_REPLAY). `genesis`, `tick` and `beacon` are the ledger's own events;
 *   `deposit` mints money, so it is admitted only when the ledger runs with the faucet on.
 * - Request inputs: the ledger is the local network's data-availability layer. Inputs are stored
 *   under their BLAKE3 digest (<= 1 MiB); a `request` naming an input that is not stored is
 *   refused, so every sampled node can fetch exactly what the client signed for. A client stores
 *   them with `putSignedInput` (inputs.ts): signed by an account with a balance, nonce not seen
 *   before (table `input_grants`), and within the account's quota of stored bytes
 *   (LedgerOptions.inputQuota). `putInput` is the operator's own, in process, like `mint`.
 */
import type Database from 'better-sqlite3';
import { lazyRequire } from '../../engine/lazy.js';
import { randomBytes } from 'node:crypto';
import { AtomaError, fail } from '../../engine/errors.js';
import { blake3 } from '../../engine/hash.js';
import { isHex32 } from '../ids.js';
import { auditAmounts } from '../accounting.js';
import { applyInPlace, emptyState, nextDeadline } from '../machine.js';
import { DEFAULT_PARAMS, type Params } from '../params.js';
import { actorOf, checkSignature } from '../signing.js';
import { checkGrantForm, checkInputGrant, type InputGrant } from './inputs.js';
import type { Effect, Event, Hex32, RequestRecord, State } from '../types.js';
import { STAMPED, validateEvent } from '../validate.js';

/** Loaded when a ledger opens, not when the package root is imported. */
const sqlite = lazyRequire<typeof Database>('better-sqlite3');

const SCALARS = ['params', 'seq', 'time', 'beacon', 'treasury', 'minted', 'referees'] as const;

/** Largest request input the ledger stores (bytes). */
export const MAX_INPUT = 1024 * 1024;

/** Default bytes of inputs an account may have stored (LedgerOptions.inputQuota). */
export const DEFAULT_INPUT_QUOTA = 64 * 1024 * 1024;

/** Events only the ledger writes; a client that sends one is refused. */
const LEDGER_EVENTS = new Set(['genesis', 'tick', 'beacon']);

export interface LedgerOptions {
  /** Genesis parameters for a new database (ignored when it exists). */
  params?: Partial<Params>;
  /** Clock in ms (default Date.now); the ledger never lets time go backwards. */
  clock?: () => number;
  /** 32 random bytes as hex (default node:crypto). */
  entropy?: () => string;
  /** Genesis referee keys (Ed25519, 64 hex) for a new database: only they may post `reexecuted`. */
  referees?: Hex32[];
  /**
   * Whether clients may `deposit` (a faucet: it mints money). Default true: the local ledger is a
   * test network. With false, only the operator mints, in process (`Ledger.mint`).
   */
  faucet?: boolean;
  /**
   * Bytes of request inputs each account may store over the ledger's life (signed uploads; an
   * upload of bytes already stored costs nothing). Default DEFAULT_INPUT_QUOTA.
   */
  inputQuota?: number;
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
  /** Whether clients may deposit (LedgerOptions.faucet). */
  readonly faucet: boolean;
  /** Bytes of inputs each account may store (LedgerOptions.inputQuota). */
  readonly inputQuota: number;

  private constructor(readonly db: Database.Database, opts: LedgerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.entropy = opts.entropy ?? (() => randomBytes(32).toString('hex'));
    this.faucet = opts.faucet ?? true;
    this.inputQuota = opts.inputQuota ?? DEFAULT_INPUT_QUOTA;
    if (!Number.isSafeInteger(this.inputQuota) || this.inputQuota < 0) fail('ERR_ARGUMENT', 'inputQuota must be a non-negative safe integer (bytes)');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const hadNonces = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nonces'").get() !== undefined;
    db.exec(`
      CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL, effects TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rows (tbl TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS closed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, outcome TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS nonces (actor TEXT NOT NULL, nonce TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (actor, nonce)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS inputs (digest TEXT PRIMARY KEY, body BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS input_grants (account TEXT NOT NULL, nonce TEXT NOT NULL, digest TEXT NOT NULL, charged INTEGER NOT NULL, PRIMARY KEY (account, nonce)) WITHOUT ROWID;`);
    this.stmts = {
      event: db.prepare('INSERT INTO events (seq, at, body, effects) VALUES (?, ?, ?, ?)'),
      put: db.prepare('INSERT OR REPLACE INTO rows (tbl, id, body) VALUES (?, ?, ?)'),
      del: db.prepare('DELETE FROM rows WHERE tbl = ? AND id = ?'),
      meta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      closed: db.prepare('INSERT INTO closed (id, seq, outcome, body) VALUES (?, ?, ?, ?)'),
      isClosed: db.prepare('SELECT 1 FROM closed WHERE id = ?'),
      closedGet: db.prepare('SELECT seq, outcome, body FROM closed WHERE id = ?'),
      events: db.prepare('SELECT seq, body, effects FROM events WHERE seq >= ? ORDER BY seq LIMIT ?'),
      nonceSeen: db.prepare('SELECT 1 FROM nonces WHERE actor = ? AND nonce = ?'),
      nonce: db.prepare('INSERT INTO nonces (actor, nonce, seq) VALUES (?, ?, ?)'),
      inputPut: db.prepare('INSERT OR IGNORE INTO inputs (digest, body) VALUES (?, ?)'),
      inputGet: db.prepare('SELECT body FROM inputs WHERE digest = ?'),
      inputHas: db.prepare('SELECT 1 FROM inputs WHERE digest = ?'),
      grantSeen: db.prepare('SELECT 1 FROM input_grants WHERE account = ? AND nonce = ?'),
      grantPut: db.prepare('INSERT INTO input_grants (account, nonce, digest, charged) VALUES (?, ?, ?, ?)'),
      grantUsage: db.prepare('SELECT coalesce(sum(charged), 0) AS n FROM input_grants WHERE account = ?'),
    };
    this.st = this.load();
    // A database from before signed events (or one whose nonce table was lost): the log has them all.
    if (!hadNonces) this.rebuildNonces();
  }

  /** Opens (or creates, with a genesis event and a fresh beacon) the ledger in a SQLite file. */
  static open(path: string, opts: LedgerOptions = {}): Ledger {
    let db: Database.Database;
    try {
      db = new (sqlite())(path);
    } catch (e) {
      fail('ERR_IO', `cannot open ledger database ${path}: ${(e as Error).message}`);
    }
    const ledger = new Ledger(db, opts);
    if (ledger.st.seq === 0) {
      const r = ledger.submitStamped({ type: 'genesis', at: ledger.now(), params: { ...DEFAULT_PARAMS, ...opts.params }, beacon: ledger.entropy(), referees: [...(opts.referees ?? [])] });
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

  /**
   * Admits a client's event and stamps the ledger's fields (time, entropy) on it: schema, who may
   * send it, the actor's signature, a stored input for a request. Clients may not set stamped
   * fields. The nonce is checked against replays in the event's transaction (applyAndWrite).
   */
  private stamp(input: unknown): Event {
    validateEvent(input, { stamped: false });
    const raw = input as Record<string, unknown>;
    if (LEDGER_EVENTS.has(raw.type as string)) fail('ERR_EVENT', `${String(raw.type)} events are written by the ledger, not sent to it`);
    if (raw.type === 'deposit' && !this.faucet) fail('ERR_FAUCET', 'deposit: this ledger runs without a faucet; accounts are funded by its operator');
    checkSignature(raw);
    if (raw.type === 'request' && !this.hasInput(raw.input as string)) fail('ERR_EVENT', `request.input ${raw.input as string} is not stored on the ledger: put the input first (POST /inputs)`);
    return this.stampInternal(raw);
  }

  private stampInternal(raw: Record<string, unknown>): Event {
    const e = { ...raw, at: this.now() } as Record<string, unknown>;
    for (const field of STAMPED[e.type as Event['type']] ?? []) e[field] = this.entropy();
    return e as unknown as Event;
  }

  /**
   * Applies one stamped event and writes its consequences (inside a transaction the caller holds).
   * On success its undo goes on `undos`, for the caller to run if the transaction does not commit.
   */
  private applyAndWrite(e: Event, undos: (() => void)[]): { seq: number; effects: Effect[] } {
    if (e.type === 'request' && this.stmts.isClosed.get(e.request)) fail('ERR_DUPLICATE', `request ${e.request} was already used`);
    const nonce = (e as { nonce?: string }).nonce;
    const actor = nonce === undefined ? undefined : actorOf(e as unknown as Record<string, unknown>);
    if (actor !== undefined && this.stmts.nonceSeen.get(actor, nonce)) fail('ERR_REPLAY', `${e.type}: ${actor} has already used nonce ${nonce}`);
    const st = this.st;
    const seq = st.seq;
    const prev = SCALARS.map((k) => st[k]);
    const { effects, changes, undo } = applyInPlace(st, e);
    try {
      this.stmts.event.run(seq, e.at, JSON.stringify(e), JSON.stringify(effects));
      if (actor !== undefined) this.stmts.nonce.run(actor, nonce, seq);
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
    return this.runBatch(inputs, (input) => this.stamp(input));
  }

  /**
   * The operator's deposit: mints `amount` into an account without the faucet (in process only;
   * this is how a ledger with `faucet: false` funds accounts).
   */
  mint(account: Hex32, amount: number): { seq: number; event: Event; effects: Effect[] } {
    const [r] = this.runBatch([{ type: 'deposit', account, amount }], (input) => {
      validateEvent(input, { stamped: false });
      return this.stampInternal(input as Record<string, unknown>);
    });
    if (!r.ok) throw new AtomaError(r.error.message, r.error.code);
    return r;
  }

  private runBatch(inputs: readonly unknown[], stamp: (input: unknown) => Event): SubmitResult[] {
    const results: SubmitResult[] = [];
    const undos: (() => void)[] = [];
    const savepoint = this.db.transaction((e: Event) => this.applyAndWrite(e, undos));
    try {
      this.db.transaction(() => {
        for (const input of inputs) {
          try {
            const e = stamp(input);
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
    return nextDeadline(this.st) < this.now() ? this.runBatch([{ type: 'tick' }], (input) => this.stampInternal(input as Record<string, unknown>))[0] : null;
  }

  /**
   * The operator's input store (in process, unsigned, no quota; clients use putSignedInput).
   * Stores a request input and returns its BLAKE3 digest (64 hex), the `input` a request names.
   * Storing the same bytes again is a no-op. Durable when it returns (one auto-committed write).
   *
   * @example
   * const input = ledger.putInput(Buffer.from(canonical(assignment)));
   * ledger.submit(signEvent({ type: 'request', request, task, client: key.publicKey, maxPrice, input }, key));
   */
  putInput(bytes: Uint8Array): string {
    if (!(bytes instanceof Uint8Array)) fail('ERR_ARGUMENT', 'putInput: bytes must be a Uint8Array');
    if (bytes.byteLength > MAX_INPUT) fail('ERR_TOO_LARGE', `putInput: ${bytes.byteLength} bytes is over the ${MAX_INPUT}-byte limit of a request input`);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const digest = blake3(buf).toString('hex');
    this.stmts.inputPut.run(digest, buf);
    return digest;
  }

  /**
   * Stores a client's input under a grant (inputs.ts signInput): signed by `grant.account` for
   * exactly these bytes, the account funded, the nonce not used before, the account's stored
   * bytes within `inputQuota` (bytes already stored are not charged again). Durable when it
   * returns. Errors: ERR_TOO_LARGE, ERR_SIGNATURE, ERR_FUNDS, ERR_REPLAY, ERR_QUOTA.
   *
   * @example
   * const input = ledger.putSignedInput(bytes, signInput(bytes, clientKey));
   */
  putSignedInput(bytes: Uint8Array, grant: InputGrant): string {
    if (!(bytes instanceof Uint8Array)) fail('ERR_ARGUMENT', 'putSignedInput: bytes must be a Uint8Array');
    if (bytes.byteLength > MAX_INPUT) fail('ERR_TOO_LARGE', `putSignedInput: ${bytes.byteLength} bytes is over the ${MAX_INPUT}-byte limit of a request input`);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const digest = blake3(buf).toString('hex');
    const g = checkInputGrant(digest, buf.length, grant);
    this.db.transaction(() => {
      const charged = this.hasInput(digest) ? 0 : buf.length;
      this.checkUpload(g, charged);
      this.stmts.grantPut.run(g.account, g.nonce, digest, charged);
      this.stmts.inputPut.run(digest, buf);
    })();
    return digest;
  }

  /**
   * The checks of an upload that need no bytes (the service runs them on the headers, before
   * reading a body): the grant's form, a funded account, an unused nonce, `size` more bytes
   * within the quota. Throws ERR_SIGNATURE, ERR_FUNDS, ERR_REPLAY or ERR_QUOTA.
   */
  checkUpload(grant: unknown, size: number): void {
    const { account, nonce } = checkGrantForm(grant);
    const balance = this.st.accounts[account] ?? 0;
    if (!(balance > 0)) fail('ERR_FUNDS', `input upload: account ${account} holds nothing; inputs are stored for funded accounts only`);
    if (this.stmts.grantSeen.get(account, nonce)) fail('ERR_REPLAY', `input upload: ${account} has already used nonce ${nonce}`);
    const used = this.inputUsage(account);
    if (used + size > this.inputQuota) fail('ERR_QUOTA', `input upload: account ${account} has stored ${used} bytes of inputs; ${size} more is over its quota of ${this.inputQuota}`);
  }

  /** Bytes of inputs charged to an account. */
  inputUsage(account: string): number {
    return (this.stmts.grantUsage.get(account) as { n: number }).n;
  }

  /** The stored input with this digest, or null. */
  getInput(digest: string): Buffer | null {
    if (!isHex32(digest)) fail('ERR_EVENT', 'an input digest is 64 lowercase hex digits');
    const r = this.stmts.inputGet.get(digest) as { body: Buffer } | undefined;
    return r ? r.body : null;
  }

  hasInput(digest: string): boolean {
    return isHex32(digest) && this.stmts.inputHas.get(digest) !== undefined;
  }

  /** Logged events from seq on, with their effects. */
  events(from = 0, limit = 1000): { seq: number; event: Event; effects: Effect[] }[] {
    return (this.stmts.events.all(from, limit) as { seq: number; body: string; effects: string }[]).map((r) => ({ seq: r.seq, event: JSON.parse(r.body), effects: JSON.parse(r.effects) }));
  }

  /**
   * Logged events from seq on as the stream's message text, `{"seq":N,"event":...,"effects":[...]}`,
   * built from the stored JSON without parsing it (the service's catch-up reads the log this way).
   */
  eventTexts(from: number, limit: number): { seq: number; text: string }[] {
    return (this.stmts.events.all(from, limit) as { seq: number; body: string; effects: string }[])
      .map((r) => ({ seq: r.seq, text: `{"seq":${r.seq},"event":${r.body},"effects":${r.effects}}` }));
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

  /** (actor, nonce, seq) of every signed event in the log, in order. */
  private *logNonces(): Generator<[string, string, number]> {
    for (const r of this.db.prepare('SELECT seq, body FROM events ORDER BY seq').iterate() as Iterable<{ seq: number; body: string }>) {
      const e = JSON.parse(r.body) as Record<string, unknown>;
      const actor = typeof e.nonce === 'string' ? actorOf(e) : undefined;
      if (actor !== undefined) yield [actor, e.nonce as string, r.seq];
    }
  }

  /** Rebuilds the seen-nonce table from the event log. */
  private rebuildNonces(): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM nonces');
      // Read the log first: better-sqlite3 allows no write while a query is being iterated.
      for (const [actor, nonce, seq] of [...this.logNonces()]) this.stmts.nonce.run(actor, nonce, seq);
    })();
  }

  /**
   * True when the stored state equals the replay of the log (canonical JSON compare), every signed
   * event in the log still verifies against its actor, the nonce table is exactly the log's
   * (actor, nonce) pairs, every request's input is stored, and the amounts are exact and add up
   * (accounting.ts auditAmounts). A log today's rules refuse (say, written before a rule was
   * tightened) does not verify.
   */
  verify(): boolean {
    let replayed: State;
    try {
      replayed = this.replay();
    } catch {
      return false;
    }
    const stored = this.load();
    if (canonical(replayed) !== canonical(stored) || auditAmounts(stored).length > 0) return false;
    let signed = 0;
    for (const r of this.db.prepare('SELECT body FROM events ORDER BY seq').iterate() as Iterable<{ body: string }>) {
      const e = JSON.parse(r.body) as Record<string, unknown>;
      try {
        if (checkSignature(e)) signed++;
      } catch {
        return false;
      }
      if (e.type === 'request' && !this.hasInput(e.input as string)) return false;
    }
    const nonces = (this.db.prepare('SELECT count(*) AS n FROM nonces').get() as { n: number }).n;
    if (nonces !== signed) return false;
    const nonceSeq = this.db.prepare('SELECT seq FROM nonces WHERE actor = ? AND nonce = ?');
    for (const [actor, nonce, seq] of this.logNonces()) {
      const row = nonceSeq.get(actor, nonce) as { seq: number } | undefined;
      if (row?.seq !== seq) return false;
    }
    return true;
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
