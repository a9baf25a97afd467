/**
 * What a guest module may be: a WASI preview 1 command whose only imports are the deterministic
 * subset below, with no feature whose results could differ between nodes. Everything else is
 * refused at load time with a typed error naming the import or feature.
 */
import { fail } from '../engine/errors.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';

/**
 * Entries of all tables together, and of all element segments together (docs/wasm.md, "Tables"):
 * 16 bytes an entry on the worker's V8 heap, where an allocation past the limit aborts the process.
 */
export const MAX_TABLE_ENTRIES = 1 << 20;

const I32 = 0x7f;
const I64 = 0x7e;

/** The imports a guest may use, with their exact signatures (params, results). */
export const ALLOWED_IMPORTS: Readonly<Record<string, readonly [readonly number[], readonly number[]]>> = {
  fd_read: [[I32, I32, I32, I32], [I32]],
  fd_write: [[I32, I32, I32, I32], [I32]],
  proc_exit: [[I32], []],
  args_sizes_get: [[I32, I32], [I32]],
  args_get: [[I32, I32], [I32]],
  environ_sizes_get: [[I32, I32], [I32]],
  environ_get: [[I32, I32], [I32]],
  clock_time_get: [[I32, I64, I32], [I32]],
  random_get: [[I32, I32], [I32]],
};

const VALTYPE_NAMES: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x70: 'funcref', 0x6f: 'externref' };

/** Value types a guest may use: numbers and plain references. v128 (SIMD) is refused. */
export function checkValtype(t: number, where: string): void {
  if (t in VALTYPE_NAMES) return;
  if (t === 0x7b) fail('ERR_WASM_INVALID', `unsupported feature in ${where}: SIMD (v128) is refused because float lane results are not canonical`);
  fail('ERR_WASM_INVALID', `unsupported value type 0x${t.toString(16)} in ${where} (GC and other proposals are refused)`);
}

export function isValtype(t: number): boolean {
  return t in VALTYPE_NAMES;
}

const KIND_NAMES = ['function', 'table', 'memory', 'global', 'tag'];

/** Refuses any import but the allowed WASI functions with their exact signatures. */
export function checkImport(module: string, field: string, kind: number, type?: { params: number[]; results: number[] }): void {
  const what = `${module}.${field}`;
  if (module !== WASI_MODULE) fail('ERR_WASM_FORBIDDEN_IMPORT', `forbidden import ${what}: only ${WASI_MODULE} functions are provided (no disk, no network)`);
  if (kind !== 0) fail('ERR_WASM_FORBIDDEN_IMPORT', `forbidden import ${what}: a ${KIND_NAMES[kind] ?? 'kind ' + kind} import (only functions are provided; the module must define its own memory)`);
  const sig = ALLOWED_IMPORTS[field];
  if (!sig) fail('ERR_WASM_FORBIDDEN_IMPORT', `forbidden import ${what}: not in the provided subset (${Object.keys(ALLOWED_IMPORTS).join(', ')})`);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!type || !same(type.params, sig[0]) || !same(type.results, sig[1])) {
    const show = (ts: readonly number[]) => ts.map((t) => VALTYPE_NAMES[t] ?? '?').join(', ');
    fail('ERR_WASM_FORBIDDEN_IMPORT', `import ${what} has the wrong signature: expected (${show(sig[0])}) -> (${show(sig[1])})`);
  }
}

/** The refusal for an opcode outside the deterministic feature set. */
export function refuseOpcode(op: number, sub?: number): never {
  if (op === 0xfd) fail('ERR_WASM_INVALID', 'unsupported feature: SIMD instructions are refused (float lane results are not canonical)');
  if (op === 0xfe) fail('ERR_WASM_INVALID', 'unsupported feature: threads and atomics are refused (a guest runs single-threaded)');
  if (op >= 0x06 && op <= 0x0a || op === 0x18 || op === 0x19 || op === 0x1f) fail('ERR_WASM_INVALID', 'unsupported feature: exception handling is refused');
  if (op === 0x12 || op === 0x13 || op === 0x15) fail('ERR_WASM_INVALID', 'unsupported feature: tail calls are refused');
  const name = sub === undefined ? `0x${op.toString(16)}` : `0x${op.toString(16)} ${sub}`;
  fail('ERR_WASM_INVALID', `unsupported or unknown instruction ${name}`);
}

/** Checks the header and that V8 accepts the module at all, before any rewriting. */
export function validateModule(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) fail('ERR_TYPE', 'a wasm module must be bytes (Uint8Array or Buffer)');
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    fail('ERR_WASM_INVALID', 'invalid module: not a WebAssembly binary (no \\0asm magic)');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    fail('ERR_WASM_INVALID', 'invalid module: only core WebAssembly version 1 is accepted (components are not)');
  }
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    let why = 'validation failed';
    try {
      new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      why = (e as Error).message;
    }
    fail('ERR_WASM_INVALID', `invalid module: ${why}`);
  }
}
