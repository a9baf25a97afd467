/** What the engine runs on, and the knobs that change speed (never results). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from './errors.js';
import { native, packageRoot } from './native.js';

export type Isa = 'scalar' | 'avx2' | 'avx512';

/** Where the kernels run: the CPU engine, or the CUDA backend (a `npm run build:cuda` addon). */
export type Device = 'cpu' | 'cuda';

export interface EngineInfo {
  version: string;
  isa: Isa;
  isas: Isa[];
  threads: number;
  /** The device the kernels run on now (ATOMA_DEVICE, or configure({ device })). */
  device: Device;
  /** built: the addon has the CUDA backend; available: a usable GPU is present; device: its name. */
  cuda: { built: boolean; available: boolean; device: string | null };
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
    device: n.device as Device,
    cuda: { built: n.cudaBuilt, available: n.cudaAvailable, device: n.cudaDevice },
    canonicalArithmetic: CANONICAL_ARITHMETIC_VERSION,
  };
}

/**
 * Chooses the device, the CPU path and the thread count for this process (ATOMA_DEVICE,
 * ATOMA_ISA and ATOMA_THREADS set the defaults). Results are the same bytes whatever is chosen.
 * `device: 'cuda'` needs an addon built with `npm run build:cuda` and a GPU (else ERR_NO_CUDA);
 * an unknown device is ERR_UNKNOWN_DEVICE.
 *
 * @example configure({ isa: 'scalar', threads: 1 })
 * @example configure({ device: 'cuda' })
 */
export function configure(opts: { device?: Device; isa?: Isa; threads?: number }): void {
  if (opts.device !== undefined) {
    if (typeof opts.device !== 'string') fail('ERR_UNKNOWN_DEVICE', `unknown device ${String(opts.device)} (expected cpu or cuda)`);
    native.setDevice(opts.device);
  }
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
