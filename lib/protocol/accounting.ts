/**
 * Exact accounting. Amounts are JSON numbers, so they are exact only as safe integers (below
 * 2^53). The rules keep every amount there with one bound: money enters only by `deposit`, which
 * is refused (ERR_RANGE) when it would take `minted` past Number.MAX_SAFE_INTEGER, and money is
 * conserved, so every balance, collateral, escrow, reward pool and the treasury -- each a part of
 * `minted` -- stays below it too. `auditAmounts` checks both facts on a state, summing in BigInt
 * so that a total which drifted in doubles cannot hide: the ledger's `verify` runs it.
 */
import type { State } from './types.js';

/**
 * What is wrong with a state's amounts: empty when every balance and total is a safe
 * non-negative integer and balances + collateral + open escrow and reward pools + treasury
 * equal `minted` exactly.
 *
 * @example
 * const problems = auditAmounts(ledger.state);   // [] for a sound ledger
 */
export function auditAmounts(state: State): string[] {
  const problems: string[] = [];
  let sum = 0n;
  const add = (what: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      problems.push(`${what} is ${String(v)}, not a safe non-negative integer`);
      if (typeof v === 'number' && Number.isInteger(v)) sum += BigInt(v);
      return;
    }
    sum += BigInt(v);
  };
  for (const id in state.accounts) add(`account ${id}`, state.accounts[id]);
  for (const id in state.nodes) add(`collateral of node ${id}`, state.nodes[id].collateral);
  for (const id in state.requests) {
    add(`escrow of request ${id}`, state.requests[id].escrow);
    add(`reward pool of request ${id}`, state.requests[id].rewardPool);
  }
  add('treasury', state.treasury);
  const minted = state.minted;
  if (typeof minted !== 'number' || !Number.isSafeInteger(minted) || minted < 0) problems.push(`minted is ${String(minted)}, not a safe non-negative integer`);
  if (typeof minted !== 'number' || !Number.isInteger(minted) || sum !== BigInt(minted)) {
    problems.push(`balances, collateral, escrow, reward pools and treasury add up to ${sum}, but minted is ${String(minted)}`);
  }
  return problems;
}
