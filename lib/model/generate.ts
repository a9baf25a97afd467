/**
 * Generation with continuous batching. Each pass of the loop stacks the pending rows of every
 * live request -- a chunk of its prompt while it prefills, its last token while it decodes -- into
 * one forward pass; requests finish independently. A request's tokens, outputDigest and traceRoot
 * do not depend on what it was batched with or how its prompt was chunked (see llama.ts).
 */
import { deviceTensorsBuilt, gpu, type NativeDeviceTensor } from '../engine/device-tensor.js';
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { native } from '../engine/native.js';
import { Tensor } from '../engine/tensor.js';
import { DeviceLlama, type DeviceKvCache } from './device-llama.js';
import type { KvCache } from './kv-cache.js';
import type { LlamaModel } from './llama.js';
import { checkSampling, sample, type SamplingParams } from './sampler.js';
import { LeafHasher, leafHash, traceRoot } from './trace.js';

export interface GenerateRequest extends SamplingParams {
  /** Prompt token ids (at least one). */
  prompt: readonly number[];
  /** Tokens to generate (>= 1). */
  maxTokens: number;
  /** Request seed of the sampling draws (an integer in [0, 2^64)). */
  seed?: bigint | number;
  /** Generation stops after any of these (it is included in the output). */
  stopTokens?: readonly number[];
}

export interface GenerateResult {
  tokens: number[];
  /** Spec tensor digest (hex) of the generated ids as a u32 tensor [n]. */
  outputDigest: string;
  /** Merkle root (hex) of the (step, layer) leaves. */
  traceRoot: string;
  /** Leaf hashes in (step, layer) order. */
  leaves: Buffer[];
  promptTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

export interface GenerateOptions {
  /** Prompt rows per request per pass (default: the whole prompt at once). */
  prefillChunk?: number;
  /** Called as each token is produced (request index, token id). */
  onToken?: (request: number, token: number) => void;
}

interface Live<C> {
  req: GenerateRequest;
  seed: bigint;
  params: Required<SamplingParams>;
  cache: C;
  fed: number;                 // prompt rows already in the cache
  tokens: number[];
  leaves: Buffer[];
  done: boolean;
  prefillSeconds: number;
  decodeSeconds: number;
}

/**
 * Where a generation's passes run: on the host kernels (LlamaModel.forward) or with every
 * activation resident on the GPU (DeviceLlama). Either way a pass appends each request's leaves
 * in (step, layer) order -- step 0's once its whole prompt is in, whatever the chunking -- and
 * samples the requests whose step is complete.
 */
interface PassRunner<C> {
  newCache(r: GenerateRequest): C;
  /** One pass; `completes[i]`: segment i ends its prompt (or decodes). Returns its token, else -1. */
  run(batch: readonly Live<C>[], segs: readonly { cache: C; tokens: readonly number[] }[], completes: readonly boolean[]): number[];
  /** Frees what a finished request held. */
  finish(r: Live<C>): void;
}

/** The host path: leaves hashed as rows arrive (a prompt's chunks stream into a LeafHasher). */
function hostRunner(model: LlamaModel): PassRunner<KvCache> {
  const L = model.config.blockCount, D = model.config.embeddingLength;
  const prompts = new Map<KvCache, LeafHasher[]>();   // per prefilling request, step 0's leaf per layer
  return {
    newCache: (r) => model.newCache(r.prompt.length + r.maxTokens - 1),
    run(batch, segs, completes) {
      const logits = model.forward(segs, {
        onLayer: (i, layer, rows) => {
          const r = batch[i];
          if (r.fed < r.req.prompt.length) {
            let h = prompts.get(r.cache);
            if (!h) prompts.set(r.cache, (h = Array.from({ length: L }, () => new LeafHasher(r.req.prompt.length, D))));
            h[layer].push(rows);
          } else r.leaves.push(leafHash(rows, D));
        },
      });
      return batch.map((r, i) => {
        if (!completes[i]) return -1;
        const h = prompts.get(r.cache);
        if (h) {
          for (const x of h) r.leaves.push(x.digest());
          prompts.delete(r.cache);
        }
        return sample(logits[i], r.params, r.seed, r.tokens.length);
      });
    },
    finish: () => {},
  };
}

/**
 * The device path: leaves are queued on the GPU into one digest buffer per pass and read back
 * with the tokens; a prompt prefilled in chunks keeps its layers' rows on the device until the
 * last chunk, then hashes each layer's [prompt, D] rows at once.
 */
function deviceRunner(model: LlamaModel): PassRunner<DeviceKvCache> {
  const dm = DeviceLlama.of(model), g = gpu();
  const L = model.config.blockCount, D = model.config.embeddingLength, V = model.config.vocabSize;
  const prompts = new Map<DeviceKvCache, NativeDeviceTensor[]>();   // per chunk-prefilling request, its rows per layer
  const dropPrompt = (cache: DeviceKvCache): void => {
    for (const t of prompts.get(cache) ?? []) t.free();
    prompts.delete(cache);
  };
  return {
    newCache: (r) => dm.newCache(r.prompt.length + r.maxTokens - 1),
    run(batch, segs, completes) {
      const base: number[] = [];
      let slots = 0;
      for (const c of completes) {
        base.push(slots);
        if (c) slots += L;
      }
      const digests = g.dtZeros([slots * 8]);
      const logits = dm.forward(segs, (i, layer, x, first, rows) => {
        const r = batch[i], P = r.req.prompt.length;
        const whole = r.fed >= P || (r.fed === 0 && rows === P);   // a decode row, or a prompt in one pass
        if (whole) {
          g.dtLeafHashRowsInto(x, first, rows, D, digests, base[i] + layer);
          return;
        }
        let kept = prompts.get(r.cache);
        if (!kept) prompts.set(r.cache, (kept = Array.from({ length: L }, () => g.dtZeros([P, D]))));
        g.dtWriteRows(kept[layer], r.fed, x, first, rows, D);
        if (completes[i]) g.dtLeafHashRowsInto(kept[layer], 0, P, D, digests, base[i] + layer);
      });
      try {
        const tokens = batch.map((r, i) => {
          if (!completes[i]) return -1;
          const { temperature, topK, topP } = r.params;
          return g.dtSample(logits, V, temperature, topK, topP, r.seed, r.tokens.length, i);
        });
        const bytes = g.dtReadSync(digests);
        batch.forEach((r, i) => {
          if (!completes[i]) return;
          for (let l = 0; l < L; l++) r.leaves.push(Buffer.from(bytes.subarray((base[i] + l) * 32, (base[i] + l + 1) * 32)));
          dropPrompt(r.cache);
        });
        return tokens;
      } finally {
        logits.free();
        digests.free();
      }
    },
    finish: (r) => {
      dropPrompt(r.cache);
      r.cache.dispose();
    },
  };
}

/** The device path when the engine runs on CUDA (ATOMA_DEVICE=cuda) with device tensors built. */
function onDevice(): boolean {
  return native.info().device === 'cuda' && deviceTensorsBuilt();
}

/** The spec tensor digest of generated token ids. */
export function outputDigest(tokens: readonly number[]): string {
  return new Tensor('u32', [tokens.length], Uint32Array.from(tokens)).digest();
}

/** Throws a typed error for a malformed request (before any work starts). */
export function checkRequest(model: LlamaModel, r: GenerateRequest, what = 'request'): void {
  const V = model.config.vocabSize;
  if (r === null || typeof r !== 'object') fail('ERR_ARGUMENT', `${what} must be an object`);
  if (!Array.isArray(r.prompt) || r.prompt.length === 0) fail('ERR_ARGUMENT', `${what}: prompt must be a non-empty array of token ids`);
  for (const t of r.prompt) if (!Number.isInteger(t) || t < 0 || t >= V) fail('ERR_RANGE', `${what}: prompt token ${brief(t)} is outside the vocabulary 0..${V - 1}`);
  if (!Number.isSafeInteger(r.maxTokens) || r.maxTokens < 1) fail('ERR_ARGUMENT', `${what}: maxTokens must be a positive integer, got ${brief(r.maxTokens)}`);
  if (r.prompt.length + r.maxTokens - 1 > model.config.contextLength)
    fail('ERR_RANGE', `${what}: ${r.prompt.length} prompt + ${r.maxTokens} new tokens exceed the context of ${model.config.contextLength}`);
  const s = r.seed ?? 0;
  if (!(typeof s === 'bigint' || Number.isSafeInteger(s)) || BigInt(s) < 0n || BigInt(s) >= 2n ** 64n) fail('ERR_ARGUMENT', `${what}: seed must be an integer in [0, 2^64)`);
  checkSampling(r);
}

/**
 * Runs several requests to completion as one continuously batched job.
 *
 * @example
 * const [res] = generate(model, [{ prompt: [1, 15043], maxTokens: 16, seed: 7n, temperature: 0.7 }]);
 */
export function generate(model: LlamaModel, requests: readonly GenerateRequest[], opts: GenerateOptions = {}): GenerateResult[] {
  requests.forEach((r, i) => checkRequest(model, r, `request ${i}`));
  const chunk = opts.prefillChunk ?? Infinity;
  if (!(chunk === Infinity || (Number.isSafeInteger(chunk) && chunk >= 1))) fail('ERR_ARGUMENT', 'prefillChunk must be a positive integer');
  return onDevice() ? run(deviceRunner(model), requests, chunk, opts) : run(hostRunner(model), requests, chunk, opts);
}

function run<C>(runner: PassRunner<C>, requests: readonly GenerateRequest[], chunk: number, opts: GenerateOptions): GenerateResult[] {
  const live: Live<C>[] = requests.map((req) => ({
    req, seed: BigInt(req.seed ?? 0), params: checkSampling(req), cache: runner.newCache(req), fed: 0, tokens: [], leaves: [],
    done: false, prefillSeconds: 0, decodeSeconds: 0,
  }));
  try {
    for (let guard = 0; live.some((r) => !r.done); guard++) {
      if (guard > 1e7) fail('ERR_INTERNAL', 'generation did not terminate');
      const batch = live.filter((r) => !r.done);
      const segs = batch.map((r) => {
        if (r.fed < r.req.prompt.length) {
          const n = Math.min(chunk, r.req.prompt.length - r.fed);
          return { cache: r.cache, tokens: r.req.prompt.slice(r.fed, r.fed + n) };
        }
        return { cache: r.cache, tokens: [r.tokens[r.tokens.length - 1]] };
      });
      // A prefill chunk that leaves prompt rows for later passes samples nothing.
      const completes = batch.map((r, i) => r.fed + segs[i].tokens.length >= r.req.prompt.length);
      const t0 = performance.now();
      const tokens = runner.run(batch, segs, completes);
      const seconds = (performance.now() - t0) / 1000;
      batch.forEach((r, i) => {
        if (r.fed < r.req.prompt.length) {
          r.prefillSeconds += seconds;
          r.fed += segs[i].tokens.length;
        } else {
          r.decodeSeconds += seconds;
        }
        if (!completes[i]) return;
        r.tokens.push(tokens[i]);
        opts.onToken?.(requests.indexOf(r.req), tokens[i]);
        if (r.tokens.length >= r.req.maxTokens || r.req.stopTokens?.includes(tokens[i])) {
          r.done = true;
          runner.finish(r);
        }
      });
    }
  } catch (e) {
    for (const r of live) if (!r.done) runner.finish(r);
    throw e;
  }
  return live.map((r) => ({
    tokens: r.tokens, outputDigest: outputDigest(r.tokens), traceRoot: traceRoot(r.leaves), leaves: r.leaves,
    promptTokens: r.req.prompt.length, prefillSeconds: r.prefillSeconds, decodeSeconds: r.decodeSeconds,
  }));
}
