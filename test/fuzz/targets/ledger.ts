/**
 * Ledger events as a client sends them: a JSON list of events submitted in order to a fresh
 * in-memory ledger (admission: schema, who may send what, the Ed25519 signature, replays; then
 * the rules and the SQLite writes), each first pre-verified off-thread as the service does.
 * Seeds are prefixes of one signed story built with lib/protocol/signing.ts (deposits, two
 * nodes registering and subscribing, a task with sampling n = 2, a published key, a request,
 * commits, reveals that disagree on the trace length, the referee's full re-execution). Signing
 * is deterministic (fixed seeds, counter nonces; Ed25519 has no randomness), and so are the
 * ledger's clock and entropy, so a case is the same on every run. A mutated event keeps its old
 * signature and is refused by it, so the mutator re-signs a mutated event one time in two:
 * then the rules behind the signature check see it.
 */
import { createHash, sign } from 'node:crypto';
import { fail } from '../../../lib/engine/errors.js';
import { Ledger } from '../../../lib/protocol/ledger/store.js';
import { ACTOR_FIELD, eventDigest, preverifyEvent, signerFromSeed, type Signer } from '../../../lib/protocol/signing.js';
import { commitment } from '../../../lib/protocol/commitment.js';
import { atomaCode, type FuzzTarget } from '../target.js';
import { JSON_TOKENS, mutateJson, type Json } from '../mutate-json.js';
import type { Rng } from '../prng.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const enc = new TextEncoder();
const dec = new TextDecoder();

const KEYS: Record<string, Signer> = Object.fromEntries(['client', 'creator', 'nodeA', 'nodeB', 'referee'].map((n) => [n, signerFromSeed(hex(`fuzz ${n}`))]));
const BY_ID = new Map(Object.values(KEYS).map((k) => [k.publicKey, k]));
const INPUT = enc.encode('{"prompt":"fuzz"}');

/** Signs an event as its actor with a deterministic nonce (replacing nonce and sig). */
function signed(e: Record<string, unknown>, nonce: string): Record<string, unknown> {
  const field = ACTOR_FIELD[e.type as keyof typeof ACTOR_FIELD];
  const key = field ? BY_ID.get(e[field] as string) : undefined;
  if (!key) return e;
  const { sig: _s, ...rest } = e;
  const unsigned = { ...rest, nonce };
  return { ...unsigned, sig: sign(null, eventDigest(unsigned), key.privateKey).toString('hex') };
}

function story(): Record<string, unknown>[] {
  const { client, creator, nodeA, nodeB, referee } = KEYS;
  const task = hex('task');
  const request = hex('request');
  const x25519 = hex('x25519 public key');
  const out = [hex('output A'), hex('output B')];
  const root = [hex('root A'), hex('root B')];
  const salt = [hex('salt A'), hex('salt B')];
  const leaves = [4, 5];
  const events: Record<string, unknown>[] = [
    { type: 'deposit', account: client.publicKey, amount: 50_000_000 },
    { type: 'deposit', account: nodeA.publicKey, amount: 20_000_000 },
    { type: 'deposit', account: nodeB.publicKey, amount: 20_000_000 },
    { type: 'register', node: nodeA.publicKey, collateral: 10_000_000 },
    { type: 'register', node: nodeB.publicKey, collateral: 10_000_000 },
    { type: 'createTask', task, creator: creator.publicKey, kind: 'inference', digest: hex('model'), security: { mode: 'sampling', n: 2 }, minReputation: 0 },
    { type: 'subscribe', node: nodeA.publicKey, task, price: 1000 },
    { type: 'subscribe', node: nodeB.publicKey, task, price: 1200 },
    { type: 'publishKey', node: nodeA.publicKey, keyId: createHash('sha256').update(Buffer.from(x25519, 'hex')).digest('hex').slice(0, 32), publicKey: x25519, notBefore: 0, notAfter: 4_000_000_000_000 },
    { type: 'request', request, task, client: client.publicKey, maxPrice: 2000, minNodes: 2, input: Buffer.from(createHash('sha256').update('unused').digest()).toString('hex') },
  ];
  const nodes = [nodeA, nodeB];
  nodes.forEach((n, i) => events.push({ type: 'commit', request, node: n.publicKey, commitment: commitment(out[i], root[i], leaves[i], n.publicKey, salt[i]) }));
  nodes.forEach((n, i) => events.push({ type: 'reveal', request, node: n.publicKey, outputDigest: out[i], traceRoot: root[i], traceLeaves: leaves[i], salt: salt[i] }));
  events.push({ type: 'reexecuted', request, referee: referee.publicKey, outputDigest: out[0], traceRoot: root[0], traceLeaves: leaves[0] });
  events.push({ type: 'unsubscribe', node: nodeB.publicKey, task });
  events.push({ type: 'addCollateral', node: nodeA.publicKey, amount: 1000 });
  return events;
}

/** A fresh ledger whose clock and entropy are counters, holding the story's request input. */
function openLedger(): { ledger: Ledger; inputDigest: string } {
  let t = 1_000_000;
  let n = 0;
  const ledger = Ledger.open(':memory:', { clock: () => (t += 1), entropy: () => hex(`entropy ${n++}`), referees: [KEYS.referee.publicKey] });
  return { ledger, inputDigest: ledger.putInput(INPUT) };
}

function mutateEvents(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]): Uint8Array | null {
  const next = mutateJson(dec.decode(input), rng, seeds.length ? [JSON.parse(dec.decode(rng.pick(seeds))) as Json] : []);
  if (next === null) return null;
  if (!rng.chance(0.5)) return enc.encode(next);
  const list = JSON.parse(next) as unknown;
  if (!Array.isArray(list)) return enc.encode(next);
  const nonce = (i: number) => createHash('sha256').update(`${next.length} ${i}`).digest('hex').slice(0, 32);
  return enc.encode(JSON.stringify(list.map((e, i) => (e !== null && typeof e === 'object' && !Array.isArray(e) ? signed(e as Record<string, unknown>, nonce(i)) : e))));
}

export function ledgerTarget(): FuzzTarget {
  let inputDigest = '';
  return {
    name: 'ledger',
    async seeds() {
      const { ledger, inputDigest: d } = openLedger();
      ledger.close();
      inputDigest = d;
      const all = story().map((e, i) => signed(e.type === 'request' ? { ...e, input: inputDigest } : e, hex(`nonce ${i}`).slice(0, 32)));
      // Prefixes ending at each kind of event, so mutations reach every rule.
      return [2, 5, 8, 9, 10, 12, 14, 15, all.length].map((n) => enc.encode(JSON.stringify(all.slice(0, n))));
    },
    mutate: mutateEvents,
    structuredShare: 0.9,
    dictionary: JSON_TOKENS,
    // ERR_LEDGER is what the store makes of an untyped exception (errorOf); in memory it has no other cause.
    typedCode: (e) => { const c = atomaCode(e); return c === 'ERR_LEDGER' ? null : c; },
    async run(input) {
      let list: unknown;
      try {
        list = JSON.parse(dec.decode(input));
      } catch {
        fail('ERR_EVENT', 'body is not valid JSON');
      }
      if (!Array.isArray(list)) fail('ERR_EVENT', 'fuzz input: a list of events');
      // The service takes one event per POST: a list is this harness's container, and a story
      // is 17 events, so a mutation into a 20,000-item list is cut to what a story could be.
      list = list.slice(0, 64);
      const { ledger } = openLedger();
      try {
        let refusal: unknown = null;
        for (const e of list as unknown[]) {
          await preverifyEvent(e);
          try {
            ledger.submit(e);
          } catch (err) {
            refusal ??= err;
            if (atomaCode(err) === null || atomaCode(err) === 'ERR_LEDGER') throw err;
          }
        }
        if (!ledger.verify()) fail('ERR_INTERNAL', 'the ledger does not verify after the events it admitted');
        if (refusal !== null) throw refusal;
      } finally {
        ledger.close();
      }
    },
  };
}
