/**
 * The contract between model files (GGUF, safetensors) and the forward pass: a Llama-family
 * configuration and named weights that stay in the file's memory (never copied whole).
 */
import type { BlockFormat } from './gguf/blocks.js';
import type { RopeScaling } from './rope-scaling.js';

/**
 * Storage formats of weights. q8_0 is GGUF's: blocks of 32 int8 with one f16 scale (34 bytes);
 * the others are GGUF's block types of lib/model/gguf/blocks.ts (docs/canonical-arithmetic.md).
 */
export type WeightFormat = 'f32' | 'f16' | 'bf16' | 'q8_0' | BlockFormat;

/**
 * One weight, row-major with the LAST dimension contiguous (GGUF lists dims fastest-first;
 * readers reverse them). A matrix used as W in x W^T has shape [outFeatures, inFeatures].
 */
export interface Weight {
  name: string;
  format: WeightFormat;
  shape: number[];
  /** The stored bytes (a view into the mapped file), in `format`. */
  bytes: Uint8Array;
}

export interface LlamaConfig {
  architecture: 'llama';
  vocabSize: number;
  contextLength: number;
  embeddingLength: number;   // model dim
  blockCount: number;        // layers
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  /** Per-head dimension (embeddingLength / headCount unless the file says otherwise). */
  headDim: number;
  rmsNormEps: number;
  ropeFreqBase: number;
  /** Rotated dimensions per head (rope.dimension_count), headDim by default. */
  ropeDims: number;
  /** true: rotate (i, i + rot/2) pairs (Hugging Face layout); false: (2i, 2i+1) (GGUF llama). */
  ropeNeox: boolean;
  /** Frequency scaling from the file (absent: none). A GGUF rope_freqs.weight tensor adds
   *  per-pair divisors on top (lib/model/rope-scaling.ts). */
  ropeScaling?: RopeScaling;
  /** The output head reuses token_embd when the file has no output.weight. */
  tiedEmbeddings: boolean;
  /** Q/K/V projections carry biases (Qwen2-style). */
  attentionBias: boolean;
}

/**
 * Tensor names follow GGUF's llama convention: token_embd.weight, output_norm.weight,
 * output.weight (absent when tied), blk.{i}.attn_norm.weight, blk.{i}.attn_q.weight,
 * blk.{i}.attn_k.weight, blk.{i}.attn_v.weight, blk.{i}.attn_output.weight, blk.{i}.ffn_norm.weight,
 * blk.{i}.ffn_gate.weight, blk.{i}.ffn_up.weight, blk.{i}.ffn_down.weight, and with attentionBias
 * blk.{i}.attn_q.bias / attn_k.bias / attn_v.bias. Safetensors readers map Hugging Face names onto
 * these (and undo HF's Q/K permutation or set ropeNeox).
 */
export interface ModelWeights {
  config: LlamaConfig;
  get(name: string): Weight;          // throws AtomaError ERR_MODEL_MISSING_TENSOR naming it
  has(name: string): boolean;
  names(): string[];
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Ids that end generation: EOS and the chat end-of-turn markers (Llama 3 <|eot_id|>, Gemma <end_of_turn>). */
  readonly stopIds: readonly number[];
  encode(text: string, opts?: { addBos?: boolean; allowSpecial?: boolean }): number[];
  decode(ids: readonly number[]): string;
  /** Text of one token for streaming (bytes that are not yet valid UTF-8 are held back by callers). */
  tokenBytes(id: number): Uint8Array;
  /** Renders chat messages with the model's template (or a documented default) into a prompt. */
  applyChatTemplate(messages: { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean }): string;
  /**
   * Chat to ids: the template's markers are control tokens, message content is plain text; BOS
   * (addBos, default true) is added only when the rendering does not start with one.
   */
  encodeChat(messages: { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean; addBos?: boolean }): number[];
}

/** A loaded model: weights, tokenizer, and its identity (BLAKE3 hex of the file). */
export interface LoadedModel {
  weights: ModelWeights;
  tokenizer: Tokenizer;
  digest: string;
  path: string;
}
