/**
 * Event poller: pages through `queryEvents` for the `atoma::db` events in ascending order,
 * hands each parsed event to a handler and advances a durable cursor (SQLite) after every
 * handled event, so a restart resumes right after the last event that was fully handled.
 *
 * Why polling and not a websocket subscription: Sui full nodes deprecated event subscriptions;
 * queryEvents with a cursor is what the Rust node uses too, and it is restart-safe by design.
 *
 * Every loop is bounded: at most `maxPagesPerPoll` pages per poll, at most `maxAttempts` tries
 * per RPC call (exponential backoff between them), and `run` stops on its AbortSignal or after
 * `maxPolls` polls.
 */
import { fail, AtomaError } from '../../engine/errors.js';
import { ATOMA_DB_MODULE } from './abi.js';
import type { SqliteCursorStore } from './cursor-store.js';
import { atomaEventName, parseAtomaEvent, type AtomaEvent, type SuiEventId } from './events.js';
import { sui } from './sdk.js';

/** The filter we send: events whose type is defined in module `db` of the Atoma package. */
export interface AtomaEventFilter {
  MoveEventModule: { package: string; module: string };
}

/** One page as queryEvents returns it. */
export interface EventPage {
  data: unknown[];
  hasNextPage: boolean;
  nextCursor?: SuiEventId | null;
}

/**
 * The one RPC method the poller needs. `SuiClient` from `@mysten/sui/client` satisfies it; tests
 * use an in-process fake with the same pagination semantics.
 */
export interface EventQuerySource {
  queryEvents(params: {
    query: AtomaEventFilter;
    cursor?: SuiEventId | null;
    limit?: number | null;
    order?: 'ascending' | 'descending' | null;
    signal?: AbortSignal;
  }): Promise<EventPage>;
}

export interface RetryPolicy {
  /** First backoff delay. */
  initialDelayMs: number;
  /** Backoff cap. */
  maxDelayMs: number;
  /** Tries per RPC call before the poll fails with ERR_SUI_RPC. */
  maxAttempts: number;
}

export interface EventPollerOptions {
  source: EventQuerySource;
  store: SqliteCursorStore;
  /** Package that defines the event types (original package id). */
  packageId: string;
  /** Called once per event, in chain order; a throw stops the poll with the cursor before this event. */
  handler: (event: AtomaEvent) => void | Promise<void>;
  /** Events per page (Sui caps at 50). */
  pageSize?: number;
  maxPagesPerPoll?: number;
  retry?: Partial<RetryPolicy>;
  /** Injected for tests; the default is an abortable setTimeout. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface PollResult {
  /** Events handed to the handler. */
  handled: number;
  /** db events of a kind this version does not know, passed over (cursor still advances). */
  skipped: number;
  pages: number;
  /** RPC failures that were retried. */
  retries: number;
  /** True when the last page said there is nothing more. */
  caughtUp: boolean;
  cursor: SuiEventId | null;
}

const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 250, maxDelayMs: 30_000, maxAttempts: 6 };

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * @example
 * const poller = new AtomaEventPoller({
 *   source: new SuiClient({ url: cfg.rpcUrl }), store: new SqliteCursorStore(cfg.events.cursorDbPath),
 *   packageId: cfg.eventPackageId, handler: (ev) => { if (ev.name === 'StackCreatedEvent') ... },
 * });
 * await poller.run({ signal: ac.signal, intervalMs: 1000 });
 */
export class AtomaEventPoller {
  readonly stream: string;
  private readonly pkgPrefix: string;
  private readonly opts: EventPollerOptions;
  private readonly retry: RetryPolicy;
  private readonly pageSize: number;
  private readonly maxPages: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(opts: EventPollerOptions) {
    this.opts = opts;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.pageSize = opts.pageSize ?? 50;
    this.maxPages = opts.maxPagesPerPoll ?? 20;
    this.sleep = opts.sleep ?? abortableSleep;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 50) fail('ERR_ARGUMENT', 'pageSize must be in [1, 50]');
    if (!Number.isInteger(this.maxPages) || this.maxPages < 1) fail('ERR_ARGUMENT', 'maxPagesPerPoll must be >= 1');
    const r = this.retry;
    if (!(r.maxAttempts >= 1 && r.initialDelayMs >= 0 && r.maxDelayMs >= r.initialDelayMs)) fail('ERR_ARGUMENT', 'invalid retry policy');
    // One cursor per (package, module): a different package never reuses another's position.
    this.stream = `${sui('utils').normalizeSuiAddress(opts.packageId)}::${ATOMA_DB_MODULE}`;
    this.pkgPrefix = this.stream;
  }

  /** The saved cursor (null before the first event). */
  cursor(): SuiEventId | null {
    return this.opts.store.load(this.stream);
  }

  private async fetchPage(cursor: SuiEventId | null, signal: AbortSignal | undefined, counter: { retries: number }): Promise<EventPage> {
    let delay = this.retry.initialDelayMs;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      if (signal?.aborted) fail('ERR_SUI_RPC', 'event poll aborted');
      try {
        const page = await this.opts.source.queryEvents({
          query: { MoveEventModule: { package: sui('utils').normalizeSuiAddress(this.opts.packageId), module: ATOMA_DB_MODULE } },
          cursor,
          limit: this.pageSize,
          order: 'ascending',
          signal,
        });
        if (typeof page !== 'object' || page === null || !Array.isArray(page.data) || typeof page.hasNextPage !== 'boolean') {
          fail('ERR_SUI_RPC', 'queryEvents returned a malformed page');
        }
        return page;
      } catch (e) {
        // A malformed page is a protocol error, not a transient one: do not retry it.
        if (e instanceof AtomaError) throw e;
        lastError = e;
        if (attempt === this.retry.maxAttempts) break;
        counter.retries++;
        await this.sleep(delay, signal);
        delay = Math.min(this.retry.maxDelayMs, delay * 2);
      }
    }
    return fail('ERR_SUI_RPC', `queryEvents failed ${this.retry.maxAttempts} times: ${(lastError as Error)?.message ?? String(lastError)}`);
  }

  /** Fetches and handles up to `maxPagesPerPoll` pages after the saved cursor. */
  async pollOnce(signal?: AbortSignal): Promise<PollResult> {
    const result: PollResult = { handled: 0, skipped: 0, pages: 0, retries: 0, caughtUp: false, cursor: this.cursor() };
    while (result.pages < this.maxPages && !signal?.aborted) {
      const page = await this.fetchPage(result.cursor, signal, result);
      result.pages++;
      // Parse the whole page before handling any of it: a malformed event stops the poll
      // with nothing of this page half-done.
      const parsed: (AtomaEvent | { skip: SuiEventId })[] = page.data.map((raw) => {
        const type = (raw as { type?: unknown })?.type;
        // Only an unknown event *of our package's db module* is skipped (a newer contract version
        // may add events); anything else goes to the parser, which rejects it.
        if (typeof type === 'string' && type.startsWith(`${this.pkgPrefix}::`) && atomaEventName(type, this.opts.packageId) === null) {
          const id = (raw as { id?: SuiEventId }).id;
          if (typeof id?.txDigest !== 'string' || typeof id.eventSeq !== 'string') fail('ERR_SUI_EVENT', `event ${type}: missing id`);
          return { skip: id };
        }
        return parseAtomaEvent(raw, this.opts.packageId);
      });
      for (const item of parsed) {
        if ('skip' in item) {
          result.skipped++;
          result.cursor = item.skip;
          this.opts.store.save(this.stream, item.skip, 0);
          continue;
        }
        await this.opts.handler(item);
        result.handled++;
        result.cursor = item.id;
        this.opts.store.save(this.stream, item.id, 1);
      }
      if (!page.hasNextPage) {
        result.caughtUp = true;
        break;
      }
      if (page.data.length === 0) {
        // hasNextPage with an empty page would loop forever on the same cursor; follow nextCursor.
        if (!page.nextCursor) fail('ERR_SUI_RPC', 'queryEvents: empty page claims more pages but gives no cursor');
        result.cursor = page.nextCursor;
        this.opts.store.save(this.stream, page.nextCursor, 0);
      }
    }
    return result;
  }

  /**
   * Polls until `signal` aborts or `maxPolls` polls ran; sleeps `intervalMs` whenever caught up.
   * Resolves with totals; rejects with the first non-retryable error.
   */
  async run(opts: { signal?: AbortSignal; intervalMs?: number; maxPolls?: number } = {}): Promise<PollResult & { polls: number }> {
    const intervalMs = opts.intervalMs ?? 1000;
    const maxPolls = opts.maxPolls ?? Number.POSITIVE_INFINITY;
    const total = { handled: 0, skipped: 0, pages: 0, retries: 0, caughtUp: false, cursor: this.cursor(), polls: 0 };
    while (total.polls < maxPolls && !opts.signal?.aborted) {
      const r = await this.pollOnce(opts.signal);
      total.polls++;
      total.handled += r.handled;
      total.skipped += r.skipped;
      total.pages += r.pages;
      total.retries += r.retries;
      total.caughtUp = r.caughtUp;
      total.cursor = r.cursor;
      if (r.caughtUp && total.polls < maxPolls) await this.sleep(intervalMs, opts.signal);
    }
    return total;
  }
}
