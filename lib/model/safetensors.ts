/**
 * Hugging Face safetensors (8-byte little-endian header length, JSON header, raw data) with the
 * model's config.json: Llama-family checkpoints (model_type llama, mistral, qwen2). Tensors stay
 * in the memory mapping; Hugging Face names are mapped to GGUF's llama names, and since HF
 * checkpoints keep Q/K in rotate-half order, the configuration says ropeNeox = true.
 */
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { mapFile } from '../engine/files.js';
import { hfRopeScaling, scalingField } from './rope-scaling.js';
import type { LlamaConfig, Weight, WeightFormat } from './types.js';

const DTYPES: Record<string, { format: WeightFormat; bytes: number }> = {
  F32: { format: 'f32', bytes: 4 }, F16: { format: 'f16', bytes: 2 }, BF16: { format: 'bf16', bytes: 2 },
};
/** Own keys only: a dtype 'constructor' found Object.prototype's and passed as a dtype. */
const dtypeOf = (d: string) => (Object.hasOwn(DTYPES, d) ? DTYPES[d] : undefined);
const MAX_HEADER = 100 << 20;
/** Bytes per element of the format's other whole-byte dtypes: their spans are checked though we never compute with them. */
const ELEMENT_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
  bytes: Uint8Array;
}

/**
 * Parses a safetensors file (mapped from a path, or given bytes), checking every range.
 *
 * @example
 * const st = readSafetensors('model.safetensors');
 */
export function readSafetensors(source: string | Uint8Array): SafetensorsFile {
  const what = typeof source === 'string' ? source : 'safetensors';
  const bytes = typeof source === 'string' ? new Uint8Array(mapFile(source)) : source;
  if (bytes.length < 8) fail('ERR_MODEL_FORMAT', `${what}: truncated file: ${bytes.length} bytes, no header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) fail('ERR_MODEL_FORMAT', `${what}: header length ${n} is absurd for a ${bytes.length}-byte file (truncated or not safetensors)`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    fail('ERR_MODEL_FORMAT', `${what}: header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('ERR_MODEL_FORMAT', `${what}: header is not a JSON object`);
  const start = 8 + headerLen;
  const tensors: SafetensorsTensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) fail('ERR_MODEL_FORMAT', `${what}: '__metadata__' must be an object of strings`);
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null || typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) {
      fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' needs dtype, shape and data_offsets`);
    }
    const shape = t.shape as unknown[];
    if (shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' has a bad shape (${shape.length > 8 ? `${shape.length} dimensions` : shape.map((d) => brief(d)).join(', ')})`);
    const [b, e] = t.data_offsets as unknown[];
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || (b as number) < 0 || (e as number) < (b as number)) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' has bad data_offsets`);
    const begin = start + (b as number);
    const end = start + (e as number);
    if (end > bytes.length) fail('ERR_MODEL_FORMAT', `${what}: tensor '${name}' data [${begin}, ${end}) is out of bounds (file is ${bytes.length} bytes; truncated?)`);
    const size = Object.hasOwn(ELEMENT_BYTES, t.dtype) ? ELEMENT_BYTES[t.dtype] : undefined;
    const elements = (shape as number[]).reduce((x, y) => x * y, 1);
    if (size !== undefined && (!Number.isSafeInteger(elements * size) || elements * size !== end - begin)) fail('ERR_MODEL_SHAPE', `${what}: tensor '${name}' has ${end - begin} bytes, shape [${shape.join(', ')}] in ${t.dtype} needs ${elements * size}`);
    tensors.push({ name, dtype: t.dtype, shape: shape as number[], begin, end });
  }
  const sorted = tensors.slice().sort((x, y) => x.begin - y.begin || x.end - y.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].end > sorted[i].begin && sorted[i - 1].end > sorted[i].begin) fail('ERR_MODEL_FORMAT', `${what}: tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
  }
  // The format's own rule (the safetensors crate's validate): the spans tile the data section with
  // no hole and nothing after the last, so a span that hides bytes of another type is refused.
  let expected = start;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (t.begin > expected) fail('ERR_MODEL_FORMAT', `${what}: tensor '${t.name}' starts at ${t.begin - start} of the data section, ${t.begin - expected} bytes after the end of ${i === 0 ? 'the header' : `'${sorted[i - 1].name}'`}: a hole in the data section`);
    expected = Math.max(expected, t.end);
  }
  if (bytes.length > expected) fail('ERR_MODEL_FORMAT', `${what}: ${bytes.length - expected} bytes of the data section follow the last tensor${sorted.length ? ` '${sorted[sorted.length - 1].name}'` : ''}: no tensor's data_offsets cover them`);
  return { tensors, metadata, bytes };
}

/** Hugging Face Llama names to GGUF llama names (null: not a weight of ours). */
export function ggufName(hf: string): string | null {
  const fixed: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (fixed[hf]) return fixed[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (!m) return null;
  const parts: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm.weight',
    'self_attn.q_proj.weight': 'attn_q.weight', 'self_attn.k_proj.weight': 'attn_k.weight', 'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.q_proj.bias': 'attn_q.bias', 'self_attn.k_proj.bias': 'attn_k.bias', 'self_attn.v_proj.bias': 'attn_v.bias',
    'self_attn.o_proj.weight': 'attn_output.weight',
    'post_attention_layernorm.weight': 'ffn_norm.weight',
    'mlp.gate_proj.weight': 'ffn_gate.weight', 'mlp.up_proj.weight': 'ffn_up.weight', 'mlp.down_proj.weight': 'ffn_down.weight',
  };
  const p = parts[m[2]];
  return p ? `blk.${m[1]}.${p}` : null;
}

/** Safetensors tensors (one or more shards) as GGUF-named weights, views of the mappings. */
export function safetensorsWeights(files: { file: SafetensorsFile; what: string }[]): Map<string, Weight> {
  const map = new Map<string, Weight>();
  for (const { file, what } of files) {
    for (const t of file.tensors) {
      const name = ggufName(t.name);
      if (name === null) continue; // e.g. rotary_emb.inv_freq: derived from the config
      const dt = dtypeOf(t.dtype);
      if (!dt) fail('ERR_MODEL_UNSUPPORTED', `${what}: tensor '${t.name}' has dtype ${t.dtype}; supported: F32, F16, BF16`);
      if (map.has(name)) fail('ERR_MODEL_FORMAT', `${what}: tensor '${t.name}' appears in more than one shard`);
      map.set(name, { name, format: dt.format, shape: t.shape, bytes: file.bytes.subarray(t.begin, t.end) });
    }
  }
  return map;
}

const ARCHS = new Set(['llama', 'mistral', 'qwen2']);

/** config.json of a Hugging Face Llama-family model mapped to LlamaConfig. */
export function hfConfig(cfg: unknown, names: Set<string>, what = 'config.json'): LlamaConfig {
  if (typeof cfg !== 'object' || cfg === null) fail('ERR_MODEL_FORMAT', `${what}: not a JSON object`);
  const c = cfg as Record<string, unknown>;
  const type = c.model_type;
  if (typeof type !== 'string' || !ARCHS.has(type)) fail('ERR_MODEL_UNSUPPORTED', `${what}: unknown architecture ${brief(type)} (supported: ${[...ARCHS].join(', ')})`);
  const num = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('ERR_MODEL_FORMAT', `${what}: '${k}' is missing or not a number`);
    return v;
  };
  const dim = num('hidden_size');
  const heads = num('num_attention_heads');
  const headDim = typeof c.head_dim === 'number' ? c.head_dim : dim / heads;
  if (c.tie_word_embeddings === false && !names.has('output.weight')) fail('ERR_MODEL_MISSING_TENSOR', `${what}: missing tensor 'lm_head.weight' (tie_word_embeddings is false)`);
  return {
    architecture: 'llama',
    vocabSize: num('vocab_size'),
    contextLength: num('max_position_embeddings'),
    embeddingLength: dim,
    blockCount: num('num_hidden_layers'),
    feedForwardLength: num('intermediate_size'),
    headCount: heads,
    headCountKv: num('num_key_value_heads', heads),
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeFreqBase: num('rope_theta', 10000),
    ropeDims: headDim,
    ropeNeox: true,
    ...scalingField(hfRopeScaling(c.rope_scaling, what)),
    tiedEmbeddings: !names.has('output.weight'),
    attentionBias: names.has('blk.0.attn_q.bias'),
  };
}
