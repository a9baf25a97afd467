// Decode and prefill tokens/s of atoma's canonical forward pass against llama.cpp (node-llama-cpp,
// CPU build, same GGUF, same thread count), for F32 and Q8_0 models of ~100M parameters created
// with initModel; plus peak RSS against file size + KV cache. Prints JSON, then a table.
//   node bench/inference.mjs [--threads 2] [--prompt 128] [--decode 32] [--dim 768 --layers 11 --ff 3072 --vocab 512]
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configure } from '../dist/engine/config.js';
import { initModel } from '../dist/model/init.js';
import { LlamaModel } from '../dist/model/llama.js';
import { generate } from '../dist/model/generate.js';
import { openModel, cacheDir } from '../dist/cli/commands/model-source.js';

const { values } = parseArgs({ options: {
  threads: { type: 'string', default: '2' }, prompt: { type: 'string', default: '128' }, decode: { type: 'string', default: '32' },
  dim: { type: 'string', default: '768' }, layers: { type: 'string', default: '11' }, ff: { type: 'string', default: '3072' },
  vocab: { type: 'string', default: '512' }, heads: { type: 'string', default: '12' }, formats: { type: 'string', default: 'f32,q8_0' },
  'no-llama': { type: 'boolean' },
} });
const threads = Number(values.threads), promptLen = Number(values.prompt), decodeLen = Number(values.decode);
configure({ threads });
const dir = join(cacheDir(), 'bench');
mkdirSync(dir, { recursive: true });

async function atoma(file) {
  const loaded = await openModel(file);
  const model = new LlamaModel(loaded.weights);
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 3) % model.config.vocabSize);
  generate(model, [{ prompt: prompt.slice(0, 8), maxTokens: 2 }]);   // warm-up
  const [r] = generate(model, [{ prompt, maxTokens: decodeLen + 1 }]);
  const c = model.config;
  const kvBytes = 2 * c.blockCount * (promptLen + decodeLen) * c.headCountKv * c.headDim * 4;
  return { prefillTps: promptLen / r.prefillSeconds, decodeTps: decodeLen / r.decodeSeconds, kvBytes, params: loaded.weights.names().reduce((a, n) => a + loaded.weights.get(n).shape.reduce((x, y) => x * y, 1), 0) };
}

async function llamaCpp(file) {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: promptLen + decodeLen + 16, threads, batchSize: promptLen });
  const seq = ctx.getSequence();
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 3) % Number(values.vocab));
  // Warm-up pass (first evaluation pays one-time setup), then the timed one on a cleared sequence.
  { const w = seq.evaluate(prompt.slice(0, 8), { temperature: 0 }); await w.next(); await w.next(); await w.return?.(); await seq.clearHistory(); }
  // Prefill: evaluate the prompt; decode: greedy tokens one at a time.
  const t0 = performance.now();
  const it = seq.evaluate(prompt, { temperature: 0 });
  const first = await it.next();
  const t1 = performance.now();
  let n = 0;
  while (n < decodeLen) { await it.next(); n++; }
  const t2 = performance.now();
  void first;
  await ctx.dispose(); await model.dispose();
  return { prefillTps: promptLen / ((t1 - t0) / 1000), decodeTps: decodeLen / ((t2 - t1) / 1000) };
}

const rows = [];
for (const format of values.formats.split(',')) {
  const file = join(dir, `bench-${values.dim}x${values.layers}-${format}.gguf`);
  if (!existsSync(file)) initModel(file, { seed: 1, dim: Number(values.dim), layers: Number(values.layers), ff: Number(values.ff), vocab: Number(values.vocab), heads: Number(values.heads), kvHeads: Number(values.heads), context: 1024, format });
  const a = await atoma(file);
  const rss = process.resourceUsage().maxRSS * 1024;
  let l = null;
  if (!values['no-llama']) {
    try { l = await llamaCpp(file); } catch (e) { l = { error: String(e?.message ?? e) }; }
  }
  rows.push({ format, file, fileBytes: statSync(file).size, params: a.params, threads, promptLen, decodeLen, atoma: { prefillTps: a.prefillTps, decodeTps: a.decodeTps }, llamaCpp: l, peakRssBytes: rss, kvCacheBytes: a.kvBytes });
}
console.log(JSON.stringify(rows, null, 1));
console.log('\nformat  params   file MiB  atoma prefill  atoma decode  llama.cpp prefill  llama.cpp decode  decode ratio  peak RSS MiB  (file + KV MiB)');
for (const r of rows) {
  const l = r.llamaCpp && !r.llamaCpp.error ? r.llamaCpp : null;
  const mib = (b) => (b / 2 ** 20).toFixed(0);
  console.log([r.format.padEnd(6), (r.params / 1e6).toFixed(1).padStart(6) + 'M', mib(r.fileBytes).padStart(9), r.atoma.prefillTps.toFixed(1).padStart(14), r.atoma.decodeTps.toFixed(1).padStart(13),
    (l ? l.prefillTps.toFixed(1) : 'n/a').padStart(18), (l ? l.decodeTps.toFixed(1) : 'n/a').padStart(17), (l ? (r.atoma.decodeTps / l.decodeTps).toFixed(2) + 'x' : 'n/a').padStart(13),
    mib(r.peakRssBytes).padStart(13), ('(' + mib(r.fileBytes + r.kvCacheBytes) + ')').padStart(16)].join(' '));
}
