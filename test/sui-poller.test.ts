/**
 * Event poller + SQLite cursor. The RPC side is an in-process fake of `suix_queryEvents`: a test
 * double for the Sui full node, NOT a mock of our own logic. It keeps an ordered event log and
 * implements the RPC's pagination semantics (ascending order, cursor exclusive, limit, nextCursor
 * = last returned id, hasNextPage, MoveEventModule filter), and can fail the next N calls.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeSuiAddress } from '@mysten/sui/utils';
import {
  AtomaEventPoller, SqliteCursorStore, type AtomaEvent, type EventPage, type EventQuerySource, type SuiEventId,
} from '../lib/protocol/sui/index.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/sui/events.json'), 'utf8')) as {
  packageId: string;
  events: { id: SuiEventId; type: string; [k: string]: unknown }[];
};
const PKG = fixture.packageId;

class FakeQueryEventsRpc implements EventQuerySource {
  readonly log: { id: SuiEventId; type: string; [k: string]: unknown }[] = [];
  failNext = 0;
  calls = 0;
  lastLimit: number | null | undefined;

  async queryEvents(p: Parameters<EventQuerySource['queryEvents']>[0]): Promise<EventPage> {
    this.calls++;
    this.lastLimit = p.limit;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('503 Service Unavailable');
    }
    if (p.order !== 'ascending') throw new Error('fake supports ascending order only');
    const { package: pkg, module } = p.query.MoveEventModule;
    const match = this.log.filter((e) => {
      const [addr, mod] = e.type.split('::');
      return normalizeSuiAddress(addr) === normalizeSuiAddress(pkg) && mod === module;
    });
    let start = 0;
    if (p.cursor) {
      const at = match.findIndex((e) => e.id.txDigest === p.cursor!.txDigest && e.id.eventSeq === p.cursor!.eventSeq);
      if (at < 0) throw new Error('Could not find the referenced transaction events');
      start = at + 1;
    }
    const limit = Math.min(p.limit ?? 50, 50);
    const data = match.slice(start, start + limit);
    return {
      data: data.map((e) => structuredClone(e)),
      hasNextPage: start + limit < match.length,
      nextCursor: data.length > 0 ? data[data.length - 1].id : (p.cursor ?? null),
    };
  }
}

let dir: string;
let dbPath: string;
const stores: SqliteCursorStore[] = [];
function openStore(): SqliteCursorStore {
  const s = new SqliteCursorStore(dbPath);
  stores.push(s);
  return s;
}
const noSleep = { sleeps: [] as number[] };
function poller(rpc: EventQuerySource, store: SqliteCursorStore, seen: AtomaEvent[], extra: Partial<ConstructorParameters<typeof AtomaEventPoller>[0]> = {}) {
  return new AtomaEventPoller({
    source: rpc,
    store,
    packageId: PKG,
    handler: (ev) => void seen.push(ev),
    pageSize: 4,
    retry: { initialDelayMs: 100, maxDelayMs: 250, maxAttempts: 4 },
    sleep: async (ms) => void noSleep.sleeps.push(ms),
    ...extra,
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'atoma-poller-'));
  dbPath = join(dir, 'cursor.sqlite');
  noSleep.sleeps = [];
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AtomaEventPoller', () => {
  it('pages through all events in order and persists the cursor; a restart resumes after it', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(...fixture.events);
    const seen: AtomaEvent[] = [];
    const r = await poller(rpc, openStore(), seen).pollOnce();
    expect(seen.map((e) => e.id)).toEqual(fixture.events.map((e) => e.id));
    expect(r).toMatchObject({ handled: fixture.events.length, pages: Math.ceil(fixture.events.length / 4), caughtUp: true, retries: 0 });
    expect(rpc.lastLimit).toBe(4);

    // "Restart": a new store on the same file and a new poller.
    stores.splice(0).forEach((s) => s.close());
    const store2 = openStore();
    expect(store2.load(`${PKG}::db`)).toEqual(fixture.events.at(-1)!.id);
    expect(store2.eventsSeen(`${PKG}::db`)).toBe(fixture.events.length);
    const seen2: AtomaEvent[] = [];
    expect((await poller(rpc, store2, seen2).pollOnce()).handled).toBe(0);

    const more = fixture.events.slice(0, 3).map((e, i) => ({ ...structuredClone(e), id: { txDigest: e.id.txDigest, eventSeq: String(i + 1) } }));
    rpc.log.push(...more);
    await poller(rpc, store2, seen2).pollOnce();
    expect(seen2.map((e) => e.id)).toEqual(more.map((e) => e.id));
  });

  it('a failing handler leaves the cursor just before the failed event', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(...fixture.events);
    let n = 0;
    const failing = poller(rpc, openStore(), [], {
      handler: () => {
        if (n++ === 5) throw new Error('disk full');
      },
    });
    await expect(failing.pollOnce()).rejects.toThrow('disk full');
    expect(failing.cursor()).toEqual(fixture.events[4].id);
    const seen: AtomaEvent[] = [];
    await poller(rpc, openStore(), seen).pollOnce();
    expect(seen[0].id).toEqual(fixture.events[5].id);
    expect(seen.length).toBe(fixture.events.length - 5);
  });

  it('retries transient RPC errors with capped exponential backoff, then gives up with ERR_SUI_RPC', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(...fixture.events.slice(0, 2));
    rpc.failNext = 3;
    const seen: AtomaEvent[] = [];
    const r = await poller(rpc, openStore(), seen).pollOnce();
    expect(r.retries).toBe(3);
    expect(noSleep.sleeps).toEqual([100, 200, 250]);
    expect(seen.length).toBe(2);

    rpc.failNext = 100;
    rpc.calls = 0;
    const p = poller(rpc, openStore(), seen);
    await expect(p.pollOnce()).rejects.toMatchObject({ code: 'ERR_SUI_RPC' });
    expect(rpc.calls).toBe(4);
    expect(p.cursor()).toEqual(fixture.events[1].id);
  });

  it('a malformed event stops the poll before any event of its page is handled', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(...fixture.events);
    const bad = structuredClone(rpc.log[6]);
    (bad.parsedJson as Record<string, unknown>).stack_small_id = 'x';
    rpc.log[6] = bad;
    const seen: AtomaEvent[] = [];
    const p = poller(rpc, openStore(), seen);
    await expect(p.pollOnce()).rejects.toMatchObject({ code: 'ERR_SUI_EVENT' });
    // Page size 4: events 0..3 handled, the page with event 6 (4..7) not at all.
    expect(seen.length).toBe(4);
    expect(p.cursor()).toEqual(fixture.events[3].id);
  });

  it('skips db events it does not know (cursor still advances) and never sees other modules', async () => {
    const rpc = new FakeQueryEventsRpc();
    const unknown = { ...structuredClone(fixture.events[0]), type: `${PKG}::db::SomeFutureEvent`, id: { txDigest: fixture.events[0].id.txDigest, eventSeq: '7' } };
    const otherModule = { ...structuredClone(fixture.events[1]), type: `${PKG}::gate::Whatever` };
    rpc.log.push(fixture.events[0], unknown, otherModule, fixture.events[2]);
    const seen: AtomaEvent[] = [];
    const p = poller(rpc, openStore(), seen);
    const r = await p.pollOnce();
    expect(r).toMatchObject({ handled: 2, skipped: 1 });
    expect(p.cursor()).toEqual(fixture.events[2].id);

    // A db event from another package is not "unknown": it is rejected, not skipped.
    const foreign = { ...structuredClone(fixture.events[3]), type: fixture.events[3].type.replace(PKG, '0x' + '99'.repeat(32)) };
    const liar: EventQuerySource = { queryEvents: async () => ({ data: [foreign], hasNextPage: false, nextCursor: foreign.id }) };
    await expect(poller(liar, openStore(), seen).pollOnce()).rejects.toMatchObject({ code: 'ERR_SUI_EVENT' });
  });

  it('is bounded: maxPagesPerPoll per poll, maxPolls per run, and stops on abort', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(...fixture.events);
    const seen: AtomaEvent[] = [];
    const p = poller(rpc, openStore(), seen, { pageSize: 2, maxPagesPerPoll: 2 });
    const r = await p.pollOnce();
    expect(r).toMatchObject({ handled: 4, pages: 2, caughtUp: false });

    const total = await p.run({ maxPolls: 2, intervalMs: 5 });
    expect(total.polls).toBe(2);
    expect(seen.length).toBe(12);

    const ac = new AbortController();
    const running = p.run({ signal: ac.signal, intervalMs: 5 });
    ac.abort();
    const t = await running;
    expect(t.polls).toBeLessThanOrEqual(1);
  });

  it('real timers: run() sleeps between caught-up polls and wakes on abort', async () => {
    const rpc = new FakeQueryEventsRpc();
    rpc.log.push(fixture.events[0]);
    const seen: AtomaEvent[] = [];
    const p = new AtomaEventPoller({ source: rpc, store: openStore(), packageId: PKG, handler: (e) => void seen.push(e) });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 150);
    const total = await p.run({ signal: ac.signal, intervalMs: 60_000 });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(total.polls).toBe(1);
    expect(seen.length).toBe(1);
  });
});
