// What a referee's leaf-mode answer costs against a full re-execution of the request, on an init
// model (nothing downloaded). For a request of --tokens n steps it times, per disputed step k,
// refereeLeaf at (k, layer 0) and (k, last layer) with the agreed prefix bisection would hand it,
// and execute() (the whole request, what a node and a full-mode referee run). Every referee
// answer is checked against the executor's own leaf. `steps`: the generation steps each one runs.
// Prints JSON, then a table.
//   node bench/referee.mjs [--threads 1] [--reps 3] [--prompt 16] [--tokens 64] [--steps 0,16,32,48,63]
//                          [--dim 256 --layers 4 --ff 768 --heads 8 --vocab 512] [--format f32]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configure, info } from '../dist/engine/config.js';
import { initModel } from '../dist/model/init.js';
import { LlamaModel } from '../dist/model/llama.js';
import { loadModel } from '../dist/model/load.js';
import { execute, refereeLeaf } from '../dist/node/executor.js';
import { Trace, splitPoint } from '../dist/protocol/trace.js';
import { report } from './lib.mjs';

const { values } = parseArgs({ options: {
  threads: { type: 'string', default: '1' }, reps: { type: 'string', default: '3' },
  prompt: { type: 'string', default: '16' }, tokens: { type: 'string', default: '64' }, steps: { type: 'string' },
  dim: { type: 'string', default: '256' }, layers: { type: 'string', default: '4' }, ff: { type: 'string', default: '768' },
  heads: { type: 'string', default: '8' }, vocab: { type: 'string', default: '512' }, format: { type: 'string', default: 'f32' },
} });
const n = Number(values.tokens), reps = Math.max(1, Number(values.reps));
const steps = values.steps ? values.steps.split(',').map(Number) : [0, n >> 2, n >> 1, (3 * n) >> 2, n - 1];
configure({ threads: Number(values.threads) });

const dir = mkdtempSync(join(tmpdir(), 'atoma-bench-referee-'));
try {
  const path = join(dir, 'm.gguf');
  initModel(path, { seed: 3, dim: Number(values.dim), layers: Number(values.layers), ff: Number(values.ff), heads: Number(values.heads),
    kvHeads: Number(values.heads), vocab: Number(values.vocab), context: Number(values.prompt) + n + 8, format: values.format });
  const model = new LlamaModel((await loadModel(path)).weights);
  const L = model.config.blockCount;
  const a = { prompt: Array.from({ length: Number(values.prompt) }, (_, i) => (i * 7919 + 3) % model.config.vocabSize), maxTokens: n, seed: 11, temperature: 0.8 };

  // Wall time, and the process's CPU time: on a shared machine the CPU time of a one-thread run
  // is the steadier measure of the work done (wall time also counts time spent descheduled).
  const best = (f) => {
    let ms = Infinity, cpuMs = Infinity, out;
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      out = f();
      const c = process.cpuUsage(c0);
      ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6);
      cpuMs = Math.min(cpuMs, (c.user + c.system) / 1e3);
    }
    return { ms, cpuMs, out };
  };
  /** The agreed ranges a bisection down to leaf `i` records: the left subtrees it walked past. */
  const agreedFor = (trace, i) => {
    const agreed = [];
    for (let lo = 0, hi = trace.length; hi - lo > 1;) {
      const mid = lo + splitPoint(hi - lo);
      if (i < mid) hi = mid;
      else { agreed.push({ start: lo, end: mid, root: trace.root(lo, mid) }); lo = mid; }
    }
    return agreed;
  };

  execute(model, a);   // warm-up: decode layout, scratch buffers
  const full = best(() => execute(model, a));
  const trace = Trace.fromLeafHashes(full.out.leaves);
  const rows = [{ leaf: 'full re-execution', step: '-', layer: '-', steps: n, ms: full.ms, cpuMs: full.cpuMs, vsFull: 1, cpuVsFull: 1 }];
  for (const k of steps) {
    for (const layer of [0, L - 1]) {
      const index = k * L + layer;
      const r = best(() => refereeLeaf(model, a, index, agreedFor(trace, index)));
      // Older builds answered a bare hex string; this one answers { leafHash, prefixMismatch }.
      const answer = typeof r.out === 'string' ? r.out : r.out.leafHash;
      if (answer !== trace.leaf(index)) throw new Error(`referee answer for leaf ${index} differs from the executor's leaf`);
      if (typeof r.out !== 'string' && r.out.prefixMismatch !== null) throw new Error(`leaf ${index}: the honest prefix was reported as differing`);
      rows.push({ leaf: index, step: k, layer, steps: k + 1, ms: r.ms, cpuMs: r.cpuMs, vsFull: r.ms / full.ms, cpuVsFull: r.cpuMs / full.cpuMs });
    }
  }
  const i = info();
  report(`referee leaf vs full re-execution: ${values.format} dim ${values.dim} x ${L} layers, prompt ${a.prompt.length}, ${n} tokens, ` +
    `${i.isa} x ${i.threads} threads, best of ${reps}`, rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
