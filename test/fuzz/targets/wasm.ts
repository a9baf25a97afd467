/**
 * WebAssembly guests: load (validation, the import policy, instrumentation, compilation) and one
 * run in a worker with a small fuel budget. A guest's failure must come back as a typed
 * ERR_WASM_* in the result, and never end or stall the process that hosts the runner; this
 * target always runs in a child process for that reason. Seeds are assembled with assembleWat:
 * the examples, WASI output/input echo, loops with tables, globals and memory growth, random_get
 * and clocks. Besides byte mutations, a LEB128 immediate (a constant, a size, an index, a limit)
 * is rewritten to another value of the same encoded length, which keeps the module well formed
 * and reaches the instrumenter and the run with hostile numbers.
 */
import { fail } from '../../../lib/engine/errors.js';
import { assembleWat, exampleWasm } from '../../../lib/wasm/assemble.js';
import { runWasm } from '../../../lib/wasm/runner.js';
import type { Rng } from '../prng.js';
import { atomaCode, type FuzzTarget } from '../target.js';
import { WASI_IMPORTS } from '../../wasi-imports.js';

const WASI = `${WASI_IMPORTS}
  (memory (export "memory") 1 4)`;

const GUESTS = [
  // Output: two iovecs, one of them empty.
  `(data (i32.const 64) "hello, fuzz\\n")
   (func (export "_start")
     (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 12))
     (i32.store (i32.const 8) (i32.const 64)) (i32.store (i32.const 12) (i32.const 0))
     (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 16))))`,
  // Echo stdin to stdout in 16-byte reads.
  `(func (export "_start") (local $n i32)
     (loop $more
       (i32.store (i32.const 0) (i32.const 256)) (i32.store (i32.const 4) (i32.const 16))
       (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
       (local.set $n (i32.load (i32.const 8)))
       (if (i32.gt_u (local.get $n) (i32.const 0)) (then
         (i32.store (i32.const 4) (local.get $n))
         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
         (br $more)))))`,
  // Loops, a table with call_indirect, a mutable global, memory growth, i64 arithmetic.
  `(table 4 8 funcref) (elem (i32.const 0) $inc $dbl)
   (type $op (func (param i64) (result i64)))
   (global $acc (mut i64) (i64.const 1))
   (func $inc (param i64) (result i64) (i64.add (local.get 0) (i64.const 3)))
   (func $dbl (param i64) (result i64) (i64.mul (local.get 0) (i64.const 2)))
   (func (export "_start") (local $i i32)
     (drop (memory.grow (i32.const 1)))
     (loop $l
       (global.set $acc (call_indirect (type $op) (global.get $acc) (i32.and (local.get $i) (i32.const 1))))
       (i64.store (i32.mul (local.get $i) (i32.const 8)) (global.get $acc))
       (local.set $i (i32.add (local.get $i) (i32.const 1)))
       (br_if $l (i32.lt_u (local.get $i) (i32.const 200))))
     (drop (table.grow (ref.null func) (i32.const 2)))
     (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (i32.const 64))
     (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 2000))))`,
  // Entropy and time, written out, then a non-zero exit status.
  `(func (export "_start")
     (drop (call $random (i32.const 100) (i32.const 64)))
     (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 200)))
     (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 108))
     (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 300)))
     (call $exit (i32.const 3)))`,
];

const STDIN = new TextEncoder().encode('{"a": [1, 2, 3], "b": "fuzz"}\n');

/** Rewrites the LEB128 number at a random position as another of the same length (padded). */
function sameLengthLeb(input: Uint8Array, rng: Rng): Uint8Array | null {
  if (input.length < 9) return null;
  // Mostly the immediate of an i32.const or i64.const (sizes, counts, pointers, loop bounds).
  const consts: number[] = [];
  for (let p = 8; p + 1 < input.length; p++) if (input[p] === 0x41 || input[p] === 0x42) consts.push(p + 1);
  const at = consts.length && rng.chance(0.7) ? rng.pick(consts) : rng.range(8, input.length - 1);
  let len = 1;
  while (len <= 10 && at + len <= input.length && input[at + len - 1] & 0x80) len++;
  if (len > 10 || at + len > input.length) return null;
  const bits = 7 * len;
  const max = (1n << BigInt(bits)) - 1n;
  const picks = [0n, 1n, 2n, 8n, 64n, max, max >> 1n, 1n << BigInt(bits - 1), BigInt(rng.u32()) & max, 0x7fffffffn & max, 0xffffffffn & max, 0x10000n & max, 0x3fn, 0x40n];
  let v = rng.pick(picks);
  const out = input.slice();
  for (let i = 0; i < len; i++) {
    out[at + i] = Number(v & 0x7fn) | (i < len - 1 ? 0x80 : 0);
    v >>= 7n;
  }
  return out;
}

export function wasmTarget(): FuzzTarget {
  return {
    name: 'wasm',
    async seeds() {
      const guests = await Promise.all(GUESTS.map((g, i) => assembleWat(`(module ${WASI} ${g})`, `fuzz-${i}.wat`)));
      return [...guests, await exampleWasm('hash'), await exampleWasm('json-minify')];
    },
    mutate: sameLengthLeb,
    structuredShare: 0.7,
    dictionary: [Uint8Array.of(0, 0x61, 0x73, 0x6d), Uint8Array.of(0x41, 0x7f), Uint8Array.of(0xfc, 0x0f), Uint8Array.of(0x40, 0x00), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)],
    // ERR_WASM_WORKER is the worker's catch-all for an exception of the host side (worker.ts):
    // what a guest did wrong has its own code, so this one means a host bug.
    typedCode: (e) => { const c = atomaCode(e); return c === 'ERR_WASM_WORKER' ? null : c; },
    async run(input) {
      const r = await runWasm(input, STDIN, { fuel: 2_000_000, timeoutMs: 5000, memoryMb: 16 });
      if (r.error) fail(r.error.code, r.error.message);
    },
  };
}
