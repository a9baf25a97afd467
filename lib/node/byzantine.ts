/**
 * Byzantine strategies for the devnet (lib/node/devnet.ts): the ways a node can cheat the
 * protocol, as ParticipantHooks on the real node (participant.ts). They live here, in the devnet's
 * code, and nowhere in `atoma node`: the production node has no switch that turns them on.
 *
 *   tamper  executes, then forges (executor.ts `forge`): one fed-back token changed and the trace
 *           replayed from there, so the forgery is self-consistent; it commits, reveals and answers
 *           bisection rounds from the forged trace like an honest node would from its own. Every
 *           tamperer changes the same token of a request (the pick comes from the request id), so
 *           tamperers sampled together collude.
 *   copy    never executes: it republishes the first commitment another node makes on a request it
 *           was sampled for. It cannot open it (no salt, no result): missed reveal, slashed.
 *   silent  never executes nor commits: missed commit, slashed, replaced.
 *
 * All three re-bond after a slash (deposit + addCollateral): a patient adversary keeps its share of
 * the eligible nodes.
 */
import { fail } from '../engine/errors.js';
import type { LlamaModel } from '../model/llama.js';
import type { WireExecution } from './engine.js';
import { forge, type Assignment } from './executor.js';
import type { ClientEvent, StreamItem } from './ledger-port.js';
import type { Logger } from './log.js';
import type { ParticipantHooks } from './participant.js';

export type ByzantineRole = 'tamper' | 'copy' | 'silent';

export const BYZANTINE_ROLES: readonly ByzantineRole[] = ['tamper', 'copy', 'silent'];

export interface ByzantineContext {
  /** The node's id (its public key). */
  node: string;
  /** Signs and submits an event as the node. */
  submit(e: ClientEvent): Promise<unknown>;
  /** The task's model in this process (a tamperer replays its forged trace on it). */
  model?: LlamaModel;
  log: Logger;
}

/** Which leaf hashes a wire execution carries, as the executor's Buffer list. */
function leavesOf(r: WireExecution): Buffer[] {
  const all = Buffer.from(r.leaves.buffer, r.leaves.byteOffset, r.leaves.byteLength);
  const out: Buffer[] = [];
  for (let i = 0; i + 32 <= all.length; i += 32) out.push(all.subarray(i, i + 32));
  return out;
}

/**
 * The hooks that make a participant behave as `role`.
 *
 * @example
 * const hooks = byzantineHooks('tamper', { node: key.publicKey, submit: (e) => port.submit(signEvent(e, key)), model, log });
 * await startParticipant({ ...setup, hooks });
 */
export function byzantineHooks(role: ByzantineRole, ctx: ByzantineContext): ParticipantHooks {
  const me = ctx.node;
  const send = (e: ClientEvent) => {
    ctx.submit(e).catch((err: Error) => ctx.log('warn', `byzantine ${role}: ${e.type} refused`, { error: err.message }));
  };
  /** Re-bonds what a slash took (the devnet's faucet pays). */
  const rebond = (item: StreamItem) => {
    for (const x of item.effects) {
      if (x.type === 'slashed' && x.node === me) {
        send({ type: 'deposit', account: me, amount: x.amount });
        send({ type: 'addCollateral', node: me, amount: x.amount });
      }
    }
  };

  if (role === 'tamper') {
    const model = ctx.model ?? fail('ERR_USAGE', 'byzantine tamper: the model is needed to forge a trace');
    return {
      observe: rebond,
      result(request: string, a: Assignment, honest: WireExecution): WireExecution {
        const pick = Number.parseInt(request.slice(0, 8), 16);
        const f = forge(model, a, { tokens: honest.tokens, outputDigest: honest.outputDigest, traceRoot: honest.traceRoot, leaves: leavesOf(honest) }, pick);
        return { tokens: f.tokens, outputDigest: f.outputDigest, traceRoot: f.traceRoot, leaves: Buffer.concat(f.leaves) };
      },
    };
  }

  if (role === 'silent') return { observe: rebond, accept: () => false };

  if (role !== 'copy') fail('ERR_USAGE', `unknown byzantine role ${String(role)}`);
  /** Requests it was sampled for and has not committed on yet. */
  const waiting = new Set<string>();
  /** The first commitment another node made, by request. */
  const seen = new Map<string, string>();
  const copy = (request: string) => {
    const c = seen.get(request);
    if (c === undefined || !waiting.delete(request)) return;
    send({ type: 'commit', request, node: me, commitment: c });
  };
  return {
    // It takes no assignment into node.db: there is nothing it will execute or reveal.
    accept(request: string): boolean {
      waiting.add(request);
      copy(request);
      return false;
    },
    observe(item: StreamItem): void {
      const e = item.event;
      if (e.type === 'commit' && e.node !== me && !seen.has(e.request)) {
        seen.set(e.request, e.commitment);
        copy(e.request);
      }
      for (const x of item.effects) {
        if (x.type === 'closed') {
          seen.delete(x.request.id);
          waiting.delete(x.request.id);
        }
      }
      rebond(item);
    },
  };
}
