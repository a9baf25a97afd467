/**
 * The runner API: load a guest module once (validate, refuse forbidden imports, instrument,
 * compile), then run it any number of times, each call in its own worker thread with resource
 * limits and a wall-clock guard. Guest failures come back as typed error codes in the result,
 * never as a crash of the node: the network must agree on failures as well as on outputs.
 */
import type { ResourceLimits } from 'node:worker_threads';
import { AtomaError, fail } from '../engine/errors.js';
import { timerMs } from '../engine/timers.js';
import { blake3 } from '../engine/hash.js';
import { MAX_TABLE_ENTRIES, validateModule } from './policy.js';
import { instrument } from './instrument.js';
import { prestartWorker, takeWorker } from './spare.js';
import type { WorkerInput, WorkerOutput } from './worker.js';
import { compiledEntry } from '../engine/compiled-entry.js';

export interface WasmLoadOptions {
  /** Memory cap in MiB (default 64, at most 4096). */
  memoryMb?: number;
}

export interface WasmRunOptions {
  /** Fuel budget (default 1e9, about one instruction per unit; docs/wasm.md). */
  fuel?: bigint | number;
  /** The request seed: keys random_get's Philox stream (default 0). */
  seed?: bigint | number;
  /** The request timestamp in nanoseconds since the epoch, returned by every clock (default 0). */
  timestampNs?: bigint | number;
  /** Wall-clock guard in milliseconds (default 10000): a second line behind fuel. */
  timeoutMs?: number;
  /** Bytes allowed on stdout and on stderr, each (default 16 MiB). */
  maxOutputBytes?: number;
}

/** A typed error code of a guest call. */
export type WasmErrorCode =
  | 'ERR_WASM_INVALID' | 'ERR_WASM_FORBIDDEN_IMPORT' | 'ERR_WASM_TRAP' | 'ERR_WASM_OUT_OF_FUEL' | 'ERR_WASM_OUT_OF_MEMORY'
  | 'ERR_WASM_STACK_OVERFLOW' | 'ERR_WASM_TIMEOUT' | 'ERR_WASM_OUTPUT_LIMIT' | 'ERR_WASM_WORKER'
  | 'ERR_SEAL_AUTH' | 'ERR_SEAL_FORMAT' | 'ERR_KEY_UNKNOWN' | 'ERR_KEY_EXPIRED' | 'ERR_SEAL_REPLAY';

export interface WasmResult {
  /** BLAKE3 (32 bytes, hex) of the stdout bytes: check it with `atoma hash` or b3sum. */
  outputDigest: string;
  /** Fuel the call used (the budget when it ran out). */
  fuelUsed: bigint;
  /** The guest's exit status (0 when _start returns), null when it did not exit. */
  exitCode: number | null;
  stdout: Uint8Array;
  /** The guest's log; not part of any digest. */
  stderr: Uint8Array;
  error: { code: WasmErrorCode; message: string } | null;
  /** What sampled nodes commit to: BLAKE3 of module, output digest, fuel, exit code and error code. */
  resultDigest: string;
  /** Milliseconds the guest ran inside its worker (a measurement, not part of the result). */
  timeMs: number;
}

export const DEFAULT_FUEL = 1_000_000_000n;
export const DEFAULT_MEMORY_MB = 64;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_OUTPUT = 16 << 20;

function workerPath(): string {
  return compiledEntry(import.meta.url, 'wasm/worker.js', 'the wasm worker');
}

/**
 * The worker's JS heap limits. The guest's linear memory and its outputs are ArrayBuffers, off
 * this heap (the memory is capped by instrumentation, the outputs by maxOutputBytes); what the
 * guest can put on the heap is its tables, capped at MAX_TABLE_ENTRIES (16 bytes an entry), so
 * the limit is the worker's own needs plus that. A single allocation past the limit would abort
 * the whole process rather than the worker: the table cap is what keeps every guest under it.
 */
function limitsFor(maxOutputBytes: number): ResourceLimits {
  const tablesMb = Math.ceil((16 * MAX_TABLE_ENTRIES) / (1 << 20));
  return { maxOldGenerationSizeMb: 64 + tablesMb + Math.ceil((2 * maxOutputBytes) / (1 << 20)), maxYoungGenerationSizeMb: 16, stackSizeMb: 8 };
}

function toBigInt(v: bigint | number | undefined, fallback: bigint, name: string, max = (1n << 64n) - 1n): bigint {
  if (v === undefined) return fallback;
  if (typeof v === 'number' && !Number.isSafeInteger(v)) fail('ERR_ARGUMENT', `${name} must be an integer`);
  const b = BigInt(v);
  if (b < 0n || b > max) fail('ERR_RANGE', `${name} must be in [0, ${max}]`);
  return b;
}

/**
 * BLAKE3 of the canonical line a node commits to for one call. The version names the fuel rules
 * too (docs/wasm.md): v2 charges host calls a floor and per iovec, and table.grow per entry, so a
 * v1 node and a v2 node count different fuel for the same call and must not be compared.
 */
export function resultDigestOf(moduleDigest: string, outputDigest: string, fuelUsed: bigint, exitCode: number | null, errorCode: string | null): string {
  return blake3(`atoma-wasm-result/v2\n${moduleDigest}\n${outputDigest}\n${fuelUsed}\n${exitCode ?? ''}\n${errorCode ?? ''}\n`).toString('hex');
}

/**
 * A validated, instrumented and compiled guest module.
 *
 * @example
 * const fn = await WasmFunction.load(bytes, { memoryMb: 32 });
 * const r = await fn.run(Buffer.from('{"a": 1}'), { fuel: 1e8, seed: 7n });
 * if (r.error) console.error(r.error.code); else process.stdout.write(r.stdout);
 */
export class WasmFunction {
  private constructor(
    /** BLAKE3 hex of the module bytes as given. */
    readonly moduleDigest: string,
    private readonly module: WebAssembly.Module,
    private readonly hasStart: boolean,
    readonly memoryMb: number,
  ) {}

  /** Throws AtomaError ERR_WASM_INVALID, ERR_WASM_FORBIDDEN_IMPORT or ERR_WASM_OUT_OF_MEMORY. */
  static async load(bytes: Uint8Array, opts: WasmLoadOptions = {}): Promise<WasmFunction> {
    const memoryMb = opts.memoryMb ?? DEFAULT_MEMORY_MB;
    if (!Number.isInteger(memoryMb) || memoryMb < 1 || memoryMb > 4096) fail('ERR_RANGE', 'memoryMb must be an integer in [1, 4096]');
    // The first call's worker starts while this thread validates, rewrites and compiles
    // (best effort: a missing worker build is reported by the call itself).
    try {
      prestartWorker(workerPath(), limitsFor(DEFAULT_MAX_OUTPUT));
    } catch {
      /* reported at run */
    }
    validateModule(bytes);
    const inst = instrument(bytes, { memoryMb });
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(inst.bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      fail('ERR_INTERNAL', `the instrumented module does not compile (a bug in atoma): ${(e as Error).message}`);
    }
    return new WasmFunction(blake3(bytes).toString('hex'), module, inst.hasStart, memoryMb);
  }

  /** Runs the guest once on `input` (its stdin) in a fresh worker thread. Never throws for guest faults. */
  run(input: Uint8Array = new Uint8Array(0), opts: WasmRunOptions = {}): Promise<WasmResult> {
    return this.call(input, opts).then((o) => this.result(o, toBigInt(opts.fuel, DEFAULT_FUEL, 'fuel', (1n << 63n) - 1n)));
  }

  /** The worker call shared by plain and confidential runs. */
  call(input: Uint8Array, opts: WasmRunOptions, sealed?: WorkerInput['sealed']): Promise<WorkerOutput> {
    if (!(input instanceof Uint8Array)) fail('ERR_TYPE', 'input must be bytes (Uint8Array or Buffer)');
    const fuel = toBigInt(opts.fuel, DEFAULT_FUEL, 'fuel', (1n << 63n) - 1n);
    const timeoutMs = timerMs(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    const data: WorkerInput = {
      module: this.module,
      hasStart: this.hasStart,
      stdin: input,
      fuel,
      seed: toBigInt(opts.seed, 0n, 'seed'),
      timestampNs: toBigInt(opts.timestampNs, 0n, 'timestampNs'),
      maxOutputBytes: opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT,
      sealed,
    };
    const failed = (code: WasmErrorCode, message: string): WorkerOutput => ({
      exitCode: null, stdout: new Uint8Array(0), stderr: new Uint8Array(0), fuelLeft: 0n, error: { code, message }, timeMs: 0,
    });
    return new Promise<WorkerOutput>((resolve) => {
      let settled = false;
      const settle = (o: WorkerOutput) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        resolve(o);
      };
      const worker = takeWorker(workerPath(), limitsFor(data.maxOutputBytes));
      worker.postMessage(data);
      const timer = setTimeout(() => settle(failed('ERR_WASM_TIMEOUT', `timeout: the guest ran past the ${timeoutMs} ms wall-clock limit`)), timeoutMs);
      worker.once('message', (o: WorkerOutput) => settle(o));
      worker.once('error', (e: Error & { code?: string }) => {
        if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') settle(failed('ERR_WASM_OUT_OF_MEMORY', `out of memory: the worker passed its heap limit (${e.message})`));
        else settle(failed('ERR_WASM_WORKER', `worker failure: ${e.message}`));
      });
      worker.once('exit', (code) => settle(failed('ERR_WASM_WORKER', `worker failure: the worker exited (${code}) without a result`)));
    });
  }

  private result(o: WorkerOutput, fuel: bigint): WasmResult {
    const outOfFuel = o.error?.code === 'ERR_WASM_OUT_OF_FUEL' || o.error?.code === 'ERR_WASM_TIMEOUT';
    const fuelUsed = outOfFuel || o.fuelLeft < 0n ? fuel : fuel - o.fuelLeft;
    const outputDigest = blake3(o.stdout).toString('hex');
    const error = o.error as WasmResult['error'];
    return {
      outputDigest, fuelUsed, exitCode: o.exitCode, stdout: o.stdout, stderr: o.stderr, error,
      resultDigest: resultDigestOf(this.moduleDigest, outputDigest, fuelUsed, o.exitCode, error?.code ?? null),
      timeMs: o.timeMs,
    };
  }
}

/**
 * Loads and runs a module in one step. Load failures (invalid module, forbidden import, initial
 * memory over the cap) come back in `error` like run-time faults.
 *
 * @example
 * const r = await runWasm(readFileSync('f.wasm'), Buffer.from('input'), { fuel: 1e8 });
 * console.log(r.outputDigest, r.fuelUsed, r.error?.code);
 */
export async function runWasm(bytes: Uint8Array, input?: Uint8Array, opts: WasmRunOptions & WasmLoadOptions = {}): Promise<WasmResult> {
  let fn: WasmFunction;
  try {
    fn = await WasmFunction.load(bytes, opts);
  } catch (e) {
    if (!(e instanceof AtomaError) || !e.code.startsWith('ERR_WASM_')) throw e;
    const moduleDigest = bytes instanceof Uint8Array ? blake3(bytes).toString('hex') : '';
    const outputDigest = blake3(new Uint8Array(0)).toString('hex');
    return {
      outputDigest, fuelUsed: 0n, exitCode: null, stdout: new Uint8Array(0), stderr: new Uint8Array(0),
      error: { code: e.code as WasmErrorCode, message: e.message },
      resultDigest: resultDigestOf(moduleDigest, outputDigest, 0n, null, e.code), timeMs: 0,
    };
  }
  return fn.run(input, opts);
}
