/** The public surface of the forward pass, sampling, generation and traces. */
export { LlamaModel, type Segment, type ForwardOptions } from './llama.js';
export { KvCache } from './kv-cache.js';
export { linear, widenRows } from './linear.js';
export { sample, candidates, samplingUniform, SAMPLING_STREAM, type SamplingParams } from './sampler.js';
export { generate, outputDigest, checkRequest, type GenerateRequest, type GenerateResult, type GenerateOptions } from './generate.js';
export { recomputeLeaf, selectLeaves, leafHash, traceRoot, type TraceLeaf } from './trace.js';
