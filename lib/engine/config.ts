/** What the engine runs on, and the knobs that change speed (never results). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from './errors.js';
import { native, packageRoot } from './native.js';

export type Isa = 'scalar' | 'avx2' | 'avx512';

export interface EngineInfo {
  version: string;
  isa: Isa;
  isas: Isa[];
  threads: number;
  cuda: { built: boolean; available: boolean };
  /** Version of the canonical arithmetic; a change is a protocol version bump. */
  canonicalArithmetic: number;
}

export const CANONICAL_ARITHMETIC_VERSION = 1;

let version: string | undefined;
function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

/** @example console.log(info().isa) // 'avx512' */
export function info(): EngineInfo {
  const n = native.info();
  return {
    version: packageVersion(),
    isa: n.isa as Isa,
    isas: n.isas as Isa[],
    threads: n.threads,
    cuda: { built: n.cudaBuilt, available: false },
    canonicalArithmetic: CANONICAL_ARITHMETIC_VERSION,
  };
}

/**
 * Chooses the CPU path and the thread count for this process (ATOMA_ISA and ATOMA_THREADS set
 * the defaults). Results are the same bytes whatever is chosen.
 *
 * @example configure({ isa: 'scalar', threads: 1 })
 */
export function configure(opts: { isa?: Isa; threads?: number }): void {
  if (opts.isa !== undefined) native.setIsa(opts.isa);
  if (opts.threads !== undefined) {
    if (!Number.isInteger(opts.threads)) fail('ERR_BAD_THREADS', 'threads must be an integer in 1..1024');
    native.setThreads(opts.threads);
  }
}

/** Parallel memcpy bandwidth in GB/s (bytes read + written), the yardstick of memory-bound kernels. */
export function copyBandwidth(mib = 256): number {
  return native.copyBandwidth(mib);
}
