// Hostile guests (issue 13): nothing a guest does ends the host process, every failure is a
// typed ERR_WASM_* within its fuel or wall budget, host calls are paid for in fuel, and a node
// keeps serving after any guest. Guests that once aborted the process run in a child process
// (the built CLI), so a regression fails a test instead of killing the test runner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleWat, blake3, exampleWasm, runWasm, WasmFunction } from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { philox4x32 } from '../lib/wasm/philox.js';
import { HOST_CALL_FUEL, IOVEC_FUEL, RANDOM_STREAM } from '../lib/wasm/wasi.js';
import { MAX_TABLE_ENTRIES } from '../lib/wasm/policy.js';
import { WasmTasks } from '../lib/node/wasm-tasks.js';
import { wasmAssignment } from '../lib/node/wasm-assignment.js';
import { RefusalError } from '../lib/node/refusal.js';
import { cli, runCli } from './helpers.js';
import { WASI_IMPORTS } from './wasi-imports.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-wasm-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WASI = `${WASI_IMPORTS}
  (memory (export "memory") 2)`;

const GUESTS = {
  // A declared table of 10^7 entries: V8 allocated it on the worker's heap and aborted the process.
  bigTable: `(module ${WASI} (table 10000000 funcref) (func (export "_start")))`,
  // table.grow of 10^6 entries in a loop, for 1 fuel each: the same abort at run time.
  growLoop: `(module ${WASI} (table 1 funcref)
    (func (export "_start") (loop $l (drop (table.grow (ref.null func) (i32.const 1000000))) (br $l))))`,
  // Two tables share the cap: the second table's grow fails once the first holds every entry.
  growTwo: `(module ${WASI} (table $a 0 funcref) (table $b 0 externref)
    (func (export "_start")
      (i32.store (i32.const 16) (table.grow $a (ref.null func) (i32.const ${MAX_TABLE_ENTRIES / 2})))
      (i32.store (i32.const 20) (table.grow $a (ref.null func) (i32.const ${MAX_TABLE_ENTRIES / 2})))
      (i32.store (i32.const 24) (table.grow $b (ref.null extern) (i32.const 1)))
      (i32.store (i32.const 28) (table.grow $b (ref.null extern) (i32.const 0)))
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 16))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (i32.eq (i32.load (i32.const 24)) (i32.const -1)) (then unreachable))))`,
  // random_get until the wall clock: terminating the worker inside the addon's Philox aborted the process.
  randomLoop: `(module ${WASI}
    (func (export "_start") (loop $l (drop (call $random (i32.const 0) (i32.const 65536))) (br $l))))`,
  // 8000 zero-length iovecs per fd_write: no fuel at all, so 100,000 fuel ran for seconds and filled the heap.
  emptyIovecs: `(module ${WASI}
    (func (export "_start") (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 8000) (i32.const 65000))) (br $l))))`,
};

async function guestFile(name: keyof typeof GUESTS): Promise<string> {
  const path = join(dir, `${name}.wasm`);
  writeFileSync(path, await assembleWat(GUESTS[name], `${name}.wat`));
  return path;
}

/** `atoma wasm run --json` in a child process: its exit status and the JSON result. */
function cliRun(path: string, ...flags: string[]): { status: number | null; json: any; stderr: string } {
  const r = runCli(['wasm', 'run', path, '--json', ...flags]);
  let json: any = null;
  try { json = JSON.parse(r.stdout); } catch { /* the process died: status and stderr say how */ }
  return { status: r.status, json, stderr: r.stderr };
}

const leb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};

/** A module with `segments` passive element segments of `entries` references to function 0, each. */
function elementModule(segments: number, entries: number): Uint8Array {
  const sec = (id: number, body: number[] | Buffer) => Buffer.concat([Buffer.from([id, ...leb(body.length)]), Buffer.from(body)]);
  const name = (s: string) => [...leb(s.length), ...Buffer.from(s)];
  const seg = Buffer.concat([Buffer.from([1, 0, ...leb(entries)]), Buffer.alloc(entries)]);
  return Buffer.concat([
    Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
    sec(1, [1, 0x60, 0, 0]), sec(3, [1, 0]), sec(5, [1, 0, 1]),
    sec(7, [2, ...name('_start'), 0, 0, ...name('memory'), 2, 0]),
    sec(9, Buffer.concat([Buffer.from(leb(segments)), ...Array(segments).fill(seg)])),
    sec(10, [1, 2, 0, 0x0b]),
  ]);
}

describe('no guest ends the host process (child processes)', () => {
  it('a declared table over the cap is refused at load', async () => {
    const r = cliRun(await guestFile('bigTable'));
    expect(r.stderr).not.toMatch(/heap limit|Aborted/);
    expect(r.status).toBe(1);
    expect(r.json.error.code).toBe('ERR_WASM_OUT_OF_MEMORY');
    expect(r.json.error.message).toMatch(/tables of 10000000 entries/);
  });
  it('table.grow is charged per entry: a growing loop runs out of fuel', async () => {
    const r = cliRun(await guestFile('growLoop'), '--fuel', '100000000');
    expect(r.stderr).not.toMatch(/heap limit|Aborted/);
    expect(r.status).toBe(1);
    expect(r.json.error.code).toBe('ERR_WASM_OUT_OF_FUEL');
    expect(r.json.fuelUsed).toBe(100_000_000);
  });
  it('all tables together stop at the cap: the grow past it returns -1 and its trap reads as out of memory', async () => {
    const r = cliRun(await guestFile('growTwo'));
    expect(r.status).toBe(1);
    const out = Buffer.from(r.json.stdout, 'base64');
    expect([0, 4, 8, 12].map((o) => out.readInt32LE(o))).toEqual([0, MAX_TABLE_ENTRIES / 2, -1, 0]);
    expect(r.json.error.code).toBe('ERR_WASM_OUT_OF_MEMORY');
    expect(r.json.error.message).toMatch(/table\.grow failed/);
    expect(r.json.fuelUsed).toBeGreaterThan(MAX_TABLE_ENTRIES); // 1 per entry asked
  });
  it('element segments over the cap are refused at load', () => {
    const path = join(dir, 'elements.wasm');
    writeFileSync(path, elementModule(3, 500_000));
    const r = cliRun(path);
    expect(r.status).toBe(1);
    expect(r.json.error.code).toBe('ERR_WASM_OUT_OF_MEMORY');
    expect(r.json.error.message).toMatch(/element segments hold 1500000 entries/);
    writeFileSync(path, elementModule(2, 500_000));
    const ok = cliRun(path);
    expect(ok.status).toBe(0);
    expect(ok.json.error).toBeNull();
  });
  it('a guest timed out inside random_get ends with ERR_WASM_TIMEOUT, not an abort', async () => {
    // A race by nature: with the addon's Philox, from 1 run in 10 to 5 in 6 aborted (the termination had
    // to land inside the native call). The deterministic half is 'the worker loads no native addon'.
    const path = await guestFile('randomLoop');
    for (let i = 0; i < 3; i++) {
      const r = cliRun(path, '--timeout-ms', '200', '--fuel', String(2n ** 62n));
      expect(r.stderr).not.toMatch(/terminate called|Napi::Error/);
      expect(r.status).toBe(1);
      expect(r.json.error.code).toBe('ERR_WASM_TIMEOUT');
    }
  });
});

describe('on a ledger', () => {
  it('a failed table.grow is a refusal every node commits to, not a node-local fault', async () => {
    // growTwo's grows stay within 16 MiB even without the cap, so it is safe in this process.
    const bytes = await assembleWat(GUESTS.growTwo);
    const digest = blake3(bytes).toString('hex');
    const tasks = new WasmTasks(new Map([[digest, { bytes, maxFuel: 1e9, maxMemoryMb: 64 }]]), 1);
    const e = await tasks.execute(digest, wasmAssignment(new Uint8Array(0), { fuel: 1e8 })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RefusalError);
    expect((e as RefusalError).code).toBe('ERR_WASM_OUT_OF_MEMORY');
  });
});

describe('host calls cost fuel', () => {
  const once = (call: string) => assembleWat(`(module ${WASI}
    (func (export "_start") (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 640)) ${call}))`);
  const fuelOf = async (call: string) => {
    const r = await runWasm(await once(call));
    expect(r.error).toBeNull();
    return r.fuelUsed;
  };
  it('a floor per call, IOVEC_FUEL per iovec, bytes / 64 moved, random_get len / 4 (docs/wasm.md)', async () => {
    const write = (n: number, iovs = 0) => `(drop (call $fd_write (i32.const 2) (i32.const ${iovs}) (i32.const ${n}) (i32.const 64)))`;
    const none = await fuelOf('');
    // 6 guest instructions for the call (5 operands and drop) plus the host charges.
    expect(await fuelOf(write(0, 16))).toBe(none + 6n + BigInt(HOST_CALL_FUEL));
    expect(await fuelOf(write(10, 16))).toBe(none + 6n + BigInt(HOST_CALL_FUEL + 10 * IOVEC_FUEL)); // ten empty iovecs
    expect(await fuelOf(write(1))).toBe(none + 6n + BigInt(HOST_CALL_FUEL + IOVEC_FUEL + 640 / 64)); // 640 bytes
    expect(await fuelOf(`(drop (call $random (i32.const 64) (i32.const 400)))`)).toBe(none + 4n + BigInt(HOST_CALL_FUEL + 100));
    expect(await fuelOf(`(drop (call $clock (i32.const 0) (i64.const 0) (i32.const 64)))`)).toBe(none + 5n + BigInt(HOST_CALL_FUEL));
    // A failed call pays its floor too (a bad fd, an iovec array outside memory).
    expect(await fuelOf(write(0, 16).replace('(i32.const 2)', '(i32.const 9)'))).toBe(none + 6n + BigInt(HOST_CALL_FUEL));
    expect(await fuelOf(write(1, 1 << 30))).toBe(none + 6n + BigInt(HOST_CALL_FUEL));
  });
  it('100,000 fuel of empty writes ends out of fuel, and the same runner then runs a good guest', async () => {
    const fn = await WasmFunction.load(await assembleWat(GUESTS.emptyIovecs));
    const [a, b] = await Promise.all([fn.run(undefined, { fuel: 100_000 }), fn.run(undefined, { fuel: 100_000 })]);
    expect(a.error?.code).toBe('ERR_WASM_OUT_OF_FUEL');
    expect(a.fuelUsed).toBe(100_000n);
    expect(a.resultDigest).toBe(b.resultDigest);
    const h = await runWasm(await exampleWasm('hash'), Buffer.from('hello'));
    expect(Buffer.from(h.stdout).toString()).toBe('a430d84680aabd0b\n');
  });
});

describe('random_get without the addon', () => {
  it('the JavaScript Philox is the engine\'s, word for word', () => {
    const out = new Uint32Array(4);
    let x = 0x12345678;
    const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) ^ (x >>> 7);
    const cases: number[][] = [[0, 0, 0, 0, 0, 0], [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0, 0, RANDOM_STREAM, 0, 42, 0]];
    for (let i = 0; i < 5000; i++) cases.push([next(), next(), next(), next(), next() >>> 0, next() >>> 0].map((v) => v >>> 0));
    for (const [c0, c1, c2, c3, k0, k1] of cases) {
      philox4x32(c0, c1, c2, c3, k0, k1, out);
      expect(Array.from(out)).toEqual(Array.from(native.philox(new Uint32Array([c0, c1, c2, c3]), new Uint32Array([k0, k1]))));
    }
  });
  it('the worker loads no native addon while a guest draws random bytes', () => {
    // Deterministic half of the random_get abort: an addon call is what a termination must not
    // land in, so the worker must not make one. A preload makes any addon load in a worker throw.
    const preload = join(dir, 'no-native-in-workers.cjs');
    writeFileSync(preload, `if (!require('node:worker_threads').isMainThread) process.dlopen = () => { throw new Error('a native addon was loaded in the WASM worker'); };\n`);
    const path = join(dir, 'random16.wat');
    writeFileSync(path, `(module ${WASI} (func (export "_start") (drop (call $random (i32.const 100) (i32.const 16)))
      (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 16))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
    const r = runCli(['wasm', 'run', path, '--json', '--seed', '42'], { NODE_OPTIONS: `--require ${preload}` });
    const json = JSON.parse(r.stdout);
    expect(json.error).toBeNull();
    const w = native.philox(new Uint32Array([0, 0, RANDOM_STREAM, 0]), new Uint32Array([42, 0]));
    expect(Buffer.from(json.stdout, 'base64').equals(Buffer.from(w.buffer))).toBe(true);
  });
  it('the stream across calls of odd lengths is the documented one', async () => {
    const seed = 0x1_2345_6789n;
    const r = await runWasm(await assembleWat(`(module ${WASI} (func (export "_start")
      (drop (call $random (i32.const 100) (i32.const 5))) (drop (call $random (i32.const 105) (i32.const 20)))
      (drop (call $random (i32.const 125) (i32.const 39)))
      (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 64))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`), undefined, { seed });
    const want = Buffer.alloc(64);
    for (let j = 0; j < 4; j++) {
      const w = native.philox(new Uint32Array([j, 0, RANDOM_STREAM, 0]), new Uint32Array([Number(seed & 0xffffffffn), Number(seed >> 32n)]));
      for (let k = 0; k < 4; k++) want.writeUInt32LE(w[k], 16 * j + 4 * k);
    }
    expect(Buffer.from(r.stdout).equals(want)).toBe(true);
  });
});

describe('a node keeps serving after hostile guests (a child process)', () => {
  let child: ChildProcess | undefined;
  let url = '';
  let exited: Promise<number | null>;
  let stderr = '';
  beforeAll(async () => {
    const good = await exampleWasm('hash');
    const fns: [string, Uint8Array, number][] = [
      ['grow', await assembleWat(GUESTS.growLoop), 100_000_000],
      ['empty', await assembleWat(GUESTS.emptyIovecs), 100_000],
      ['hash', good, 10_000_000],
    ];
    let toml = `[node]\ncache_dir = "cache"\n`;
    for (const [name, bytes, fuel] of fns) {
      writeFileSync(join(dir, `${name}.fn.wasm`), bytes);
      toml += `[[functions]]\nname = "${name}"\nmodule = "${blake3(bytes).toString('hex')}"\npath = "${name}.fn.wasm"\nprice_per_call = 1\nfuel = ${fuel}\n`;
    }
    writeFileSync(join(dir, 'node.toml'), toml);
    child = spawn(process.execPath, [cli, 'node', '--config', join(dir, 'node.toml'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    exited = new Promise((r) => child!.once('exit', (code) => r(code)));
    const first = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      child!.once('exit', () => reject(new Error(`node exited: ${stderr}`)));
    });
    url = (JSON.parse(first) as { url: string }).url;
  });
  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const call = async (name: string, input = '') => {
    const r = await fetch(`${url}/v1/functions/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: Buffer.from(input).toString('base64') }) });
    return { status: r.status, json: await r.json() as any };
  };
  it('table.grow and empty-write guests get typed errors; then a good guest runs correctly', async () => {
    const grow = await call('grow');
    expect(grow.status).toBe(200);
    expect(grow.json.error.code).toBe('ERR_WASM_OUT_OF_FUEL');
    const empty = await call('empty');
    expect(empty.json.error.code).toBe('ERR_WASM_OUT_OF_FUEL');
    expect(empty.json.fuelUsed).toBe('100000');
    const good = await call('hash', 'hello');
    expect(good.json.error).toBeNull();
    expect(Buffer.from(good.json.output, 'base64').toString()).toBe('a430d84680aabd0b\n');
    expect(child!.exitCode).toBeNull();
    expect(stderr).not.toMatch(/heap limit|Aborted/);
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
