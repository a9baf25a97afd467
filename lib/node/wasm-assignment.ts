/**
 * The input of a ledger task of kind `wasm` (docs/protocol.md, "Request inputs"): the canonical
 * JSON (keys sorted, no whitespace; as encodeAssignment for inference) of a WasmAssignment. The
 * assignment fixes everything the guest's result depends on -- stdin, the random_get seed, the
 * clock, the fuel budget and the memory cap -- so every sampled node and the referee compute the
 * same result from the bytes the client signed for. A node runs it only within its own limits
 * ([[functions]] fuel and memory_mb in node.toml).
 */
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { canonical } from '../protocol/ledger/store.js';

export interface WasmAssignment {
  /** The guest's stdin, base64 (standard alphabet, padded: one encoding per byte string). */
  input: string;
  /** Keys random_get's Philox stream (a safe integer). */
  seed: number;
  /** What every clock returns, ns since the epoch (a safe integer). */
  timestampNs: number;
  /** Fuel budget (about one instruction per unit; docs/wasm.md). */
  fuel: number;
  /** Linear memory cap in MiB (1 to 4096). */
  memoryMb: number;
}

/** Fills the defaults of the WASM runner (fuel 1e9, memory 64 MiB, seed and time 0) for a client. */
export function wasmAssignment(input: Uint8Array, o: Partial<Omit<WasmAssignment, 'input'>> = {}): WasmAssignment {
  return { input: Buffer.from(input).toString('base64'), seed: o.seed ?? 0, timestampNs: o.timestampNs ?? 0, fuel: o.fuel ?? 1_000_000_000, memoryMb: o.memoryMb ?? 64 };
}

/**
 * Canonical bytes of a WASM assignment and their BLAKE3 digest (the request event's `input`).
 *
 * @example
 * const { bytes, digest } = encodeWasmAssignment(wasmAssignment(Buffer.from('hello'), { fuel: 1e6 }));
 */
export function encodeWasmAssignment(a: WasmAssignment): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(canonical(checkWasmAssignment(a)), 'utf8');
  return { bytes, digest: blake3(bytes).toString('hex') };
}

/**
 * Verifies input bytes against the digest the ledger names and decodes them. ERR_DIGEST_MISMATCH
 * when they are not the named bytes (a ledger fault); ERR_EVENT when they are not a canonical
 * WasmAssignment (a refusal: every node decodes the same bytes the same way).
 */
export function decodeWasmAssignment(bytes: Uint8Array, digest: string): WasmAssignment {
  const got = blake3(bytes).toString('hex');
  if (got !== digest) fail('ERR_DIGEST_MISMATCH', `input bytes hash to ${got}, the request names ${digest}`);
  const text = Buffer.from(bytes).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    fail('ERR_EVENT', `input ${digest} is not JSON`);
  }
  const a = checkWasmAssignment(v);
  if (canonical(a) !== text) fail('ERR_EVENT', `input ${digest} is not in canonical form`);
  return a;
}

const int = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/** Checks the shape of a WasmAssignment (no unknown keys, canonical base64). */
export function checkWasmAssignment(v: unknown): WasmAssignment {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('ERR_EVENT', 'a WASM assignment must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['input', 'seed', 'timestampNs', 'fuel', 'memoryMb'].includes(k)) fail('ERR_EVENT', `WASM assignment: unknown key ${k}`);
  if (typeof o.input !== 'string' || Buffer.from(o.input, 'base64').toString('base64') !== o.input) fail('ERR_EVENT', 'WASM assignment.input must be canonical base64 (padded, standard alphabet)');
  if (!int(o.seed, 0, Number.MAX_SAFE_INTEGER)) fail('ERR_EVENT', 'WASM assignment.seed must be a safe integer >= 0');
  if (!int(o.timestampNs, 0, Number.MAX_SAFE_INTEGER)) fail('ERR_EVENT', 'WASM assignment.timestampNs must be a safe integer >= 0');
  if (!int(o.fuel, 1, Number.MAX_SAFE_INTEGER)) fail('ERR_EVENT', 'WASM assignment.fuel must be a safe integer >= 1');
  if (!int(o.memoryMb, 1, 4096)) fail('ERR_EVENT', 'WASM assignment.memoryMb must be an integer from 1 to 4096');
  return { input: o.input, seed: o.seed as number, timestampNs: o.timestampNs as number, fuel: o.fuel as number, memoryMb: o.memoryMb as number };
}
