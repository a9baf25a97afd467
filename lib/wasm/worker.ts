/**
 * The worker entry: one guest call per worker thread. It instantiates the instrumented module
 * with the WASI subset, sets the fuel, runs `_start` and posts back the outputs, the fuel left
 * and a typed error. A confidential call decrypts its input and encrypts its output here, so
 * the plaintext never exists on the node's main thread.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { ProcExit, OutputLimit, Wasi } from './wasi.js';
import { FUEL_EXPORT, FLAGS_EXPORT, START_EXPORT, FLAG_CALL_DEPTH, FLAG_GROW_FAILED, FLAG_TABLE_GROW_FAILED } from './instrument.js';
import { MAX_TABLE_ENTRIES } from './policy.js';

export interface WorkerInput {
  module: WebAssembly.Module;
  hasStart: boolean;
  stdin: Uint8Array;
  fuel: bigint;
  seed: bigint;
  timestampNs: bigint;
  maxOutputBytes: number;
  /** A confidential call: the sealed request and the node's private key (PKCS#8 DER). */
  sealed?: { request: unknown; privateKeyDer: Uint8Array };
}

export interface WorkerOutput {
  exitCode: number | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
  fuelLeft: bigint;
  error: { code: string; message: string } | null;
  timeMs: number;
  /** A confidential call: the sealed response (stdout, stderr and outcome, encrypted to the client). */
  sealedResponse?: unknown;
  requestId?: string;
}

class OutOfFuel {}

async function main(input: WorkerInput): Promise<WorkerOutput> {
  let stdin = input.stdin;
  let requestId: string | undefined;
  let sealing: typeof import('../crypto/seal.js') | undefined;
  if (input.sealed) {
    sealing = await import('../crypto/seal.js');
    try {
      const opened = sealing.openRequest(input.sealed.request as import('../crypto/seal.js').SealedMessage, input.sealed.privateKeyDer);
      stdin = opened.plaintext;
      requestId = opened.requestId;
    } catch (e) {
      const err = e as { code?: string; message: string };
      return { exitCode: null, stdout: new Uint8Array(0), stderr: new Uint8Array(0), fuelLeft: input.fuel, error: { code: err.code ?? 'ERR_SEAL_AUTH', message: err.message }, timeMs: 0 };
    }
  }
  let fuelGlobal: WebAssembly.Global | undefined;
  const wasi = new Wasi({
    stdin,
    seed: input.seed,
    timestampNs: input.timestampNs,
    maxOutputBytes: input.maxOutputBytes,
    charge: (n) => {
      if (n === 0 || !fuelGlobal) return;
      const left = (fuelGlobal.value as bigint) - BigInt(n);
      fuelGlobal.value = left;
      if (left < 0n) throw new OutOfFuel();
    },
  });
  let exitCode: number | null = null;
  let error: WorkerOutput['error'] = null;
  let flags: WebAssembly.Global | undefined;
  const t0 = performance.now();
  try {
    const instance = new WebAssembly.Instance(input.module, { wasi_snapshot_preview1: wasi.imports() as unknown as WebAssembly.ModuleImports });
    const ex = instance.exports;
    fuelGlobal = ex[FUEL_EXPORT] as WebAssembly.Global;
    flags = ex[FLAGS_EXPORT] as WebAssembly.Global;
    fuelGlobal.value = input.fuel;
    if (ex.memory instanceof WebAssembly.Memory) wasi.memory = ex.memory;
    if (typeof ex._start !== 'function') {
      error = { code: 'ERR_WASM_INVALID', message: 'invalid module: a command module must export a function _start' };
    } else {
      if (input.hasStart) (ex[START_EXPORT] as () => void)();
      (ex._start as () => void)();
      exitCode = 0;
    }
  } catch (e) {
    if (e instanceof ProcExit) exitCode = e.code;
    else error = classify(e, fuelGlobal, flags);
  }
  const timeMs = performance.now() - t0;
  const fuelLeft = fuelGlobal ? (fuelGlobal.value as bigint) : input.fuel;
  const out: WorkerOutput = { exitCode, stdout: wasi.stdout.bytes(), stderr: wasi.stderr.bytes(), fuelLeft, error, timeMs };
  if (sealing && input.sealed) {
    out.sealedResponse = sealing.sealResponse(encodeOutcome(out, input.fuel), input.sealed.request as import('../crypto/seal.js').SealedMessage, input.sealed.privateKeyDer);
    out.requestId = requestId;
    out.stdout = new Uint8Array(0);
    out.stderr = new Uint8Array(0);
  }
  return out;
}

/** The plaintext of a confidential response: a JSON outcome with stdout and stderr in base64. */
function encodeOutcome(o: WorkerOutput, fuel: bigint): Uint8Array {
  const used = fuel - (o.fuelLeft < 0n ? 0n : o.fuelLeft);
  return Buffer.from(JSON.stringify({
    exitCode: o.exitCode,
    fuelUsed: String(used),
    stdout: Buffer.from(o.stdout).toString('base64'),
    stderr: Buffer.from(o.stderr).toString('base64'),
    error: o.error,
  }));
}

function classify(e: unknown, fuel: WebAssembly.Global | undefined, flags: WebAssembly.Global | undefined): { code: string; message: string } {
  const f = flags ? (flags.value as number) : 0;
  if (e instanceof OutOfFuel || (fuel && (fuel.value as bigint) < 0n)) return { code: 'ERR_WASM_OUT_OF_FUEL', message: 'out of fuel: the guest used its whole fuel budget' };
  if (e instanceof OutputLimit) return { code: 'ERR_WASM_OUTPUT_LIMIT', message: `output limit: the guest wrote more than ${e.limit} bytes to stdout or stderr` };
  if (e instanceof WebAssembly.RuntimeError) {
    if (f & FLAG_CALL_DEPTH) return { code: 'ERR_WASM_STACK_OVERFLOW', message: 'stack overflow: the guest passed the call depth limit' };
    if (f & FLAG_GROW_FAILED) return { code: 'ERR_WASM_OUT_OF_MEMORY', message: `out of memory: memory.grow failed at the memory cap, then the guest trapped (${e.message})` };
    if (f & FLAG_TABLE_GROW_FAILED) return { code: 'ERR_WASM_OUT_OF_MEMORY', message: `out of memory: table.grow failed at the cap of ${MAX_TABLE_ENTRIES} table entries, then the guest trapped (${e.message})` };
    return { code: 'ERR_WASM_TRAP', message: `trap: ${e.message}` };
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) return { code: 'ERR_WASM_STACK_OVERFLOW', message: `stack overflow: ${e.message}` };
  if (e instanceof WebAssembly.LinkError || e instanceof WebAssembly.CompileError) return { code: 'ERR_WASM_INVALID', message: `invalid module: ${e.message}` };
  return { code: 'ERR_WASM_WORKER', message: `worker failure: ${(e as Error)?.message ?? String(e)}` };
}

// The input arrives as the worker's first message, not as workerData: the runner starts a spare
// worker ahead of time (so the thread start is off the call's path) and hands it a call later.
// Each worker still runs exactly one call and is then terminated.
if (parentPort) {
  const port = parentPort;
  port.once('message', (input: WorkerInput) => {
    main(input).then(
      (out) => port.postMessage(out, [out.stdout.buffer as ArrayBuffer, out.stderr.buffer as ArrayBuffer].filter((b) => b.byteLength > 0)),
      (e) => port.postMessage({ exitCode: null, stdout: new Uint8Array(0), stderr: new Uint8Array(0), fuelLeft: input.fuel, timeMs: 0, error: { code: 'ERR_WASM_WORKER', message: String((e as Error)?.message ?? e) } } satisfies WorkerOutput),
    );
  });
}
