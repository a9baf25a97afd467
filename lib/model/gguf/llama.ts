/**
 * GGUF metadata of the llama architecture mapped onto LlamaConfig, and the file's tensors onto
 * named weights (views of the mapping). `qwen2` files use the same tensor names with Q/K/V
 * biases and NEOX rotary pairs, so they are read too.
 */
import { fail } from '../../engine/errors.js';
import type { LlamaConfig, Weight } from '../types.js';
import { ggufRopeScaling, scalingField } from '../rope-scaling.js';
import { checkedWeights, type NamedWeights } from '../weights.js';
import { GgufMetadata } from './reader.js';
import type { GgufFile } from './types.js';

/** Architectures read, and whether their rotary embedding pairs (i, i + rot/2). */
const ARCHITECTURES: Record<string, { neox: boolean }> = { llama: { neox: false }, qwen2: { neox: true } };

/** The Llama configuration a GGUF file's metadata and tensors describe. */
export function ggufConfig(file: GgufFile, what = 'GGUF'): LlamaConfig {
  const m = new GgufMetadata(file.metadata, what);
  const arch = m.string('general.architecture');
  if (arch === undefined) fail('ERR_MODEL_FORMAT', `${what}: metadata 'general.architecture' is missing`);
  // Own keys only: 'constructor' or 'toString' would find Object.prototype's and pass as an architecture.
  const spec = Object.hasOwn(ARCHITECTURES, arch) ? ARCHITECTURES[arch] : undefined;
  if (spec === undefined) fail('ERR_MODEL_UNSUPPORTED', `${what}: unknown architecture '${arch}' (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  const k = (s: string) => `${arch}.${s}`;
  const embeddingLength = m.requireNumber(k('embedding_length'));
  const headCount = m.requireNumber(k('attention.head_count'));
  const headDim = m.number(k('attention.key_length')) ?? embeddingLength / headCount;
  const tokens = m.stringArray('tokenizer.ggml.tokens');
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight');
  const vocabSize = m.number(k('vocab_size')) ?? tokens?.length ?? embd?.shape[0];
  if (vocabSize === undefined) fail('ERR_MODEL_FORMAT', `${what}: no vocabulary size (${k('vocab_size')}, tokenizer.ggml.tokens and token_embd.weight are all absent)`);
  const names = new Set(file.tensors.map((t) => t.name));
  // block_count drives every per-layer loop and allocation: bound it by the blocks the file holds
  // before anything iterates it (a hostile 2^31 used to run for 30 s and 3 GB).
  const blockCount = m.requireNumber(k('block_count'));
  const blocks = new Set<string>();
  for (const t of file.tensors) { const b = /^blk\.(\d+)\./.exec(t.name); if (b) blocks.add(b[1]); }
  if (!Number.isSafeInteger(blockCount) || blockCount < 1 || blockCount > blocks.size) {
    fail('ERR_MODEL_MISSING_TENSOR', `${what}: metadata '${k('block_count')}' = ${blockCount}, but the file holds tensors of ${blocks.size} block(s)`);
  }
  return {
    architecture: 'llama',
    vocabSize,
    contextLength: m.requireNumber(k('context_length')),
    embeddingLength,
    blockCount,
    feedForwardLength: m.requireNumber(k('feed_forward_length')),
    headCount,
    headCountKv: m.number(k('attention.head_count_kv')) ?? headCount,
    headDim,
    rmsNormEps: m.requireNumber(k('attention.layer_norm_rms_epsilon')),
    ropeFreqBase: m.number(k('rope.freq_base')) ?? 10000,
    ropeDims: m.number(k('rope.dimension_count')) ?? headDim,
    ropeNeox: spec.neox,
    ...scalingField(ggufRopeScaling(m.string(k('rope.scaling.type')), m.number(k('rope.scaling.factor')) ?? m.number(k('rope.scale_linear')), what)),
    tiedEmbeddings: !names.has('output.weight'),
    attentionBias: names.has('blk.0.attn_q.bias'),
  };
}

/** The file's tensors as named weights (zero-copy views), checked against the configuration. */
export function ggufWeights(file: GgufFile, what = 'GGUF'): NamedWeights {
  const config = ggufConfig(file, what);
  const map = new Map<string, Weight>();
  for (const t of file.tensors) {
    map.set(t.name, { name: t.name, format: t.format, shape: t.shape, bytes: file.bytes.subarray(t.offset, t.offset + t.byteLength) });
  }
  return checkedWeights(config, map, what);
}
