/**
 * The protocol simulator: the real rules (machine.ts) in memory, with nodes played by functions
 * instead of inference. An honest node's result is a fixed function of the request (its output
 * digest and an 8-leaf trace derived with BLAKE3); byzantine nodes either tamper (all of them
 * agree on the same forged result from some leaf on, the strongest collusion), copy another node's
 * commitment, or go silent. Every request runs through sampling, commit-reveal, deadlines,
 * replacement, bisection disputes with a referee, payment and slashing, exactly as on a ledger.
 */
import { blake3 } from '../engine/hash.js';
import { fail } from '../engine/errors.js';
import { commitment } from './commitment.js';
import { applyInPlace, emptyState } from './machine.js';
import { DEFAULT_PARAMS, type Params } from './params.js';
import { Trace } from './trace.js';
import type { Effect, Event, Hex32, State } from './types.js';

export type Behavior = 'tamper' | 'copy' | 'silent' | 'mixed';

export interface SimulationOptions {
  nodes: number;
  /** Nodes per request (sampling consensus n). */
  sample: number;
  byzantine: number;
  requests: number;
  behavior?: Behavior;
  seed?: number;
  /** Leaves per trace (decode steps x layers). */
  traceLeaves?: number;
  params?: Partial<Params>;
  /** Called with every event applied and its effects (to record the log, or check a replay). */
  onStep?: (event: Event, effects: readonly Effect[]) => void;
}

export interface SimulationReport {
  nodes: number; sample: number; byzantine: number; behavior: Behavior; p: number;
  requests: number; settled: number; failed: number;
  disputes: number; disputesWonByHonest: number; falseDisputes: number; bisectionRounds: number;
  tamperedSettled: number; timeouts: number;
  slashes: number; slashedAmount: number; payments: number; paidAmount: number; treasury: number;
  /** tamperedSettled / requests, its binomial standard error, and the two predictions. */
  tamperedRate: number; standardError: number;
  pToTheN: number; hypergeometric: number;
  /** (rate - prediction) / standard error of the prediction. */
  zVsPowerLaw: number; zVsHypergeometric: number;
  seconds: number; requestsPerSecond: number;
}

const h = (...parts: (string | number)[]) => blake3(parts.join('/')).toString('hex');

/**
 * Runs the simulation. Deterministic for a seed.
 *
 * @example
 * const r = simulate({ nodes: 100, sample: 3, byzantine: 30, requests: 100_000 });
 * r.tamperedRate;   // ~ 0.3^3 (exactly: hypergeometric, 30*29*28 / (100*99*98))
 */
export function simulate(o: SimulationOptions): SimulationReport {
  const behavior = o.behavior ?? 'tamper';
  const L = o.traceLeaves ?? 8;
  const seed = o.seed ?? 1;
  for (const [k, v] of Object.entries({ nodes: o.nodes, sample: o.sample, requests: o.requests })) {
    if (!Number.isSafeInteger(v) || v < 1) fail('ERR_USAGE', `simulate: ${k} must be a positive integer`);
  }
  if (!Number.isSafeInteger(o.byzantine) || o.byzantine < 0 || o.byzantine > o.nodes) fail('ERR_USAGE', 'simulate: byzantine must be in 0..nodes');
  if (o.sample > o.nodes) fail('ERR_USAGE', 'simulate: sample must be at most nodes');
  const params: Params = { ...DEFAULT_PARAMS, maxSampleSize: Math.max(DEFAULT_PARAMS.maxSampleSize, o.sample), ...o.params };
  const t0 = performance.now();
  let at = 0;
  const state: State = emptyState();
  const r: SimulationReport = {
    nodes: o.nodes, sample: o.sample, byzantine: o.byzantine, behavior, p: o.byzantine / o.nodes,
    requests: 0, settled: 0, failed: 0, disputes: 0, disputesWonByHonest: 0, falseDisputes: 0, bisectionRounds: 0,
    tamperedSettled: 0, timeouts: 0, slashes: 0, slashedAmount: 0, payments: 0, paidAmount: 0, treasury: 0,
    tamperedRate: 0, standardError: 0, pToTheN: 0, hypergeometric: 0, zVsPowerLaw: 0, zVsHypergeometric: 0, seconds: 0, requestsPerSecond: 0,
  };
  const slashedNow = new Set<Hex32>();
  const step = (e: Record<string, unknown>): Effect[] => {
    const event = { ...e, at: (at += 1) } as Event;
    // In place: the cost of an event does not grow with the number of nodes (machine.ts).
    const t = applyInPlace(state, event);
    o.onStep?.(event, t.effects);
    for (const x of t.effects) {
      if (x.type === 'slashed') { r.slashes++; r.slashedAmount += x.amount; if (x.reason === 'timeout') r.timeouts++; slashedNow.add(x.node); }
      if (x.type === 'paid') { r.payments++; r.paidAmount += x.amount; }
    }
    return t.effects;
  };
  // The referee: the court the nodes' disputes go to (its id as genesis names it; the rules do not
  // check signatures, the ledger does on admission, so the simulator needs no keys).
  const referee = h('referee', seed);
  step({ type: 'genesis', params, beacon: h('beacon', seed), referees: [referee] });
  const ids = Array.from({ length: o.nodes }, (_, i) => h('node', seed, i));
  const byz = new Map<Hex32, Behavior>();
  const index = new Map(ids.map((id, i) => [id, i]));
  const kinds: Behavior[] = ['tamper', 'copy', 'silent'];
  // Which nodes are byzantine does not matter (sampling is uniform); take the first B.
  ids.slice(0, o.byzantine).forEach((id, i) => byz.set(id, behavior === 'mixed' ? kinds[i % 3] : behavior));
  const client = h('client', seed);
  const task = h('task', seed);
  step({ type: 'deposit', account: client, amount: 2 ** 50 });
  step({ type: 'createTask', task, creator: client, kind: 'inference', digest: h('model'), security: { mode: 'sampling', n: o.sample }, minReputation: 0 });
  for (const id of ids) {
    step({ type: 'deposit', account: id, amount: params.minCollateral });
    step({ type: 'register', node: id, collateral: params.minCollateral });
    step({ type: 'subscribe', node: id, task, price: 10 });
  }
  for (let q = 0; q < o.requests; q++) {
    const request = h('request', seed, q);
    const honestLeaves = Array.from({ length: L }, (_, j) => `${request}/${j}`);
    const honest = Trace.fromLeaves(honestLeaves);
    const from = Number.parseInt(request.slice(0, 8), 16) % L;
    // The forged result is only built when a tamperer is sampled (most requests with small p need none).
    let forgedResult: { trace: Trace; root: Hex32; output: Hex32 } | undefined;
    const forgedOf = () => {
      if (!forgedResult) {
        const trace = Trace.fromLeaves(honestLeaves.map((x, j) => (j >= from ? `forged/${x}` : x)));
        forgedResult = { trace, root: trace.root(), output: h('forged-out', request) };
      }
      return forgedResult;
    };
    const out = { honest: { trace: honest, root: honest.root(), output: h('out', request) } };
    const salts = new Map<Hex32, Hex32>();
    const resultOf = (node: Hex32) => (byz.get(node) === 'tamper' ? forgedOf() : out.honest);
    let byzantineSampled = false;
    let open = true;
    const watch = (effects: Effect[]) => {
      for (const x of effects) {
        if (x.type === 'sampled') byzantineSampled = x.nodes.some((n) => byz.has(n));
        if (x.type === 'replaced' && x.node && byz.has(x.node)) byzantineSampled = true;
        if (x.type === 'disputeOpened') { r.disputes++; if (!byzantineSampled) r.falseDisputes++; }
        if (x.type === 'bisectRound') r.bisectionRounds++;
        if (x.type === 'disputeResolved' && x.winner.length > 0 && x.winner.every((n) => !byz.has(n) || byz.get(n) !== 'tamper')) r.disputesWonByHonest++;
        if (x.type === 'settled') { r.settled++; if (x.outputDigest !== out.honest.output) r.tamperedSettled++; }
        if (x.type === 'failed') r.failed++;
        if (x.type === 'closed') open = false;
      }
    };
    watch(step({ type: 'request', request, task, client, maxPrice: 10, minNodes: 1, input: h('input', request), entropy: h('entropy', seed, q) }));
    r.requests++;
    for (let guard = 0; open && guard < 10_000; guard++) {
      const req = state.requests[request];
      if (req.phase === 'commit') {
        for (const slot of req.slots.filter((x) => x.status === 'committing')) {
          const b = byz.get(slot.node);
          if (b === 'silent') continue;
          if (b === 'copy') {
            const other = state.requests[request].slots.find((x) => x.commitment !== undefined);
            if (other) { watch(step({ type: 'commit', request, node: slot.node, commitment: other.commitment })); continue; }
          }
          const salt = h('salt', seed, q, slot.node);
          salts.set(slot.node, salt);
          const res = resultOf(slot.node);
          watch(step({ type: 'commit', request, node: slot.node, commitment: commitment(res.output, res.root, L, slot.node, salt) }));
          if (!open || state.requests[request].phase !== 'commit') break;
        }
      } else if (req.phase === 'reveal') {
        for (const slot of req.slots.filter((x) => x.status === 'committed')) {
          const salt = salts.get(slot.node);
          if (salt === undefined) continue; // a copier cannot open a commitment it did not make
          const res = resultOf(slot.node);
          watch(step({ type: 'reveal', request, node: slot.node, outputDigest: res.output, traceRoot: res.root, traceLeaves: L, salt }));
          if (!open || state.requests[request].phase !== 'reveal') break;
        }
      } else {
        const x = req.dispute!;
        if (x.stage === 'bisect') {
          for (const side of [x.a, x.b]) {
            const tr = side.outputDigest === out.honest.output ? honest : forgedOf().trace;
            const [left, right] = tr.children(x.lo, x.hi);
            watch(step({ type: 'bisect', request, node: side.nodes[0], left, right }));
          }
        } else if (x.mode === 'leaf') {
          // The referee re-executes one leaf: here, the honest function of the request.
          watch(step({ type: 'reexecuted', request, referee, leafHash: honest.leaf(x.lo) }));
        } else {
          watch(step({ type: 'reexecuted', request, referee, outputDigest: out.honest.output, traceRoot: out.honest.root, traceLeaves: L }));
        }
      }
      if (!open) break;
      const after = state.requests[request];
      // Nothing more will come from the nodes: let the deadline pass.
      if (after === req || stuck(after, salts)) { at += Math.max(params.commitMs, params.revealMs, params.bisectRoundMs) + 1; watch(step({ type: 'tick' })); }
    }
    // A patient adversary re-bonds: byzantine nodes keep their share p of the eligible nodes.
    // Only nodes slashed during this request can be short, and they are topped up in node order.
    const short = [...slashedNow].filter((id) => byz.has(id)).sort((a, b) => index.get(a)! - index.get(b)!);
    slashedNow.clear();
    for (const id of short) {
      const n = state.nodes[id];
      if (n.collateral < params.minCollateral) {
        const top = params.minCollateral - n.collateral;
        step({ type: 'deposit', account: id, amount: top });
        step({ type: 'addCollateral', node: id, amount: top });
      }
    }
  }
  r.seconds = (performance.now() - t0) / 1000;
  r.requestsPerSecond = r.requests / r.seconds;
  r.treasury = state.treasury;
  r.tamperedRate = r.tamperedSettled / r.requests;
  r.pToTheN = r.p ** o.sample;
  let hg = 1;
  for (let i = 0; i < o.sample; i++) hg *= (o.byzantine - i) / (o.nodes - i);
  r.hypergeometric = Math.max(0, hg);
  r.standardError = Math.sqrt((r.tamperedRate * (1 - r.tamperedRate)) / r.requests);
  const z = (pred: number) => (r.tamperedRate - pred) / Math.sqrt(Math.max(pred * (1 - pred), 1e-300) / r.requests);
  r.zVsPowerLaw = behavior === 'tamper' ? z(r.pToTheN) : 0;
  r.zVsHypergeometric = behavior === 'tamper' ? z(r.hypergeometric) : 0;
  return r;
}

/** True when every remaining action belongs to nodes that will not act (silent or copiers). */
function stuck(req: State['requests'][string], salts: Map<Hex32, Hex32>): boolean {
  if (req.phase === 'reveal') return req.slots.every((x) => x.status !== 'committed' || !salts.has(x.node));
  return false;
}
