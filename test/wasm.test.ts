// The WebAssembly runner: typed errors for every failure, determinism of outputs and fuel,
// the WASI subset (stdin/stdout/stderr, clock, random), NaN canonicalisation and the CLI.
import { describe, it, expect, beforeAll } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomaError } from '../lib/index.js';
import { WasmFunction, runWasm, assembleWat, exampleWasm } from '../lib/index.js';
import { runCli } from './helpers.js';
import { WASI_IMPORTS } from './wasi-imports.js';

const WASI = `${WASI_IMPORTS}
  (memory (export "memory") 1)
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr)) (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))`;

const wat = (body: string) => assembleWat(`(module ${WASI} ${body})`);

async function run(body: string, input = '', opts: Parameters<typeof runWasm>[2] = {}) {
  return runWasm(await wat(body), Buffer.from(input), opts);
}

describe('typed errors, and the node keeps serving', () => {
  it('trap', async () => {
    const r = await run(`(func (export "_start") (drop (i32.div_u (i32.const 1) (i32.const 0))))`);
    expect(r.error?.code).toBe('ERR_WASM_TRAP');
    expect(r.error?.message).toMatch(/divide by zero/);
    expect(r.exitCode).toBeNull();
  });
  it('out of fuel, with the fuel used equal to the budget', async () => {
    const r = await run(`(func (export "_start") (loop $l (br $l)))`, '', { fuel: 100_000 });
    expect(r.error?.code).toBe('ERR_WASM_OUT_OF_FUEL');
    expect(r.fuelUsed).toBe(100_000n);
  });
  it('a guest that never stops hits the wall clock when fuel is ample', async () => {
    const r = await run(`(func (export "_start") (loop $l (br $l)))`, '', { fuel: 2n ** 62n, timeoutMs: 300 });
    expect(r.error?.code).toBe('ERR_WASM_TIMEOUT');
    expect(r.fuelUsed).toBe(2n ** 62n);
  });
  it('out of memory: growing past the cap', async () => {
    const r = await run(`(func (export "_start")
      (loop $g (br_if $g (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      unreachable)`, '', { memoryMb: 4 });
    expect(r.error?.code).toBe('ERR_WASM_OUT_OF_MEMORY');
  });
  it('out of memory: initial memory over the cap is refused at load', async () => {
    const bytes = await assembleWat(`(module (memory (export "memory") 200) (func (export "_start")))`);
    await expect(WasmFunction.load(bytes, { memoryMb: 4 })).rejects.toMatchObject({ code: 'ERR_WASM_OUT_OF_MEMORY' });
  });
  it('invalid module', async () => {
    const r = await runWasm(Buffer.from('\0asm\x01\0\0\0garbage'));
    expect(r.error?.code).toBe('ERR_WASM_INVALID');
    expect((await runWasm(Buffer.from('not wasm at all'))).error?.code).toBe('ERR_WASM_INVALID');
  });
  it('forbidden imports: another module, an unlisted WASI call, a wrong signature, an imported memory', async () => {
    const cases = [
      `(import "env" "socket" (func (param i32) (result i32)))`,
      `(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))`,
      `(import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))`,
      `(import "wasi_snapshot_preview1" "memory" (memory 1))`,
    ];
    for (const imp of cases) {
      const r = await runWasm(await assembleWat(`(module ${imp} (func (export "_start")))`));
      expect(r.error?.code, imp).toBe('ERR_WASM_FORBIDDEN_IMPORT');
    }
    await expect(WasmFunction.load(await assembleWat(`(module (import "env" "f" (func)))`))).rejects.toBeInstanceOf(AtomaError);
  });
  it('stack overflow at the deterministic call depth', async () => {
    const r = await run(`(func $f (call $f)) (func (export "_start") (call $f))`);
    expect(r.error?.code).toBe('ERR_WASM_STACK_OVERFLOW');
  });
  it('output limit', async () => {
    const r = await run(`(func (export "_start") (loop $l (call $write (i32.const 1) (i32.const 16) (i32.const 1000)) (br $l)))`, '', { maxOutputBytes: 10_000 });
    expect(r.error?.code).toBe('ERR_WASM_OUTPUT_LIMIT');
  });
  it('SIMD is refused', async () => {
    const bytes = await assembleWat(`(module (func (export "_start")))`);
    // (func (result v128) v128.const ...) assembled by hand: wabt here has SIMD off.
    const simd = Buffer.from('0061736d01000000' + '0105016000017b' + '03020100' + '0a16011400fd0c' + '00'.repeat(16) + '0b', 'hex');
    expect((await runWasm(simd)).error?.code).toBe('ERR_WASM_INVALID');
    expect((await runWasm(bytes)).error).toBeNull();
  });
  it('a missing _start is a typed error', async () => {
    const r = await runWasm(await assembleWat(`(module (func (export "main")))`));
    expect(r.error?.code).toBe('ERR_WASM_INVALID');
  });
});

describe('determinism', () => {
  let model: Uint8Array;
  const input = Buffer.alloc(260);
  beforeAll(async () => {
    model = await exampleWasm('model');
    input.writeUInt32LE(20, 0);
    for (let i = 0; i < 64; i++) input.writeFloatLE(Math.sin(i), 4 + 4 * i);
  });
  it('same output digest and fuel across runs, and across fresh workers and fresh loads', async () => {
    const fn = await WasmFunction.load(model);
    const rs = await Promise.all([fn.run(input, { seed: 3n }), fn.run(input, { seed: 3n }), runWasm(model, input, { seed: 3n })]);
    const again = await (await WasmFunction.load(model)).run(input, { seed: 3n });
    for (const r of [...rs, again]) {
      expect(r.error).toBeNull();
      expect(r.outputDigest).toBe(rs[0].outputDigest);
      expect(r.fuelUsed).toBe(rs[0].fuelUsed);
      expect(r.resultDigest).toBe(rs[0].resultDigest);
    }
    const other = await fn.run(input, { seed: 4n });
    expect(other.outputDigest).not.toBe(rs[0].outputDigest);
  });
  it('fuel counts executed instructions exactly: a loop of n iterations costs a*n + b', async () => {
    const body = (n: number) => `(func (export "_start") (local $i i32)
      (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const ${n})))))`;
    const f = await Promise.all([10, 20, 30].map(async (n) => (await run(body(n))).fuelUsed));
    expect(f[1] - f[0]).toBe(f[2] - f[1]);
    expect(f[1] - f[0]).toBe(80n); // 8 instructions per iteration (get, const, add, set, get, const, lt_u, br_if)
  });
  it('fuel is exactly enough, or one short', async () => {
    const fn = await WasmFunction.load(await wat(`(func (export "_start") (local $i i32)
      (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 100)))))`));
    const used = (await fn.run()).fuelUsed;
    expect((await fn.run(undefined, { fuel: used })).error).toBeNull();
    expect((await fn.run(undefined, { fuel: used - 1n })).error?.code).toBe('ERR_WASM_OUT_OF_FUEL');
  });
  it('fuel crosses calls exactly (the fuel local is handed to the callee and back)', async () => {
    // Loop body: get, call, set, get, const, lt_u, br_if = 7; the callee: get, const, add = 3.
    const body = (n: number) => `(func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "_start") (local $i i32)
        (loop $l (local.set $i (call $inc (local.get $i))) (br_if $l (i32.lt_u (local.get $i) (i32.const ${n})))))`;
    const f = await Promise.all([10, 20].map(async (n) => (await run(body(n))).fuelUsed));
    expect(f[1] - f[0]).toBe(100n);
    const fn = await WasmFunction.load(await wat(body(50)));
    const used = (await fn.run()).fuelUsed;
    expect((await fn.run(undefined, { fuel: used })).error).toBeNull();
    // One short: the last charge is the callee's segment or the loop's; either way out of fuel.
    const short = await fn.run(undefined, { fuel: used - 1n });
    expect(short.error?.code).toBe('ERR_WASM_OUT_OF_FUEL');
    expect(short.fuelUsed).toBe(used - 1n);
  });
  it('out of fuel in a bulk memory charge, and the same fuel on every run of a trap', async () => {
    const fill = await run(`(func (export "_start") (memory.fill (i32.const 0) (i32.const 0) (i32.const 65536)))`, '', { fuel: 500 });
    expect(fill.error?.code).toBe('ERR_WASM_OUT_OF_FUEL');
    const trap = `(func $f (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
      (func (export "_start") (local $i i32)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 30))))
        (drop (call $f (i32.const 0))))`;
    const fn = await WasmFunction.load(await wat(trap));
    const [a, b] = await Promise.all([fn.run(), fn.run()]);
    expect(a.error?.code).toBe('ERR_WASM_TRAP');
    expect(a.fuelUsed).toBe(b.fuelUsed);
    expect(a.resultDigest).toBe(b.resultDigest);
    expect(a.fuelUsed).toBeGreaterThan(240n); // the loop's 30 x 8 is counted (synced at the call)
  });
  it('NaN bits are canonical when stored or reinterpreted', async () => {
    // Builds NaNs with a payload and a sign, then stores and reinterprets them.
    const r = await run(`(func (export "_start")
      (f32.store (i32.const 64) (f32.neg (f32.div (f32.const 0) (f32.const 0))))
      (f32.store (i32.const 68) (f32.add (f32.reinterpret_i32 (i32.const 0x7fa00001)) (f32.const 1)))
      (i32.store (i32.const 72) (i32.reinterpret_f32 (f32.reinterpret_i32 (i32.const 0xffc12345))))
      (f64.store (i32.const 80) (f64.sqrt (f64.const -1)))
      (f32.store (i32.const 88) (f32.copysign (f32.const 1) (f32.reinterpret_i32 (i32.const 0xffc00000))))
      (call $write (i32.const 1) (i32.const 64) (i32.const 28)))`);
    const b = Buffer.from(r.stdout);
    expect(b.readUInt32LE(0)).toBe(0x7fc00000);
    expect(b.readUInt32LE(4)).toBe(0x7fc00000);
    expect(b.readUInt32LE(8)).toBe(0x7fc00000);
    expect(b.readBigUInt64LE(16)).toBe(0x7ff8000000000000n);
    expect(b.readFloatLE(24)).toBe(1); // the sign source is canonical (positive) NaN
  });
});

describe('the WASI subset', () => {
  it('stdin to stdout, a log on stderr, and proc_exit', async () => {
    const r = await run(`(func (export "_start")
      (i32.store (i32.const 16) (i32.const 256)) (i32.store (i32.const 20) (i32.const 100))
      (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
      (call $write (i32.const 1) (i32.const 256) (i32.load (i32.const 24)))
      (call $write (i32.const 2) (i32.const 256) (i32.const 3))
      (call $exit (i32.const 7)))`, 'hello, wasm');
    expect(Buffer.from(r.stdout).toString()).toBe('hello, wasm');
    expect(Buffer.from(r.stderr).toString()).toBe('hel');
    expect(r.exitCode).toBe(7);
    expect(r.error).toBeNull();
  });
  it('the clock returns the request timestamp; random_get is a function of the seed', async () => {
    const body = `(func (export "_start")
      (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 64)))
      (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 72)))
      (drop (call $random (i32.const 80) (i32.const 40)))
      (call $write (i32.const 1) (i32.const 64) (i32.const 56)))`;
    const a = await run(body, '', { seed: 42n, timestampNs: 1_700_000_000_123_456_789n });
    const b = await run(body, '', { seed: 42n, timestampNs: 1_700_000_000_123_456_789n });
    const c = await run(body, '', { seed: 43n, timestampNs: 5n });
    const ba = Buffer.from(a.stdout);
    expect(ba.readBigUInt64LE(0)).toBe(1_700_000_000_123_456_789n);
    expect(ba.readBigUInt64LE(8)).toBe(1_700_000_000_123_456_789n);
    expect(Buffer.from(b.stdout).equals(ba)).toBe(true);
    expect(Buffer.from(c.stdout).subarray(16).equals(ba.subarray(16))).toBe(false);
    // The documented derivation: block j = Philox4x32-10(counter (j, 0, 'WASI', 0), key (seed lo, hi)).
    const { native } = await import('../lib/engine/native.js');
    const w = native.philox(new Uint32Array([0, 0, 0x49534157, 0]), new Uint32Array([42, 0]));
    expect(ba.readUInt32LE(16)).toBe(w[0]);
    expect(ba.readUInt32LE(28)).toBe(w[3]);
    const w1 = native.philox(new Uint32Array([1, 0, 0x49534157, 0]), new Uint32Array([42, 0]));
    expect(ba.readUInt32LE(32)).toBe(w1[0]);
  });
  it('the examples: hash, JSON transform, model', async () => {
    const h = await runWasm(await exampleWasm('hash'), Buffer.from('hello'));
    expect(Buffer.from(h.stdout).toString()).toBe('a430d84680aabd0b\n');
    const j = await runWasm(await exampleWasm('json-minify'), Buffer.from('{ "a" : [1, 2],\n "b": "x \\" y" }'));
    expect(Buffer.from(j.stdout).toString()).toBe('{"a":[1,2],"b":"x \\" y"}');
    const bad = await runWasm(await exampleWasm('json-minify'), Buffer.from('{"a'));
    expect(bad.exitCode).toBe(1);
    expect(Buffer.from(bad.stderr).toString()).toMatch(/unterminated/);
    const m = await runWasm(await exampleWasm('model'), Buffer.alloc(260), { seed: 1n });
    expect(m.stdout.length).toBe(256);
  });
});

describe('atoma wasm run', () => {
  it('prints the output, and JSON with digest and fuel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-wasm-'));
    const input = join(dir, 'in.txt');
    writeFileSync(input, 'hello');
    const plain = runCli(['wasm', 'run', 'examples/hash.wat', '--input', input]);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toBe('a430d84680aabd0b\n');
    const json = runCli(['wasm', 'run', 'examples/hash.wat', '--input', '-', '--json', '--fuel', '100000'], {}, Buffer.from('hello'));
    const r = JSON.parse(json.stdout);
    expect(Buffer.from(r.stdout, 'base64').toString()).toBe('a430d84680aabd0b\n');
    expect(r.exitCode).toBe(0);
    expect(r.error).toBeNull();
    expect(r.fuelUsed).toBeGreaterThan(0);
    expect(r.outputDigest).toMatch(/^[0-9a-f]{64}$/);
    const starved = runCli(['wasm', 'run', 'examples/hash.wat', '--json', '--fuel', '10'], {}, Buffer.from('hello'));
    expect(starved.status).toBe(1);
    expect(JSON.parse(starved.stdout).error.code).toBe('ERR_WASM_OUT_OF_FUEL');
  });
});
