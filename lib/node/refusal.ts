/**
 * Refusals are results. An input the engine refuses for a reason fixed by the input alone (a token
 * id outside the vocabulary, a prompt beyond the context, a WASM trap or an exhausted fuel
 * budget) is refused the same way by every honest node, so the nodes commit to a canonical
 * *refusal result* instead of committing nothing (which would miss the deadline and slash every
 * honest node). A refusal is settled, paid and disputed like any other result:
 *
 *   data         = UTF-8 of "atoma-refusal/v1\n" + code + "\n"
 *   outputDigest = BLAKE3(data)
 *   leaf         = BLAKE3(0x00 || data)      (an RFC 6962 leaf: one leaf, so traceRoot = leaf)
 *   traceLeaves  = 1
 *
 * Only the codes in REFUSAL_CODES qualify, and only when they come from the validation or the
 * guest run itself (participant.ts decides where); transient faults -- I/O, the ledger being
 * unreachable, a wall-clock timeout, a dead worker -- are never committed as refusals.
 */
import { AtomaError } from '../engine/errors.js';
import { blake3, merkleLeaf } from '../engine/hash.js';
import type { WireExecution } from './engine.js';

/**
 * The deterministic, input-caused error codes (docs/protocol.md, "Refusals"):
 * - ERR_EVENT: the input bytes are not a well-formed assignment of the task's kind in canonical form
 * - ERR_RANGE: a prompt token outside the model's vocabulary; prompt + maxTokens beyond the context
 * - ERR_ARGUMENT: sampling parameters the model's request check refuses
 * - ERR_WASM_TRAP, ERR_WASM_OUT_OF_FUEL, ERR_WASM_OUTPUT_LIMIT: the guest trapped, ran out of
 *   fuel, wrote more than the output limit
 * - ERR_WASM_STACK_OVERFLOW: the instrumented call-depth limit (not V8's own stack limit)
 * - ERR_WASM_OUT_OF_MEMORY: memory.grow failed at the assignment's memory cap (not the worker's heap limit)
 * - ERR_WASM_INVALID: the module cannot run (no _start) -- a property of the task's module
 */
export const REFUSAL_CODES = [
  'ERR_EVENT', 'ERR_RANGE', 'ERR_ARGUMENT',
  'ERR_WASM_TRAP', 'ERR_WASM_OUT_OF_FUEL', 'ERR_WASM_OUTPUT_LIMIT', 'ERR_WASM_STACK_OVERFLOW', 'ERR_WASM_OUT_OF_MEMORY', 'ERR_WASM_INVALID',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

const data = (code: string) => Buffer.from(`atoma-refusal/v1\n${code}\n`, 'utf8');

/** An execution the node commits to instead of an output: the canonical refusal of `code`. */
export interface RefusalExecution extends WireExecution {
  refusal: RefusalCode;
}

/**
 * The canonical refusal result of a code.
 *
 * @example
 * const r = refusalResult('ERR_RANGE');
 * r.traceRoot === r.leaves.toString('hex');   // one leaf
 */
export function refusalResult(code: RefusalCode): RefusalExecution {
  const leaf = merkleLeaf(data(code));
  return { tokens: [], outputDigest: blake3(data(code)).toString('hex'), traceRoot: leaf.toString('hex'), leaves: leaf, refusal: code };
}

/** The refusal code an output digest stands for, or null when it is not a refusal. */
export function refusalOf(outputDigest: string | null | undefined): RefusalCode | null {
  if (!outputDigest) return null;
  return REFUSAL_CODES.find((c) => blake3(data(c)).toString('hex') === outputDigest) ?? null;
}

export function isRefusalCode(code: string): code is RefusalCode {
  return (REFUSAL_CODES as readonly string[]).includes(code);
}

/**
 * An engine refusal on its way to the participant: raised only by the validation step of the
 * engine thread (engine-worker.ts) and by the WASM runner for guest errors, never by transport
 * or scheduling faults.
 */
export class RefusalError extends AtomaError {
  readonly refusal = true;
  constructor(message: string, code: RefusalCode) {
    super(message, code);
  }
}
