// WebAssembly functions: metered execution vs the same module unmetered in V8 (the peer,
// measured in the same run), cold start of a 1 MiB module, and 1,000 calls on 2 workers at a
// time with RSS sampled along the way.
// usage: node --expose-gc bench/wasm.mjs [--calls 1000] [--iters 20000]
import { performance } from 'node:perf_hooks';
import { root, report } from './lib.mjs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
const { WasmFunction, runWasm, assembleWat, exampleWasm } = await dist('index.js');
const { Wasi } = await dist('wasm/wasi.js');
const arg = (name, d) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : d);
const calls = arg('calls', 1000);
const iters = arg('iters', 20000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The same module, uninstrumented, on the main thread: instantiate once per run, time _start. */
async function unmetered(bytes, input, seed) {
  const module = await WebAssembly.compile(bytes);
  const wasi = new Wasi({ stdin: input, seed, timestampNs: 0n, maxOutputBytes: 1 << 26, charge: () => {} });
  const inst = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.imports() });
  wasi.memory = inst.exports.memory;
  const t0 = performance.now();
  inst.exports._start();
  return { ms: performance.now() - t0, stdout: wasi.stdout.bytes() };
}

const rows = [];
// 1. Metered vs unmetered on compute-heavy examples.
const modelInput = Buffer.alloc(260);
modelInput.writeUInt32LE(iters, 0);
for (let i = 0; i < 64; i++) modelInput.writeFloatLE(Math.sin(i), 4 + 4 * i);
const hashInput = Buffer.alloc(64 << 20);
for (let i = 0; i < hashInput.length; i += 4) hashInput.writeUInt32LE((i * 2654435761) >>> 0, i);
for (const [name, input] of [['model', modelInput], ['hash', hashInput]]) {
  const bytes = await exampleWasm(name);
  const fn = await WasmFunction.load(bytes);
  const m = [], u = [];
  let fuel = 0n, same = true;
  for (let rep = 0; rep < 5; rep++) {
    const r = await fn.run(input, { seed: 1n, fuel: 1n << 40n, timeoutMs: 120_000 });
    if (r.error) throw new Error(`${name}: ${r.error.code} ${r.error.message}`);
    m.push(r.timeMs);
    fuel = r.fuelUsed;
    const p = await unmetered(bytes, input, 1n);
    u.push(p.ms);
    same &&= Buffer.from(p.stdout).equals(Buffer.from(r.stdout));
  }
  const label = name === 'model' ? `model, ${iters} x (64x64 matvec + softsign)` : 'hash (FNV-1a), 64 MiB stdin';
  rows.push({ case: `metered vs unmetered: ${label}`, metered_ms: median(m), unmetered_ms: median(u), ratio: median(m) / median(u), target: '<= 1.5', fuel: Number(fuel), same_output: same });
}

// 2. Cold start: a fresh 1 MiB module (a new constant each time, so nothing is cached), from bytes to result.
async function bigModule(salt) {
  const fns = [];
  for (let f = 0; f < 4400; f++) {
    let body = '(local.get 0)';
    for (let k = 0; k < 24; k++) body = `(i32.xor (i32.mul ${body} (i32.const ${(f * 7919 + k * 104729 + salt) | 0})) (i32.const ${k + salt}))`;
    fns.push(`(func $f${f} (param i32) (result i32) ${body})`);
  }
  return assembleWat(`(module (memory (export "memory") 1) ${fns.join('\n')} (func (export "_start") (drop (call $f0 (i32.const 1)))))`);
}
const cold = [], coldPeer = [];
let size = 0;
for (let rep = 0; rep < 5; rep++) {
  const bytes = await bigModule(rep + 1);
  size = bytes.length;
  const t0 = performance.now();
  const r = await runWasm(bytes, new Uint8Array(0));
  cold.push(performance.now() - t0);
  if (r.error) throw new Error(`cold start: ${r.error.code} ${r.error.message}`);
  const peerBytes = await bigModule(rep + 100);
  const t1 = performance.now();
  await unmetered(peerBytes, new Uint8Array(0), 0n);
  coldPeer.push(performance.now() - t1);
}
rows.push({ case: `cold start, ${(size / 1048576).toFixed(2)} MiB module (load + worker + run)`, ms: median(cold), peer_unmetered_main_thread_ms: median(coldPeer), target: '< 50 ms' });

// 3. 1,000 calls of a small function, two at a time (2 cores), RSS along the way.
const small = await WasmFunction.load(await exampleWasm('hash'));
const rss = () => { globalThis.gc?.(); return process.memoryUsage().rss / 1048576; };
for (let i = 0; i < 50; i++) await small.run(Buffer.from('warm-up'));
const rss0 = rss();
const samples = [];
let done = 0, failures = 0;
const t0 = performance.now();
async function lane() {
  while (done < calls) {
    done++;
    const r = await small.run(Buffer.from(`call ${done}`));
    if (r.error) failures++;
    if (done % 250 === 0) samples.push(rss());
  }
}
await Promise.all([lane(), lane()]);
const secs = (performance.now() - t0) / 1000;
const rss1 = rss();
rows.push({ case: `${calls} calls of hash.wat, 2 in flight`, seconds: secs, calls_per_s: calls / secs, failures, rss_start_mib: rss0, rss_end_mib: rss1, rss_growth_mib: rss1 - rss0, rss_samples: samples.map((x) => x.toFixed(0)).join('/') });
report('WebAssembly functions (metered, one worker per call)', rows);
