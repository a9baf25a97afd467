/**
 * The executor: what a node does with one assignment. It runs the request on the real engine
 * (generate: continuous batching, canonical kernels) and returns what the node commits to -- the
 * output digest and the trace root -- together with the leaf hashes it needs to answer bisection
 * rounds. `replay` rebuilds the trace of a given token sequence (teacher forcing): a byzantine
 * node uses it to forge a consistent trace for a changed token; a test uses it to check that the
 * replay of the honest tokens gives generate's trace. `refereeLeaf` is the referee's single-leaf
 * answer: a re-run of the request's prefix up to the disputed step, checked against the agreed prefix.
 */
import { fail } from '../engine/errors.js';
import { generate, outputDigest, type GenerateRequest } from '../model/generate.js';
import type { LlamaModel } from '../model/llama.js';
import { leafHash, traceRoot } from '../model/trace.js';
import { Trace } from '../protocol/trace.js';
import type { AgreedRange } from '../protocol/types.js';

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

/** A referee's answer for one leaf (refereeLeaf). */
export interface RefereeAnswer {
  /** The leaf's hash (hex) in the honest execution. */
  leafHash: string;
  /** The first agreed range whose root differs from the honest leaves: both sides committed the
   *  same wrong state before the disputed leaf. null when the agreed prefix is the honest one. */
  prefixMismatch: AgreedRange | null;
}

/**
 * The referee's answer for leaf `index` (step = index / layers, layer = index % layers): its hash
 * in the honest execution, from a re-run of the request's prefix only -- steps 0..step, not the
 * maxTokens steps of a full re-execution. The tokens the disputed step feeds are not on the log
 * (the trace holds hashes), so the steps before it are run to sample them; that run records the
 * leaves of every step up to the disputed one, the disputed leaf among them, on generate()'s own
 * path, so the answer is by construction the leaf an honest executor commits to. The leaves
 * before `index` are checked against the `agreed` ranges of the bisection (AgreedRange roots,
 * both sides' committed subtrees): a mismatch means both sides diverged from the honest run
 * before the disputed leaf, and is reported rather than trusted.
 *
 * @example
 * const { leafHash } = refereeLeaf(model, assignment, effect.leafIndex, effect.agreedPrefix);
 */
export function refereeLeaf(model: LlamaModel, a: Assignment, index: number, agreed: readonly AgreedRange[] = []): RefereeAnswer {
  const L = model.config.blockCount;
  if (!Number.isSafeInteger(index) || index < 0 || index >= a.maxTokens * L) fail('ERR_RANGE', `leaf index ${index} is outside the trace`);
  for (const r of agreed) {
    if (!(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && 0 <= r.start && r.start < r.end && r.end <= index))
      fail('ERR_RANGE', `agreed range [${r.start}, ${r.end}) does not lie before leaf ${index}`);
  }
  const step = Math.floor(index / L);
  // The disputed step runs whole: stopping at its layer would save under one decode step and
  // need a second forward path beside generate's (host and device).
  const { leaves } = generate(model, [{ ...request(a), maxTokens: step + 1 }])[0];
  const prefix = Trace.fromLeafHashes(leaves.slice(0, index));
  const prefixMismatch = agreed.find((r) => prefix.root(r.start, r.end) !== r.root) ?? null;
  return { leafHash: leaves[index].toString('hex'), prefixMismatch };
}
