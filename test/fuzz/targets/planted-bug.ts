/**
 * The fuzzer's self-test: a toy parser with three planted faults, which a campaign must report.
 * An input starting with 'T' throws a TypeError, 'A' aborts the process, 'H' never returns;
 * anything else is refused with a typed error or accepted. Seeds are short so that mutations
 * reach the first byte often.
 */
import { fail } from '../../../lib/engine/errors.js';
import type { FuzzTarget } from '../target.js';

const enc = new TextEncoder();

export function plantedBugTarget(): FuzzTarget {
  return {
    name: 'planted-bug',
    async seeds() {
      return ['ok:1', 'ok:22', 'ok:333'].map((s) => enc.encode(s));
    },
    dictionary: ['T', 'A', 'H'].map((s) => enc.encode(s)),
    run(input) {
      const first = String.fromCharCode(input[0] ?? 0);
      if (first === 'T') (null as unknown as { x: number }).x;   // TypeError, as a real parser bug throws
      if (first === 'A') process.abort();
      if (first === 'H') for (;;);
      if (first !== 'o') fail('ERR_ARGUMENT', 'planted-bug: not an ok: record');
    },
  };
}
