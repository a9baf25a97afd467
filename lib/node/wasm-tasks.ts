/**
 * The WASM side of a node on a ledger: runs assignments of `wasm` tasks (wasm-assignment.ts) on
 * the node's configured modules, each call in the sandbox's own worker thread (lib/wasm, as
 * POST /v1/functions does), so the node's main thread never runs guest code. What it returns is
 * what the node commits to:
 *
 *   success      -> outputDigest = BLAKE3(stdout) (the runner's outputDigest, as `atoma wasm run`),
 *                   one trace leaf = BLAKE3(0x00 || resultDigest), traceRoot = that leaf.
 *                   resultDigest covers module, output, fuel used and exit code (docs/wasm.md),
 *                   so a dispute over a WASM result is one leaf: it goes straight to the
 *                   referee's re-execution of that leaf (the whole call).
 *   guest error  -> RefusalError (trap, out of fuel, ...; refusal.ts) for the codes that are
 *                   fixed by module and assignment; the wall-clock guard, a dead worker or the
 *                   worker's heap limit are this node's faults (plain AtomaError, not committed).
 */
import { AtomaError, fail } from '../engine/errors.js';
import { merkleLeaf } from '../engine/hash.js';
import { WasmFunction, type WasmResult } from '../wasm/runner.js';
import type { WireExecution } from './engine.js';
import { QueueFullError } from './queue.js';
import { isRefusalCode, RefusalError, type RefusalCode } from './refusal.js';
import type { WasmAssignment } from './wasm-assignment.js';

/** One module the node runs, with the node's limits for it. */
export interface WasmModuleConfig {
  /** The module bytes (verified against the digest by the content cache). */
  bytes: Uint8Array;
  /** Largest fuel budget an assignment may ask for (node.toml [[functions]] fuel). */
  maxFuel: number;
  /** Largest memory cap an assignment may ask for (node.toml [[functions]] memory_mb). */
  maxMemoryMb: number;
}

/** The guest errors that depend on more than module and assignment (messages from lib/wasm/runner.ts and worker.ts). */
function nodeLocal(r: WasmResult): boolean {
  const e = r.error!;
  if (e.code === 'ERR_WASM_OUT_OF_MEMORY') return !/(memory|table)\.grow failed/.test(e.message);   // the worker's JS heap limit
  if (e.code === 'ERR_WASM_STACK_OVERFLOW') return !e.message.includes('call depth limit');   // V8's own stack limit
  return !isRefusalCode(e.code);
}

/** The execution a WASM result commits to (one leaf over its resultDigest). */
export function wasmExecution(r: WasmResult): WireExecution {
  const leaf = merkleLeaf(Buffer.from(r.resultDigest, 'hex'));
  return { tokens: [], outputDigest: r.outputDigest, traceRoot: leaf.toString('hex'), leaves: leaf };
}

/**
 * @example
 * const wasm = new WasmTasks(new Map([[digest, { bytes, maxFuel: 1e9, maxMemoryMb: 64 }]]), 8);
 * const x = await wasm.execute(digest, decodeWasmAssignment(bytes, inputDigest));
 */
export class WasmTasks {
  /** Compiled modules by (digest, memory cap): the cap is part of the instrumented module. */
  private readonly loaded = new Map<string, Promise<WasmFunction>>();
  private running = 0;

  constructor(private readonly modules: ReadonlyMap<string, WasmModuleConfig>, private readonly capacity: number) {}

  has(digest: string): boolean {
    return this.modules.has(digest);
  }

  /** Seeds the cache with a module the node already compiled (the HTTP function, default memory cap). */
  preload(digest: string, fn: WasmFunction): void {
    this.loaded.set(`${digest}/${fn.memoryMb}`, Promise.resolve(fn));
  }

  private load(digest: string, memoryMb: number): Promise<WasmFunction> {
    const key = `${digest}/${memoryMb}`;
    let p = this.loaded.get(key);
    if (!p) {
      p = WasmFunction.load(this.modules.get(digest)!.bytes, { memoryMb });
      p.catch(() => this.loaded.delete(key));
      this.loaded.set(key, p);
    }
    return p;
  }

  /**
   * Runs one assignment. Throws QueueFullError when `capacity` calls are running (the caller
   * waits), RefusalError for a deterministic guest error, AtomaError for a node-local fault or an
   * assignment beyond this node's limits (ERR_TOO_LARGE: another node may take it; not a refusal).
   */
  async execute(digest: string, a: WasmAssignment): Promise<WireExecution> {
    const m = this.modules.get(digest);
    if (!m) fail('ERR_NOT_FOUND', `this node has no WASM module ${digest}`);
    if (a.fuel > m.maxFuel) fail('ERR_TOO_LARGE', `the assignment asks for ${a.fuel} fuel; this node allows ${m.maxFuel}`);
    if (a.memoryMb > m.maxMemoryMb) fail('ERR_TOO_LARGE', `the assignment asks for ${a.memoryMb} MiB; this node allows ${m.maxMemoryMb}`);
    if (this.running >= this.capacity) throw new QueueFullError(1);
    this.running++;
    try {
      let fn: WasmFunction;
      try {
        fn = await this.load(digest, a.memoryMb);
      } catch (e) {
        // The module was verified at start; a load failure here is the memory cap (initial memory above it).
        if (e instanceof AtomaError && e.code === 'ERR_WASM_OUT_OF_MEMORY') throw new RefusalError(e.message, e.code);
        throw e;
      }
      const r = await fn.run(Buffer.from(a.input, 'base64'), { fuel: BigInt(a.fuel), seed: BigInt(a.seed), timestampNs: BigInt(a.timestampNs) });
      if (r.error) {
        if (nodeLocal(r)) throw new AtomaError(r.error.message, r.error.code);
        throw new RefusalError(r.error.message, r.error.code as RefusalCode);
      }
      return wasmExecution(r);
    } finally {
      this.running--;
    }
  }
}
