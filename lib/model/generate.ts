/**
 * Generation with continuous batching. Each pass of the loop stacks the pending rows of every
 * live request -- a chunk of its prompt while it prefills, its last token while it decodes -- into
 * one forward pass; requests finish independently. A request's tokens, outputDigest and traceRoot
 * do not depend on what it was batched with or how its prompt was chunked (see llama.ts).
 */
import { fail } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import type { KvCache } from './kv-cache.js';
import type { LlamaModel, Segment } from './llama.js';
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

interface Live {
  req: GenerateRequest;
  seed: bigint;
  params: Required<SamplingParams>;
  cache: KvCache;
  fed: number;                 // prompt rows already in the cache
  tokens: number[];
  leaves: Buffer[];
  prefill: LeafHasher[];   // per layer, step 0's leaf, fed the prompt's output rows chunk by chunk
  done: boolean;
  prefillSeconds: number;
  decodeSeconds: number;
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
  for (const t of r.prompt) if (!Number.isInteger(t) || t < 0 || t >= V) fail('ERR_RANGE', `${what}: prompt token ${String(t)} is outside the vocabulary 0..${V - 1}`);
  if (!Number.isSafeInteger(r.maxTokens) || r.maxTokens < 1) fail('ERR_ARGUMENT', `${what}: maxTokens must be a positive integer, got ${String(r.maxTokens)}`);
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
  const L = model.config.blockCount, D = model.config.embeddingLength;
  const live: Live[] = requests.map((req) => ({
    req, seed: BigInt(req.seed ?? 0), params: checkSampling(req), cache: model.newCache(req.prompt.length + req.maxTokens - 1), fed: 0, tokens: [], leaves: [],
    prefill: Array.from({ length: L }, () => new LeafHasher(req.prompt.length, D)), done: false, prefillSeconds: 0, decodeSeconds: 0,
  }));

  for (let guard = 0; live.some((r) => !r.done); guard++) {
    if (guard > 1e7) fail('ERR_INTERNAL', 'generation did not terminate');
    const batch = live.filter((r) => !r.done);
    const segs: Segment[] = batch.map((r) => {
      if (r.fed < r.req.prompt.length) {
        const n = Math.min(chunk, r.req.prompt.length - r.fed);
        return { cache: r.cache, tokens: r.req.prompt.slice(r.fed, r.fed + n) };
      }
      return { cache: r.cache, tokens: [r.tokens[r.tokens.length - 1]] };
    });
    const t0 = performance.now();
    const logits = model.forward(segs, {
      onLayer: (i, layer, rows) => {
        const r = batch[i];
        if (r.fed < r.req.prompt.length) r.prefill[layer].push(rows);
        else r.leaves.push(leafHash(rows, D));
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    batch.forEach((r, i) => {
      const prefilling = r.fed < r.req.prompt.length;
      if (prefilling) {
        r.prefillSeconds += seconds;
        r.fed += segs[i].tokens.length;
        if (r.fed < r.req.prompt.length) return;   // more prompt chunks to go
        // Step 0's leaves cover the whole prompt, whatever the chunking.
        for (const h of r.prefill) r.leaves.push(h.digest());
        r.prefill = [];
      } else {
        r.decodeSeconds += seconds;
      }
      const tok = sample(logits[i], r.params, r.seed, r.tokens.length);
      r.tokens.push(tok);
      opts.onToken?.(requests.indexOf(r.req), tok);
      if (r.tokens.length >= r.req.maxTokens || r.req.stopTokens?.includes(tok)) r.done = true;
    });
  }
  return live.map((r) => ({
    tokens: r.tokens, outputDigest: outputDigest(r.tokens), traceRoot: traceRoot(r.leaves), leaves: r.leaves,
    promptTokens: r.req.prompt.length, prefillSeconds: r.prefillSeconds, decodeSeconds: r.decodeSeconds,
  }));
}
