#!/usr/bin/env node
// GPU conformance of the Node addon: every conformance case of lib/engine/conformance.ts over a
// grid of odd shapes, the typed errors of bad inputs, and the inference path (a seeded model
// generating alone, batched and with chunked prefill, in every weight format) are run with
// configure({ device: 'cpu' }) and configure({ device: 'cuda' }); any difference in a digest
// (or an error's code and message) is a mismatch.
//
//   node scripts/cuda-conformance.mjs            compare cpu with cuda (needs a CUDA build + GPU)
//   node scripts/cuda-conformance.mjs --quick    the same without generation at bench size
//   node scripts/cuda-conformance.mjs --cpu-only print the cpu digests as JSON (any build), to
//                                                compare builds or machines with `diff`
//
// Needs only node, dist/ (npm run build:ts), the addon in build/Release (npm run build:cuda) and
// node_modules/node-gyp-build: nothing here loads a tokenizer, so no other package is imported.
// The "sampling" section samples rows of logits (ties, NaN, infinities, subnormals; greedy, top-k,
// top-p) with the native sampler on each device, and on the cpu also against the TypeScript
// reference. The "device tensors" section uploads inputs once (toDevice), chains the device ops
// with no host round trip, and compares both digest() (hashed on the GPU) and toHost().digest()
// with the CPU ops, leafHash() (hashed on the GPU) with merkleLeaf(encode()), and
// device.sample() with sample(); it is skipped, not failed, when the addon has no DeviceTensor
// support.
// Exit status: 0 all equal, 1 a mismatch, 2 CUDA is not built or no GPU is usable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { configure, info } from '../dist/engine/config.js';
import { CASES, runCase } from '../dist/engine/conformance.js';
import * as ops from '../dist/engine/ops.js';
import { native } from '../dist/engine/native.js';
import { device, deviceTensorsBuilt, toDevice } from '../dist/engine/device-tensor.js';
import { Tensor, seeded } from '../dist/engine/tensor.js';
import { readGguf } from '../dist/model/gguf/reader.js';
import { ggufWeights } from '../dist/model/gguf/llama.js';
import { initModel } from '../dist/model/init.js';
import { LlamaModel } from '../dist/model/llama.js';
import { generate } from '../dist/model/generate.js';
import { sample, sampleReference } from '../dist/model/sampler.js';
import { merkleLeaf } from '../dist/engine/hash.js';

const cpuOnly = process.argv.includes('--cpu-only');
const s = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'boolean' ? v : String(v)]));

// Odd shapes: empty and one-element tensors, sizes just off the 32-lane and 256-chunk
// boundaries, M = 1 (the GEMV path), tall, wide and deep products.
const GRID = [
  ...[
    { m: 1, k: 1, n: 1 }, { m: 1, k: 4096, n: 17 }, { m: 1, k: 257, n: 300 }, { m: 2, k: 31, n: 1 },
    { m: 7, k: 255, n: 33 }, { m: 13, k: 257, n: 100 }, { m: 5, k: 700, n: 33 }, { m: 64, k: 1000, n: 3 },
    { m: 0, k: 5, n: 4 }, { m: 3, k: 0, n: 4 }, { m: 4, k: 5, n: 0 }, { m: 33, k: 513, n: 65 },
    { m: 130, k: 300, n: 257 }, { m: 67, k: 2049, n: 129 },
  ].flatMap((g) => [
    ['gemm', s({ ...g, seed: 1 })],
    ['gemm', s({ ...g, seed: 1, bias: true })],
    ['gemm', s({ ...g, seed: 2, nk: true })],
    ['gemm', s({ ...g, seed: 2, nk: true, bias: true })],
  ]),
  ...[0, 1, 31, 33, 255, 257, 1000, 4097, 10007, 100003].map((n) => ['sum', s({ n, seed: 2 })]),
  ...['rmsnorm', 'softmax', 'add', 'mul', 'argmax'].flatMap((op) =>
    [{ rows: 3, n: 1000 }, { rows: 1, n: 1 }, { rows: 5, n: 33 }, { rows: 2, n: 4097 }, { rows: 0, n: 7 }, { rows: 129, n: 31 }]
      .map((g) => [op, s({ ...g, seed: 3 })]),
  ),
  ['softmax', s({ rows: 4, n: 300, seed: 3, scale: 100 })],
  ['rmsnorm', s({ rows: 3, n: 65, seed: 3, eps: 1e-6 })],
  ...['exp', 'log', 'tanh', 'sin', 'cos', 'silu', 'gelu'].flatMap((op) =>
    [{ rows: 3, n: 257, scale: 1 }, { rows: 2, n: 1000, scale: 64 }, { rows: 1, n: 4099, scale: 30000 }]
      .map((g) => [op, s({ ...g, seed: 4 })]),
  ),
  ['seeded', s({ shape: '3,5,7', seed: 9 })],
  ['rope', s({ tokens: 5, heads: 3, dim: 64, seed: 5 })],
  ['rope', s({ tokens: 4, heads: 2, dim: 128, rot: 64, neox: true, start: 1000, seed: 5 })],
  ['rope', s({ tokens: 9, heads: 1, dim: 18, rot: 10, start: 16777200, seed: 5 })],
  ['rope', s({ tokens: 3, heads: 5, dim: 80, rot: 0, seed: 5, theta: 500000 })],
  ['attention', s({ tokens: 1, heads: 1, 'kv-heads': 1, dim: 1, seed: 6 })],
  ['attention', s({ tokens: 7, heads: 4, 'kv-heads': 2, dim: 64, seed: 6 })],
  ['attention', s({ tokens: 300, heads: 2, 'kv-heads': 1, dim: 80, seed: 7 })],
  ['attention', s({ tokens: 33, heads: 6, 'kv-heads': 3, dim: 257, seed: 7 })],
  ['attention', s({ tokens: 2100, heads: 2, 'kv-heads': 2, dim: 64, seed: 7 })],
  ['embedding', s({ vocab: 1000, dim: 33, n: 17, seed: 8 })],
  ['embedding', s({ vocab: 1, dim: 1, n: 1, seed: 8 })],
  ['embedding', s({ vocab: 50000, dim: 64, n: 0, seed: 8 })],
];

// Sampling rows (sample(): the native sampler, on the GPU when the device is cuda): kinds of
// logits x parameters; each case also checks the CPU token against the TypeScript reference.
function logitsRow(n, seed, kind) {
  const u = seeded([Math.max(n, 1)], seed).data, w = seeded([Math.max(n, 1)], seed, 1).data;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((w[i] + 1) * 8);
    if (kind === 0) x[i] = u[i] * 12;
    else if (kind === 1) x[i] = Math.trunc(u[i] * 4);   // ties and -0
    else x[i] = [NaN, -Infinity, u[i] > 0 ? Infinity : -0, 1e-41 * (u[i] + 1), u[i] * 1e30][r] ?? u[i] * 30;
  }
  return x;
}
const SAMPLING_PARAMS = [
  { temperature: 0 }, { temperature: 0.8, topK: 40, topP: 0.95 }, { temperature: 1 }, { temperature: 0.7, topP: 0.5 },
  { temperature: 1e-3, topK: 5 }, { temperature: 1e-50 }, { temperature: 2, topK: 1 },
];
const SAMPLING = Object.fromEntries([1, 7, 2049, 32000, 128256].flatMap((n) => [0, 1, 2].flatMap((kind) =>
  SAMPLING_PARAMS.map((p, j) => [`V=${n} kind=${kind} ${JSON.stringify(p)}`, () => {
    const x = logitsRow(n, BigInt(n * 3 + kind), kind), seed = 17n + BigInt(j), step = kind * 1000 + j;
    const tokenOf = (f) => { try { return f(x, p, seed, step); } catch (e) { return e.code; } };   // all-NaN: ERR_RANGE
    const token = tokenOf(sample), reference = tokenOf(sampleReference);
    if (info().device === 'cpu' && token !== reference) throw Object.assign(new Error(`native ${token} != reference ${reference}`), { code: 'ERR_REFERENCE' });
    return { token };
  }]))));

// The synchronous bindings (the grid above runs matmul and attention on the worker pool).
const SYNC = {
  'matmulSync nk bias': () => ops.matmulSync(seeded([9, 300], 5n), seeded([37, 300], 1n, 1), { transposeB: true, bias: seeded([37], 1n, 2) }),
  'matmulSync kn m=1': () => ops.matmulSync(seeded([1, 513], 5n), seeded([513, 70], 1n, 1)),
  'attentionSync decode': () => {
    const pos = Int32Array.of(40);
    return ops.attentionSync(seeded([1, 8, 32], 3n), seeded([41, 2, 32], 3n, 1), seeded([41, 2, 32], 3n, 2), pos);
  },
  'rowSums': () => ops.rowSums(seeded([17, 1025], 4n)),
};

// Bad inputs must fail with the same code and message on both devices.
const ERRORS = {
  'embedding id out of range': () => ops.embedding(seeded([10, 4], 5n), [3, 10]),
  'embedding negative id': () => ops.embedding(seeded([10, 4], 5n), [-1]),
  'attention position past the keys': () => ops.attentionSync(seeded([2, 2, 8], 5n), seeded([2, 1, 8], 1n, 1), seeded([2, 1, 8], 1n, 2), [0, 2]),
  'attention heads not a multiple': () => ops.attentionSync(seeded([2, 3, 8], 5n), seeded([2, 2, 8], 1n, 1), seeded([2, 2, 8], 1n, 2), [0, 1]),
  'rope negative position': () => ops.rope(seeded([2, 1, 8], 5n), [0, -5]),
  'rope position past 2^24': () => ops.rope(seeded([1, 1, 8], 5n), [16777217]),
  'rope odd rotDims': () => ops.rope(seeded([1, 1, 8], 5n), [0], { rotDims: 3 }),
  // The addon directly, past the TypeScript checks: the checks made before a kernel launches.
  'native attention position past the keys': () => native.attention(f32(32), 2, 2, f32(16), f32(16), 2, 1, 8, Int32Array.of(0, 2), f32(32), false),
  'native attention (async) negative position': () => native.attention(f32(32), 2, 2, f32(16), f32(16), 2, 1, 8, Int32Array.of(-1, 1), f32(32), true),
  'native attention heads not a multiple': () => native.attention(f32(48), 2, 3, f32(32), f32(32), 2, 2, 8, Int32Array.of(0, 1), f32(48), false),
  'native attention no kv heads': () => native.attention(f32(0), 0, 0, f32(0), f32(0), 0, 0, 8, Int32Array.of(), f32(0), false),
  'native rope odd rotDims': () => native.rope(f32(8), 1, 1, 8, 3, Int32Array.of(0), 10000, false),
  'native rope rotDims past headDim': () => native.rope(f32(8), 1, 1, 8, 10, Int32Array.of(0), 10000, false),
  'native rope position past 2^24': () => native.rope(f32(16), 2, 1, 8, 8, Int32Array.of(1, 16777217), 10000, true),
  'native embedding id past vocab': () => native.embedding(f32(40), 10, 4, Int32Array.of(9, 10), f32(8)),
  'native binary unknown op': () => native.binary(2, f32(4), f32(4), f32(4)),
  'native unary unknown op': () => native.unary(7, f32(4), f32(4)),
  'native gemm short C': () => native.gemm(f32(6), f32(6), f32(3), 2, 2, 3, false, null, false),
  'native gemmWeights q8_0 K not a multiple of 32': () => native.gemmWeights(f32(40), new Uint8Array(34), 'q8_0', f32(1), 1, 1, 40, null, false),
  'native gemmWeights unknown format': () => native.gemmWeights(f32(32), new Uint8Array(64), 'q4_k', f32(1), 1, 1, 32, null, false),
};
const f32 = (n) => seeded([n], 6n).data;

function outcome(fn) {
  try {
    const t = fn();
    return t instanceof Promise ? t.then((v) => ({ ok: digestOf(v) }), (e) => ({ error: `${e.code}: ${e.message}` })) : { ok: digestOf(t) };
  } catch (e) {
    return { error: `${e.code}: ${e.message}` };
  }
}
function digestOf(v) {
  return typeof v?.digest === 'function' ? v.digest() : JSON.stringify(v);
}

// A tiny seeded model per weight format, generating greedy and sampled requests alone, batched,
// and batched with chunked prefill; traceRoot covers every layer's hidden rows of every step.
const REQUESTS = [
  { prompt: [1], maxTokens: 6 },
  { prompt: [1, 17, 300, 42, 9, 77, 5], maxTokens: 8, temperature: 0.8, topK: 40, seed: 7 },
  { prompt: Array.from({ length: 33 }, (_, i) => (i * 37 + 3) % 512), maxTokens: 5, temperature: 1.1, topP: 0.9, seed: 99 },
  // Stops at its first token (every id is a stop token): it leaves the batch while the others go on.
  { prompt: [4, 8, 15, 16, 23, 42], maxTokens: 9, stopTokens: Array.from({ length: 300 }, (_, i) => i) },
];
const MODELS = [
  { format: 'f32', seed: 11 },
  { format: 'f16', seed: 12 },
  { format: 'bf16', seed: 13, bias: true },
  { format: 'q8_0', seed: 14, tied: true },
  { format: 'f32', seed: 15, layers: 1, dim: 96, heads: 6, kvHeads: 2, ff: 160, vocab: 300 },
];

function inferenceCases(dir) {
  const cases = {};
  MODELS.forEach((m, i) => {
    const path = join(dir, `m${i}.gguf`);
    initModel(path, m);
    const model = new LlamaModel(ggufWeights(readGguf(path), path));
    const reqs = REQUESTS.map((r) => ({ ...r, prompt: r.prompt.map((t) => t % (m.vocab ?? 512)) }));
    const show = (rs) => rs.map((r) => ({ tokens: r.tokens, outputDigest: r.outputDigest, traceRoot: r.traceRoot }));
    const tag = `${m.format}${m.bias ? '+bias' : ''}${m.tied ? '+tied' : ''} seed ${m.seed}`;
    reqs.forEach((r, j) => { cases[`${tag}: request ${j} alone`] = () => show(generate(model, [r])); });
    cases[`${tag}: batched`] = () => show(generate(model, reqs));
    cases[`${tag}: batched, prefill chunks of 5`] = () => show(generate(model, reqs, { prefillChunk: 5 }));
    cases[`${tag}: batched, prefill chunks of 1`] = () => show(generate(model, reqs, { prefillChunk: 1 }));
  });
  return cases;
}

// Device-tensor chains: each case gives { cpu, device } where cpu is the CPU ops' result and
// device runs the same chain on DeviceTensors, uploading only inputs; a result is compared as
// the device digest, the host copy's digest and (argmax) the indices.
const up = (t) => toDevice(t);
const DEVICE_CASES = {
  ...Object.fromEntries([
    { m: 7, k: 255, n: 33 }, { m: 1, k: 4096, n: 17, nk: true }, { m: 33, k: 513, n: 65, bias: true },
    { m: 67, k: 2049, n: 129, nk: true, bias: true }, { m: 0, k: 5, n: 4 }, { m: 1, k: 1, n: 1 },
  ].map((g) => [`matmul -> rmsnorm -> softmax ${JSON.stringify(g)}`, async () => {
    const a = seeded([g.m, g.k], 21n), b = g.nk ? seeded([g.n, g.k], 21n, 1) : seeded([g.k, g.n], 21n, 1);
    const w = seeded([g.n], 21n, 2), bias = g.bias ? seeded([g.n], 21n, 3) : undefined;
    const cpu = ops.softmax(ops.rmsnorm(ops.matmulSync(a, b, { transposeB: g.nk, bias }), w, 1e-6));
    const [da, db, dw, dbias] = await Promise.all([up(a), up(b), up(w), bias ? up(bias) : undefined]);
    const dev = device.softmax(device.rmsnorm(device.matmul(da, db, { transposeB: g.nk, bias: dbias }), dw, 1e-6));
    return { cpu, dev, leaf: [merkleLeaf(cpu.encode()).toString('hex'), dev.leafHash().toString('hex')] };
  }])),
  // device.sample on device logits: the token of sample() on the host copy (and its reference).
  ...Object.fromEntries([1, 2049, 32000, 128256].flatMap((n) => (n === 1 ? [0] : [0, 2]).flatMap((kind) =>
    SAMPLING_PARAMS.map((p, j) => [`sample V=${n} kind=${kind} ${JSON.stringify(p)}`, async () => {
      const x = logitsRow(n, BigInt(n * 5 + kind), kind), seed = 29n + BigInt(j), step = 2 ** 33 + j;
      const cpu = new Tensor('f32', [1, n], x);
      const dev = await up(cpu);
      const want = sample(x, p, seed, step);
      return { cpu, dev, sample: [want, device.sample(dev, { ...p, seed, step }), sampleReference(x, p, seed, step)] };
    }])))),
  'trace leaf of a rank-0 and an empty tensor': async () => {
    const t = new Tensor('f32', [], Float32Array.of(2.5)), e = new Tensor('f32', [0, 7], new Float32Array(0));
    const [dt, de] = await Promise.all([up(t), up(e)]);
    const leaf = [merkleLeaf(t.encode()).toString('hex') + merkleLeaf(e.encode()).toString('hex'), dt.leafHash().toString('hex') + de.leafHash().toString('hex')];
    return { cpu: t, dev: dt, leaf };
  },
  ...Object.fromEntries([{ rows: 5, n: 33 }, { rows: 129, n: 4097 }].map((g) => [`add(row) -> mul -> silu -> argmax ${JSON.stringify(g)}`, async () => {
    const x = seeded([g.rows, g.n], 22n), row = seeded([g.n], 22n, 1), y = seeded([g.rows, g.n], 22n, 2);
    const cpu = ops.silu(ops.mul(ops.add(x, row), y));
    const [dx, drow, dy] = await Promise.all([up(x), up(row), up(y)]);
    const dev = device.unary('silu', device.mul(device.add(dx, drow), dy));
    return { cpu, dev, argmax: [ops.argmax(cpu).digest(), device.argmax(dev).digest()] };
  }])),
  ...Object.fromEntries(['exp', 'log', 'tanh', 'sin', 'cos', 'gelu'].map((op) => [`unary ${op} -> add`, async () => {
    const x = seeded([3, 1000], 23n), z = seeded([3, 1000], 23n, 1);
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] * 40);
    const cpu = ops.add(ops.unary(op, x), z);
    const [dx, dz] = await Promise.all([up(x), up(z)]);
    return { cpu, dev: device.add(device.unary(op, dx), dz) };
  }])),
  ...Object.fromEntries([
    { t: 7, h: 4, g: 2, d: 64, rot: 64, neox: false }, { t: 33, h: 6, g: 3, d: 80, rot: 32, neox: true }, { t: 300, h: 2, g: 1, d: 128, rot: 128, neox: true },
  ].map((c) => [`rope(q, k) -> attention -> gelu ${JSON.stringify(c)}`, async () => {
    const q = seeded([c.t, c.h, c.d], 24n), k = seeded([c.t, c.g, c.d], 24n, 1), v = seeded([c.t, c.g, c.d], 24n, 2);
    const pos = Int32Array.from({ length: c.t }, (_, i) => i);
    const opt = { rotDims: c.rot, neox: c.neox, theta: 500000 };
    const cpu = ops.gelu(ops.attentionSync(ops.rope(q, pos, opt), ops.rope(k, pos, opt), v, pos));
    const [dq, dk, dv] = await Promise.all([up(q), up(k), up(v)]);
    return { cpu, dev: device.unary('gelu', device.attention(device.rope(dq, pos, opt), device.rope(dk, pos, opt), dv, pos)) };
  }])),
};
// Typed errors of the device ops, checked on the host before anything is queued.
const DEVICE_ERRORS = {
  'digest after dispose is ERR_DISPOSED': async () => { const d = await up(seeded([4], 1n)); d.dispose(); d.digest(); },
  'an op on a disposed input is ERR_DISPOSED': async () => { const d = await up(seeded([4], 1n)); d.dispose(); device.softmax(d); },
  'matmul inner dimensions differ is ERR_SHAPE': async () => device.matmul(await up(seeded([2, 3], 1n)), await up(seeded([4, 2], 1n))),
  'rope position past 2^24 is ERR_RANGE': async () => device.rope(await up(seeded([1, 1, 8], 1n)), [16777217]),
  'attention position past the keys is ERR_RANGE': async () => device.attention(await up(seeded([2, 2, 8], 1n)), await up(seeded([2, 1, 8], 2n)), await up(seeded([2, 1, 8], 3n)), [0, 2]),
  'leafHash after dispose is ERR_DISPOSED': async () => { const d = await up(seeded([4], 1n)); d.dispose(); d.leafHash(); },
  'sample of two rows is ERR_SHAPE': async () => device.sample(await up(seeded([2, 8], 1n)), { temperature: 1 }),
  'sample with topP 0 is ERR_ARGUMENT': async () => device.sample(await up(seeded([8], 1n)), { temperature: 1, topP: 0 }),
  'sample with a negative step is ERR_ARGUMENT': async () => device.sample(await up(seeded([8], 1n)), { temperature: 1, step: -1 }),
  'sample of all-NaN logits is ERR_RANGE': async () => device.sample(await up(new Tensor('f32', [3], Float32Array.of(NaN, NaN, NaN))), { temperature: 1 }),
  'greedy sample of all-NaN logits is ERR_RANGE': async () => device.sample(await up(new Tensor('f32', [2], Float32Array.of(NaN, NaN)))),
};

async function deviceSection() {
  if (!deviceTensorsBuilt()) {
    console.log('device tensors: SKIPPED (this addon has no DeviceTensor support)');
    return null;
  }
  configure({ device: 'cpu' });
  const t0 = Date.now();
  let mismatches = 0;
  for (const [c, fn] of Object.entries(DEVICE_CASES)) {
    let got;
    try {
      const { cpu, dev, argmax, leaf, sample: tokens } = await fn();
      const want = cpu.digest();
      const host = (await dev.toHost()).digest();
      got = { want, device: dev.digest(), host, argmax, leaf, sample: tokens };
      // Every pair (or triple) must agree: argmax indices, trace leaves, sampled tokens.
      const differ = (v) => v && v.some((x) => x !== v[0]);
      if (got.device !== want || got.host !== want || differ(argmax) || differ(leaf) || differ(tokens)) got.bad = true;
      dev.dispose();
    } catch (e) {
      got = { bad: true, error: `${e.code}: ${e.message}` };
    }
    if (got.bad) {
      mismatches++;
      console.log(`MISMATCH [device tensors] ${c}\n  ${JSON.stringify(got)}`);
    }
  }
  for (const [c, fn] of Object.entries(DEVICE_ERRORS)) {
    const want = c.slice(c.lastIndexOf(' ') + 1);
    const code = await fn().then(() => 'no error', (e) => e.code);
    if (code !== want) {
      mismatches++;
      console.log(`MISMATCH [device tensors] ${c}: got ${code}`);
    }
  }
  const cases = Object.keys(DEVICE_CASES).length + Object.keys(DEVICE_ERRORS).length;
  return { section: 'device tensors', cases, mismatches, 'unexpected on cpu': 0, seconds: (Date.now() - t0) / 1000 };
}

// Generation at bench size, once on each device: the same tokens, outputDigest and traceRoot
// (a mismatch otherwise), and the tokens/s of prefill and decode. The CUDA side runs with every
// activation resident on the GPU (lib/model/device-llama.ts); its first call uploads the weights
// and is timed apart.
const THROUGHPUT = [
  { name: '105M f32', opts: { seed: 1, dim: 768, layers: 11, ff: 3072, vocab: 512, heads: 12, kvHeads: 12, context: 1024, format: 'f32' } },
  { name: '953M q8_0', opts: { seed: 1, dim: 2048, layers: 16, ff: 5632, vocab: 32000, heads: 32, kvHeads: 32, context: 1024, format: 'q8_0' } },
];

async function throughputSection(dir) {
  const t0 = Date.now();
  const rows = [];
  let mismatches = 0;
  for (const m of THROUGHPUT) {
    const path = join(dir, `bench-${m.opts.dim}-${m.opts.format}.gguf`);
    initModel(path, m.opts);
    const model = new LlamaModel(ggufWeights(readGguf(path), path), { packedCacheDir: null });
    const prompt = Array.from({ length: 128 }, (_, i) => (i * 131 + 7) % m.opts.vocab);
    const req = { prompt, maxTokens: 65, temperature: 0.8, topK: 40, seed: 5 };
    const results = {};
    for (const device of ['cpu', 'cuda']) {
      configure({ device });
      const u0 = performance.now();
      generate(model, [{ ...req, maxTokens: 2 }]);   // warm-up (on cuda: the weight upload)
      const warm = (performance.now() - u0) / 1000;
      const [r] = generate(model, [req]);
      results[device] = r;
      rows.push({ model: m.name, device, 'prefill tok/s': +(prompt.length / r.prefillSeconds).toFixed(1),
        'decode tok/s': +((req.maxTokens - 1) / r.decodeSeconds).toFixed(1), 'first call s': +warm.toFixed(2) });
    }
    const same = ['tokens', 'outputDigest', 'traceRoot'].every((k) => JSON.stringify(results.cpu[k]) === JSON.stringify(results.cuda[k]));
    if (!same) {
      mismatches++;
      console.log(`MISMATCH [generation at bench size] ${m.name}\n  cpu:  ${results.cpu.traceRoot} ${results.cpu.tokens}\n  cuda: ${results.cuda.traceRoot} ${results.cuda.tokens}`);
    }
    rmSync(path, { force: true });
  }
  configure({ device: 'cpu' });
  const cpuOf = (name) => rows.find((r) => r.model === name && r.device === 'cpu');
  for (const r of rows) if (r.device === 'cuda') r['decode vs cpu'] = +(r['decode tok/s'] / cpuOf(r.model)['decode tok/s']).toFixed(2);
  console.log(`generation at bench size (prompt 128, 64 decode steps, T=0.8 top-k 40; cpu: ${info().isa}, ${info().threads} threads):`);
  console.table(rows);
  return { section: 'generation at bench size', cases: THROUGHPUT.length, mismatches, 'unexpected on cpu': 0, seconds: (Date.now() - t0) / 1000 };
}

// --cpu-only leaves the device alone (cpu unless ATOMA_DEVICE says otherwise), so the digests
// can come from any build of the addon, including one older than device selection.
async function runOn(device, fn) {
  if (!cpuOnly) configure({ device });
  return outcome(fn);
}

async function main() {
  const i = info();
  if (!cpuOnly && !i.cuda.available) {
    console.error(i.cuda.built ? 'CUDA is built into the addon, but no usable GPU was found' : 'the addon was built without CUDA (npm run build:cuda)');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'atoma-cuda-conf-'));
  try {
    const sections = [
      ['kernels', Object.fromEntries(GRID.map(([op, a]) => [`${op} ${JSON.stringify(a)}`, () => runCase(op, a)]))],
      ['sync bindings', SYNC],
      ['errors', ERRORS],
      ['sampling', SAMPLING],
      ['inference', inferenceCases(dir)],
    ];
    for (const op of Object.keys(CASES))
      if (!GRID.some(([o]) => o === op)) throw new Error(`conformance case '${op}' is missing from the grid`);

    if (cpuOnly) {
      const out = {};
      for (const [name, cases] of sections) for (const [c, fn] of Object.entries(cases)) out[`${name} | ${c}`] = await runOn('cpu', fn);
      console.log(JSON.stringify(out, null, 1));
      return 0;
    }

    console.log(`device: ${i.cuda.device}; cpu path ${i.isa}, ${i.threads} threads`);
    const table = [];
    let bad = 0;
    for (const [name, cases] of sections) {
      let mismatches = 0, errors = 0;
      const t0 = Date.now();
      for (const [c, fn] of Object.entries(cases)) {
        const want = await runOn('cpu', fn);
        const got = await runOn('cuda', fn);
        // The errors section must fail (the same way on both); every other case must succeed.
        const wrong = name === 'errors' ? !want.error : Boolean(want.error);
        if (wrong) errors++;
        if (JSON.stringify(want) !== JSON.stringify(got) || wrong) {
          mismatches++;
          console.log(`MISMATCH [${name}] ${c}\n  cpu:  ${JSON.stringify(want)}\n  cuda: ${JSON.stringify(got)}`);
        }
      }
      table.push({ section: name, cases: Object.keys(cases).length, mismatches, 'unexpected on cpu': errors, seconds: (Date.now() - t0) / 1000 });
      bad += mismatches;
    }
    const dt = await deviceSection();
    if (dt) { table.push(dt); bad += dt.mismatches; }
    if (!process.argv.includes('--quick')) {
      const tp = await throughputSection(dir);
      table.push(tp);
      bad += tp.mismatches;
    }
    configure({ device: 'cpu' });
    console.table(table);
    console.log(bad === 0 ? 'cuda-conformance: PASS (cpu and cuda give the same bytes)' : `cuda-conformance: FAIL (${bad} mismatches)`);
    return bad === 0 ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error(`cuda-conformance: ${e?.code ? `${e.message} [${e.code}]` : e?.stack ?? e}`);
  process.exitCode = 1;
});
