/**
 * The executor: what a node does with one assignment. It runs the request on the real engine
 * (generate: continuous batching, canonical kernels) and returns what the node commits to -- the
 * output digest and the trace root -- together with the leaf hashes it needs to answer bisection
 * rounds. `replay` rebuilds the trace of a given token sequence (teacher forcing): a byzantine
 * node uses it to forge a consistent trace for a changed token; a test uses it to check that the
 * replay of the honest tokens gives generate's trace. `refereeLeaf` is the referee's single-leaf
 * re-execution (model/trace.ts recomputeLeaf).
 */
import { fail } from '../engine/errors.js';
import { generate, outputDigest, type GenerateRequest } from '../model/generate.js';
import type { LlamaModel } from '../model/llama.js';
import { leafHash, recomputeLeaf, traceRoot } from '../model/trace.js';

/** An assignment's work: plain JSON, sent by the client to the sampled nodes. */
export interface Assignment {
  prompt: number[];
  maxTokens: number;
  /** The request's sampling seed (a safe integer). */
  seed: number;
  temperature?: number;
  topK?: number;
}

export interface Execution {
  tokens: number[];
  outputDigest: string;
  traceRoot: string;
  /** One leaf hash per (step, layer), in order. */
  leaves: Buffer[];
}

function request(a: Assignment): GenerateRequest {
  return { prompt: a.prompt, maxTokens: a.maxTokens, seed: a.seed, temperature: a.temperature ?? 0, topK: a.topK ?? 0 };
}

/**
 * Runs one assignment with the engine.
 *
 * @example
 * const { outputDigest, traceRoot } = execute(model, { prompt: [1, 2, 3], maxTokens: 8, seed: 7, temperature: 0.8 });
 */
export function execute(model: LlamaModel, a: Assignment): Execution {
  const [r] = generate(model, [request(a)]);
  return { tokens: r.tokens, outputDigest: r.outputDigest, traceRoot: r.traceRoot, leaves: r.leaves };
}

/**
 * The trace of feeding `tokens` after `prompt` (step 0 = the prompt, step s = token s-1), whatever
 * the sampler would have chosen: the same leaves generate() records for these tokens.
 */
export function replay(model: LlamaModel, prompt: readonly number[], tokens: readonly number[]): Execution {
  if (tokens.length < 1) fail('ERR_ARGUMENT', 'replay: at least one token');
  const D = model.config.embeddingLength;
  const cache = model.newCache();
  const leaves: Buffer[] = [];
  const onLayer = (_i: number, _l: number, rows: Float32Array) => { leaves.push(leafHash(rows, D)); };
  model.forward([{ cache, tokens: [...prompt] }], { onLayer });
  for (let s = 1; s < tokens.length; s++) model.forward([{ cache, tokens: [tokens[s - 1]] }], { onLayer });
  return { tokens: [...tokens], outputDigest: outputDigest(tokens), traceRoot: traceRoot(leaves), leaves };
}

/**
 * A forged result: the honest tokens with one token changed and the trace replayed from there, so
 * the forgery is self-consistent (its trace really is the trace of its tokens) and only a
 * re-execution of the first differing leaf exposes it. Colluders pick the same change (`pick`).
 */
export function forge(model: LlamaModel, a: Assignment, honest: Execution, pick: number): Execution {
  const n = honest.tokens.length;
  // Change a token that is fed back (not the last one) when there is one: the traces then differ.
  const k = n > 1 ? pick % (n - 1) : 0;
  const tokens = honest.tokens.slice();
  tokens[k] = (tokens[k] + 1) % model.config.vocabSize;
  return replay(model, a.prompt, tokens);
}

/**
 * The referee's answer for leaf `index` (step = index / layers, layer = index % layers): the
 * correct leaf hash given the agreed state before it. The agreed tokens of steps before the leaf
 * follow from the agreed leaves (each token is sampled from the previous step's last layer), so
 * the referee derives them by running those steps, builds the layer's input rows over every
 * position up to the step, and recomputes that one layer at that one step (recomputeLeaf).
 */
export function refereeLeaf(model: LlamaModel, a: Assignment, index: number): string {
  const L = model.config.blockCount;
  if (!Number.isSafeInteger(index) || index < 0 || index >= a.maxTokens * L) fail('ERR_RANGE', `leaf index ${index} is outside the trace`);
  const step = Math.floor(index / L), layer = index % L;
  const prefix = step > 0 ? generate(model, [{ ...request(a), maxTokens: step, stopTokens: [] }])[0].tokens : [];
  const all = [...a.prompt, ...prefix];
  let input: Float32Array;
  if (layer === 0) input = model.embed(all);
  else {
    const rows: Float32Array[] = [];
    model.forward([{ cache: model.newCache(), tokens: all }], { onLayer: (_i, l, x) => { if (l === layer - 1) rows.push(x.slice()); } });
    input = rows[0];
  }
  return recomputeLeaf(model, layer, input, step === 0 ? 0 : all.length - 1).hash.toString('hex');
}
