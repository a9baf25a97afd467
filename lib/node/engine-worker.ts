/**
 * The engine thread of one model: generation is synchronous CPU work, so it runs here and the
 * HTTP thread stays free to stream tokens, answer /health and refuse with 429 while it runs.
 * Messages: in {batch: WireRequest[]} | EngineOp; out {ready} | {token, id} | {done, results} |
 * {opDone, result} | {error} (refusal: true when the assignment's validation refused it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AtomaError } from '../engine/errors.js';
import { checkRequest, generate } from '../model/generate.js';
import { LlamaModel } from '../model/llama.js';
import { loadModel } from '../model/load.js';
import type { EngineOp, WireExecution, WireRequest, WireResult } from './engine.js';
import { execute, refereeLeaf } from './executor.js';
import { isRefusalCode } from './refusal.js';

const port = parentPort!;
const { modelPath, packedCacheDir } = workerData as { modelPath: string; packedCacheDir?: string | null };

try {
  const loaded = await loadModel(modelPath);
  const model = new LlamaModel(loaded.weights, { packedCacheDir });
  port.postMessage({ type: 'ready', digest: loaded.digest, packed: model.packedWeights });
  port.on('message', (m: { batch: WireRequest[] } | EngineOp) => {
    try {
      if ('op' in m) {
        // Validation first: what it refuses is a refusal (deterministic, caused by the input:
        // refusal.ts), every other error is a fault of this node's run.
        try {
          checkRequest(model, { prompt: m.assignment.prompt, maxTokens: m.assignment.maxTokens, seed: m.assignment.seed, temperature: m.assignment.temperature ?? 0, topK: m.assignment.topK ?? 0 }, 'assignment');
        } catch (e) {
          if (e instanceof AtomaError && isRefusalCode(e.code)) {
            port.postMessage({ type: 'error', code: e.code, message: e.message, refusal: true });
            return;
          }
          throw e;
        }
        if (m.op === 'refereeLeaf') port.postMessage({ type: 'opDone', result: refereeLeaf(model, m.assignment, m.index, m.agreed) });
        else {
          const x = execute(model, m.assignment);
          const result: WireExecution = { tokens: x.tokens, outputDigest: x.outputDigest, traceRoot: x.traceRoot, leaves: Buffer.concat(x.leaves) };
          port.postMessage({ type: 'opDone', result });
        }
        return;
      }
      const reqs = m.batch.map((r) => ({ ...r, seed: BigInt(r.seed) }));
      const results = generate(model, reqs, { onToken: (i, token) => port.postMessage({ type: 'token', id: m.batch[i].id, token }) });
      const out: WireResult[] = results.map((r, i) => ({ id: m.batch[i].id, tokens: r.tokens, outputDigest: r.outputDigest, traceRoot: r.traceRoot, promptTokens: r.promptTokens }));
      port.postMessage({ type: 'done', results: out });
    } catch (e) {
      port.postMessage({ type: 'error', code: e instanceof AtomaError ? e.code : 'ERR_INTERNAL', message: (e as Error).message });
    }
  });
} catch (e) {
  port.postMessage({ type: 'error', code: e instanceof AtomaError ? e.code : 'ERR_INTERNAL', message: (e as Error).message, fatal: true });
}
