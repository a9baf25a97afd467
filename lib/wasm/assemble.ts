/**
 * WAT to wasm with the `wabt` package, so examples and tests are built from source at run time
 * and no binary is committed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fail } from '../engine/errors.js';
import { packageRoot } from '../engine/native.js';

/** The example guests in examples/ (name -> file). */
export const WASM_EXAMPLES = { hash: 'hash.wat', 'json-minify': 'json-minify.wat', model: 'model.wat' } as const;
export type WasmExample = keyof typeof WASM_EXAMPLES;

type Wabt = Awaited<ReturnType<typeof import('wabt')>>;
let wabt: Promise<Wabt> | undefined;

/**
 * Assembles WebAssembly text (bulk memory, sign extension, saturating conversions, multi-value
 * and reference types enabled; SIMD and threads not, as the runner refuses them).
 *
 * @example
 * const bytes = await assembleWat('(module (func (export "_start")))');
 */
export async function assembleWat(text: string, filename = 'module.wat'): Promise<Uint8Array> {
  wabt ??= (createRequire(import.meta.url)('wabt') as typeof import('wabt'))();
  const w = await wabt;
  let mod;
  try {
    mod = w.parseWat(filename, text, { bulk_memory: true, sign_extension: true, sat_float_to_int: true, multi_value: true, reference_types: true, mutable_globals: true });
  } catch (e) {
    fail('ERR_WASM_INVALID', `cannot assemble ${filename}: ${(e as Error).message}`);
  }
  try {
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** Assembles one of the examples in examples/. */
export async function exampleWasm(name: WasmExample): Promise<Uint8Array> {
  const file = WASM_EXAMPLES[name];
  if (!file) fail('ERR_ARGUMENT', `unknown example '${name}' (${Object.keys(WASM_EXAMPLES).join(', ')})`);
  return assembleWat(readFileSync(join(packageRoot, 'examples', file), 'utf8'), file);
}
