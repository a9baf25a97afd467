/** The public API of model files and tokenizers (re-exported from lib/index.ts). */
export { loadModel, filesDigest } from './load.js';
export { readGguf, GgufMetadata } from './gguf/reader.js';
export { writeGguf, encodeGguf, ggufValue, type GgufSpec, type GgufTensorSpec } from './gguf/writer.js';
export { GgufValueType, type GgufFile, type GgufEntry, type GgufTensorInfo } from './gguf/types.js';
export { ggufConfig, ggufWeights } from './gguf/llama.js';
export { readSafetensors, hfConfig } from './safetensors.js';
export { initModel, initModelSpec, parseRopeScaling, type InitOptions } from './init.js';
export { ropeInvFreqs, ropeFreqDivisors, llama3Divisors, hfRopeScaling, ggufRopeScaling, type RopeScaling } from './rope-scaling.js';
export { quantizeQ8_0, dequantizeQ8_0 } from './quantize.js';
export { BpeTokenizer } from './tokenizer/bpe.js';
export { ggufTokenizer } from './tokenizer/gguf.js';
export { hfTokenizer } from './tokenizer/hf.js';
export * from './inference.js';
export type { LlamaConfig, LoadedModel, ModelWeights, Tokenizer, Weight, WeightFormat } from './types.js';
