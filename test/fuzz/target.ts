/**
 * What a fuzz target is, how a case's input is drawn, and how its ending is judged. A target
 * builds valid seeds with the project's own writers and runs one input through the code under
 * test; a case passes when it succeeds or is refused with a typed error, and fails on anything
 * else: an untyped exception (TypeError, RangeError, a plain Error), ERR_INTERNAL (the code
 * admitting its own bug), or, judged by the parent process, a crash or a hang.
 */
import { AtomaError } from '../../lib/engine/errors.js';
import { Rng } from './prng.js';
import { mutateBytes } from './mutate-bytes.js';

export interface FuzzTarget {
  name: string;
  /** Valid inputs, built with the project's writers; each must run to success. */
  seeds(): Promise<Uint8Array[]>;
  /** A format-aware mutation, or null to fall back to byte mutations. */
  mutate?(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]): Uint8Array | null;
  /** How often a mutation is format-aware rather than byte-level (default 0.65; JSON targets more:
   *  most byte edits of JSON only reach the JSON parser). */
  structuredShare?: number;
  /** Tokens worth inserting (magic numbers, JSON syntax). */
  dictionary?: readonly Uint8Array[];
  /** Runs one input; returns on success, throws on refusal. */
  run(input: Uint8Array): unknown;
  /** The typed code of a refusal this target promises, or null when `e` is not one. */
  typedCode?(e: unknown): string | null;
}

export type CaseOutcome =
  | { kind: 'ok' }
  | { kind: 'typed'; code: string }
  | { kind: 'untyped'; error: string };

/** Largest input a format-aware mutation may make. */
export const MAX_INPUT = 16 << 20;

/** AtomaError with a code other than ERR_INTERNAL. */
export function atomaCode(e: unknown): string | null {
  return e instanceof AtomaError && typeof e.code === 'string' && e.code !== 'ERR_INTERNAL' ? e.code : null;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}${(e as { code?: unknown }).code ? ` [${String((e as { code?: unknown }).code)}]` : ''}: ${e.message}\n${e.stack ?? ''}`;
  return `non-Error thrown: ${String(e)}`;
}

/** Runs one input and judges how it ended (crashes and hangs are judged by the parent). */
export async function judge(target: FuzzTarget, input: Uint8Array): Promise<CaseOutcome> {
  try {
    await target.run(input);
    return { kind: 'ok' };
  } catch (e) {
    const code = (target.typedCode ?? atomaCode)(e);
    return code !== null ? { kind: 'typed', code } : { kind: 'untyped', error: describe(e) };
  }
}

/**
 * The input of case `index`: the first cases are the seeds as built (so the success path runs),
 * the rest a seed mutated one to four times, each time format-aware or byte-level.
 */
export function caseInput(target: FuzzTarget, seeds: readonly Uint8Array[], seed: string, index: number): Uint8Array {
  if (index < seeds.length) return seeds[index];
  const rng = Rng.forCase(seed, target.name, index);
  let out = rng.pick(seeds);
  for (let n = rng.count(4); n > 0; n--) {
    let structured: Uint8Array | null = null;
    try {
      structured = target.mutate && rng.chance(target.structuredShare ?? 0.65) ? target.mutate(out, rng, seeds) : null;
    } catch {
      // A mutator's own limit (a document too deep to serialise): mutate the bytes instead.
    }
    // A format-aware rewrite may grow a file without bound (a GGUF aligned to 2^31 is 2 GiB of
    // padding): such inputs test the disk, not the parser.
    out = structured !== null && structured.length <= MAX_INPUT ? structured : mutateBytes(out, rng, seeds, target.dictionary);
  }
  return out;
}

/**
 * Runs independent stages of one input (parse, then each consumer), so one typed refusal does
 * not hide the others' bugs: an untyped error is thrown at once, typed refusals after all ran.
 */
export async function runStages(stages: (() => unknown)[], typedCode: (e: unknown) => string | null = atomaCode): Promise<void> {
  let refusal: unknown = null;
  for (const stage of stages) {
    try {
      await stage();
    } catch (e) {
      if (typedCode(e) === null) throw e;
      refusal ??= e;
    }
  }
  if (refusal !== null) throw refusal;
}
