/**
 * Init models: small, valid Llama GGUF files with seeded weights and a real byte-level BPE
 * vocabulary, so the whole path (file, tokenizer, forward pass, hashes) runs without downloads.
 *
 * Recipe (normative for the digests of init models; see docs/models.md):
 *  - tensors in the order token_embd, blk.0.* (attn_norm, attn_q, attn_k, attn_v, [q/k/v biases],
 *    attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down), blk.1.*, ..., output_norm, [output];
 *    tensor number i (0-based in that order) draws seeded(shape, seed, stream = i);
 *  - matrices and biases: seeded * 2^-ceil(log2(fanIn) / 2) (fanIn = last dimension, dim for biases; a power of
 *    two keeps the values exact and the activations near unit scale); token_embd: seeded as is;
 *    norm weights: 1 + seeded / 8;
 *  - matrices (2-D) are stored in the chosen format, vectors always in f32;
 *  - RoPE scaling (optional, not seeded): `linear:F` and `yarn:F` are metadata
 *    (llama.rope.scaling.type / factor / original_context_length, as llama.cpp writes them);
 *    `llama3:F[:LOW:HIGH:ORIG]` appends a `rope_freqs.weight` tensor [headDim/2] of the canonical
 *    Llama 3 divisors (lib/model/rope-scaling.ts), as llama.cpp's converter does for Llama 3.x.
 */
import { fail } from '../engine/errors.js';
import { seeded } from '../engine/tensor.js';
import { writeGguf, ggufValue, type GgufTensorSpec } from './gguf/writer.js';
import { blockWeights, type GgufEntry } from './gguf/types.js';
import { isBlockFormat } from './gguf/blocks.js';
import { randomBlocks } from './init-blocks.js';
import { encodeWeights } from './quantize.js';
import { INIT_CORPUS } from './tokenizer/corpus.js';
import { trainByteLevelBpe } from './tokenizer/train.js';
import { checkRopeScaling, llama3Divisors, ropeInvFreqs, type RopeScaling } from './rope-scaling.js';
import type { WeightFormat } from './types.js';

export interface InitOptions {
  seed: number | bigint;
  layers?: number;
  dim?: number;
  heads?: number;
  kvHeads?: number;
  vocab?: number;
  ff?: number;
  context?: number;
  format?: WeightFormat;
  /** Q/K/V biases (Qwen2-style). */
  bias?: boolean;
  /** No output.weight: the head reuses token_embd. */
  tied?: boolean;
  /** RoPE base frequency (10000). */
  ropeTheta?: number;
  /** RoPE scaling: 'none', 'linear:4', 'llama3:8' or 'llama3:8:1:4:8192' (factor, low and high
   *  frequency factors, original context), 'yarn:4' (written, but refused at load: a test file). */
  ropeScaling?: string;
}

/** What `--rope-scaling` asks for: a supported scaling, or YaRN metadata for refusal tests. */
export type InitRopeScaling = RopeScaling | { type: 'yarn'; factor: number; originalContextLength: number };

/**
 * Parses a `--rope-scaling` value (see InitOptions.ropeScaling).
 *
 * @example
 * parseRopeScaling('llama3:8');   // { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 }
 */
export function parseRopeScaling(spec: string): InitRopeScaling {
  const [type, ...rest] = spec.split(':');
  const nums = rest.map((v) => {
    const n = Number(v);
    if (v === '' || !Number.isFinite(n)) fail('ERR_USAGE', `--rope-scaling '${spec}': '${v}' is not a number`);
    return n;
  });
  const arity = (lo: number, hi: number) => {
    if (nums.length < lo || nums.length > hi) fail('ERR_USAGE', `--rope-scaling '${spec}': ${type} takes ${lo === hi ? lo : `${lo} to ${hi}`} numbers after the type`);
  };
  const what = `--rope-scaling '${spec}'`;
  switch (type) {
    case 'none': arity(0, 0); return { type: 'none' };
    case 'linear': arity(1, 1); return checkRopeScaling({ type: 'linear', factor: nums[0] }, what);
    case 'llama3': {
      if (nums.length !== 1 && nums.length !== 4) fail('ERR_USAGE', `${what}: llama3 takes FACTOR or FACTOR:LOW:HIGH:ORIG`);
      const [factor, lowFreqFactor = 1, highFreqFactor = 4, originalContextLength = 8192] = nums;
      return checkRopeScaling({ type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalContextLength }, what);
    }
    case 'yarn': arity(1, 2); return { type: 'yarn', factor: nums[0], originalContextLength: nums[1] ?? 4096 };
    default: fail('ERR_USAGE', `${what}: the type must be none, linear, llama3 or yarn`);
  }
}

export const INIT_DEFAULTS = { layers: 2, dim: 64, heads: 4, kvHeads: 2, vocab: 512, ff: 192, context: 512, format: 'f32' as WeightFormat };

/** Special tokens of init vocabularies, after the learned tokens. */
export const INIT_SPECIAL_TOKENS = ['<|bos|>', '<|eos|>', '<|system|>', '<|user|>', '<|assistant|>'];

/** The chat template of init models: a role marker line per message, each turn closed by <|eos|>. */
export const INIT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|eos|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

// llama.cpp's general.file_type of each format (the K-quants as their _M presets).
const FILE_TYPE: Record<WeightFormat, number> = {
  f32: 0, f16: 1, q8_0: 7, bf16: 32, q4_0: 2, q4_1: 3, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 12, q4_k: 15, q5_k: 17, q6_k: 18,
  iq4_nl: 25, iq4_xs: 30, mxfp4: 38,
};

function positive(v: number, name: string, max: number): number {
  if (!Number.isSafeInteger(v) || v < 1 || v > max) fail('ERR_USAGE', `--${name} must be an integer from 1 to ${max}, got ${v}`);
  return v;
}

/** The metadata and tensors of an init model (the file is written by initModel). */
export function initModelSpec(opts: InitOptions): { metadata: [string, GgufEntry][]; tensors: GgufTensorSpec[] } {
  const o = { ...INIT_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Required<InitOptions>;
  const layers = positive(o.layers, 'layers', 256);
  const dim = positive(o.dim, 'dim', 16384);
  const heads = positive(o.heads, 'heads', 1024);
  const kvHeads = positive(o.kvHeads, 'kv-heads', 1024);
  const ff = positive(o.ff, 'ff', 65536);
  const context = positive(o.context, 'context', 1 << 20);
  const vocab = positive(o.vocab, 'vocab', 1 << 16);
  if (!Object.prototype.hasOwnProperty.call(FILE_TYPE, o.format)) fail('ERR_USAGE', `--format must be one of ${Object.keys(FILE_TYPE).join(', ')}, got '${o.format}'`);
  if (dim % heads !== 0) fail('ERR_USAGE', `--dim ${dim} must be a multiple of --heads ${heads}`);
  if (heads % kvHeads !== 0) fail('ERR_USAGE', `--heads ${heads} must be a multiple of --kv-heads ${kvHeads}`);
  const headDim = dim / heads;
  if (headDim % 2 !== 0) fail('ERR_USAGE', `the head dimension ${headDim} must be even (rotary pairs)`);
  const qk = blockWeights(o.format);
  if (dim % qk !== 0 || ff % qk !== 0) fail('ERR_USAGE', `${o.format} needs --dim and --ff to be multiples of ${qk}`);
  const learned = vocab - INIT_SPECIAL_TOKENS.length;
  if (learned < 256) fail('ERR_USAGE', `--vocab must be at least ${256 + INIT_SPECIAL_TOKENS.length} (256 bytes + ${INIT_SPECIAL_TOKENS.length} special tokens)`);

  // The corpus supports about 830 learned tokens; larger vocabularies are padded with unused
  // tokens (type 5) so big init models can still be made for benchmarks.
  const bpe = trainByteLevelBpe(INIT_CORPUS, learned, true);
  const unused = Array.from({ length: learned - bpe.tokens.length }, (_, i) => `<|unused_${i}|>`);
  const tokens = [...bpe.tokens, ...unused, ...INIT_SPECIAL_TOKENS];
  const types = tokens.map((_, i) => (i >= learned ? 3 : i >= bpe.tokens.length ? 5 : 1));
  const bos = learned;

  const kvDim = kvHeads * headDim;
  const shapes: [string, number[]][] = [['token_embd.weight', [vocab, dim]]];
  for (let i = 0; i < layers; i++) {
    const b = `blk.${i}.`;
    shapes.push([`${b}attn_norm.weight`, [dim]], [`${b}attn_q.weight`, [dim, dim]], [`${b}attn_k.weight`, [kvDim, dim]], [`${b}attn_v.weight`, [kvDim, dim]]);
    if (o.bias) shapes.push([`${b}attn_q.bias`, [dim]], [`${b}attn_k.bias`, [kvDim]], [`${b}attn_v.bias`, [kvDim]]);
    shapes.push([`${b}attn_output.weight`, [dim, dim]], [`${b}ffn_norm.weight`, [dim]], [`${b}ffn_gate.weight`, [ff, dim]], [`${b}ffn_up.weight`, [ff, dim]], [`${b}ffn_down.weight`, [dim, ff]]);
  }
  shapes.push(['output_norm.weight', [dim]]);
  if (!o.tied) shapes.push(['output.weight', [vocab, dim]]);

  const theta = o.ropeTheta ?? 10000;
  if (!(theta > 0 && Number.isFinite(theta))) fail('ERR_USAGE', `--rope-theta must be a positive number, got ${theta}`);
  const scaling = o.ropeScaling === undefined ? ({ type: 'none' } as const) : parseRopeScaling(o.ropeScaling);

  const tensors = shapes.map(([name, shape], stream): GgufTensorSpec => {
    const x = seeded(shape, o.seed, stream).data;
    const isNorm = name.endsWith('norm.weight');
    if (isNorm) for (let i = 0; i < x.length; i++) x[i] = 1 + x[i] / 8;
    else if (name !== 'token_embd.weight') {
      const fanIn = name.endsWith('.bias') ? dim : shape[shape.length - 1];
      const scale = 2 ** -Math.ceil(Math.log2(fanIn) / 2);
      for (let i = 0; i < x.length; i++) x[i] *= scale;
    }
    const format: WeightFormat = shape.length === 1 ? 'f32' : o.format;
    const scale = name === 'token_embd.weight' ? 1 : 2 ** -Math.ceil(Math.log2(shape[shape.length - 1]) / 2);
    return { name, format, shape, data: isBlockFormat(format) ? randomBlocks(format, x, scale) : encodeWeights(x, format) };
  });
  if (scaling.type === 'llama3') {
    const div = llama3Divisors(ropeInvFreqs(headDim, Math.fround(theta)), scaling);
    tensors.push({ name: 'rope_freqs.weight', format: 'f32', shape: [headDim / 2], data: encodeWeights(div, 'f32') });
  }
  const ropeMeta: [string, GgufEntry][] = scaling.type === 'linear' || scaling.type === 'yarn'
    ? [['llama.rope.scaling.type', ggufValue.string(scaling.type)], ['llama.rope.scaling.factor', ggufValue.f32(scaling.factor)],
      ...(scaling.type === 'yarn' ? [['llama.rope.scaling.original_context_length', ggufValue.u32(scaling.originalContextLength)] as [string, GgufEntry]] : [])]
    : [];

  const metadata: [string, GgufEntry][] = [
    ['general.architecture', ggufValue.string('llama')],
    ['general.name', ggufValue.string(`atoma-init-${o.seed}`)],
    ['general.alignment', ggufValue.u32(32)],
    ['general.file_type', ggufValue.u32(FILE_TYPE[o.format])],
    ['atoma.init.seed', ggufValue.u64(BigInt(o.seed))],
    ['llama.context_length', ggufValue.u32(context)],
    ['llama.embedding_length', ggufValue.u32(dim)],
    ['llama.block_count', ggufValue.u32(layers)],
    ['llama.feed_forward_length', ggufValue.u32(ff)],
    ['llama.attention.head_count', ggufValue.u32(heads)],
    ['llama.attention.head_count_kv', ggufValue.u32(kvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', ggufValue.f32(1e-5)],
    ['llama.rope.freq_base', ggufValue.f32(theta)],
    ['llama.rope.dimension_count', ggufValue.u32(headDim)],
    ...ropeMeta,
    ['llama.vocab_size', ggufValue.u32(vocab)],
    ['tokenizer.ggml.model', ggufValue.string('gpt2')],
    ['tokenizer.ggml.pre', ggufValue.string('gpt-2')],
    ['tokenizer.ggml.tokens', ggufValue.strings(tokens)],
    ['tokenizer.ggml.token_type', ggufValue.i32s(types)],
    ['tokenizer.ggml.merges', ggufValue.strings(bpe.merges)],
    ['tokenizer.ggml.bos_token_id', ggufValue.u32(bos)],
    ['tokenizer.ggml.eos_token_id', ggufValue.u32(bos + 1)],
    ['tokenizer.ggml.add_bos_token', ggufValue.bool(true)],
    ['tokenizer.chat_template', ggufValue.string(INIT_CHAT_TEMPLATE)],
  ];
  return { metadata, tensors };
}

/**
 * Writes an init model to `out` (GGUF v3, llama architecture, byte-level BPE vocabulary).
 *
 * @example
 * initModel('tiny.gguf', { seed: 7 });                       // defaults: 2 layers, dim 64, vocab 512
 * initModel('tiny-q8.gguf', { seed: 7, format: 'q8_0' });
 */
export function initModel(out: string, opts: InitOptions): void {
  writeGguf(out, initModelSpec(opts));
}
