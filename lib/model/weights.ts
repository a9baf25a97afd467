/**
 * Named weights checked against a Llama configuration. Both readers (GGUF, safetensors) hand
 * their tensors here under GGUF's llama names; every tensor the forward pass needs must exist with
 * the shape the configuration implies, so a bad file fails at load, not mid-generation.
 */
import { fail } from '../engine/errors.js';
import { checkRopeScaling } from './rope-scaling.js';
import type { PackSource } from './packed-weights.js';
import type { LlamaConfig, ModelWeights, Weight } from './types.js';

/** The shape every named tensor must have under `config` (null: optional and absent is fine). */
export function expectedShapes(config: LlamaConfig): Map<string, { shape: number[]; optional: boolean }> {
  const { vocabSize: V, embeddingLength: D, headCount: H, headCountKv: G, headDim: hd, feedForwardLength: F } = config;
  const m = new Map<string, { shape: number[]; optional: boolean }>();
  const req = (name: string, shape: number[], optional = false) => m.set(name, { shape, optional });
  req('token_embd.weight', [V, D]);
  req('output_norm.weight', [D]);
  if (!config.tiedEmbeddings) req('output.weight', [V, D]);
  req('rope_freqs.weight', [config.ropeDims / 2], true);   // llama.cpp's per-pair RoPE divisors
  for (let i = 0; i < config.blockCount; i++) {
    const b = `blk.${i}.`;
    req(`${b}attn_norm.weight`, [D]);
    req(`${b}attn_q.weight`, [H * hd, D]);
    req(`${b}attn_k.weight`, [G * hd, D]);
    req(`${b}attn_v.weight`, [G * hd, D]);
    req(`${b}attn_output.weight`, [D, H * hd]);
    req(`${b}ffn_norm.weight`, [D]);
    req(`${b}ffn_gate.weight`, [F, D]);
    req(`${b}ffn_up.weight`, [F, D]);
    req(`${b}ffn_down.weight`, [D, F]);
    if (config.attentionBias) {
      req(`${b}attn_q.bias`, [H * hd]);
      req(`${b}attn_k.bias`, [G * hd]);
      req(`${b}attn_v.bias`, [G * hd]);
    }
  }
  return m;
}

/** Checks the configuration's numbers are positive, consistent integers. */
export function validateConfig(c: LlamaConfig, what: string): void {
  const ints: (keyof LlamaConfig)[] = ['vocabSize', 'contextLength', 'embeddingLength', 'blockCount', 'feedForwardLength', 'headCount', 'headCountKv', 'headDim', 'ropeDims'];
  for (const k of ints) {
    const v = c[k] as number;
    if (!Number.isSafeInteger(v) || v < 1 || v > 2 ** 31) fail('ERR_MODEL_FORMAT', `${what}: ${k} = ${v} is not a sensible positive integer`);
  }
  if (c.headCount % c.headCountKv !== 0) fail('ERR_MODEL_SHAPE', `${what}: ${c.headCount} attention heads are not a multiple of ${c.headCountKv} KV heads`);
  if (c.ropeDims > c.headDim || c.ropeDims % 2 !== 0) fail('ERR_MODEL_SHAPE', `${what}: rope dimension count ${c.ropeDims} must be even and at most the head dimension ${c.headDim}`);
  if (!(c.rmsNormEps > 0 && c.rmsNormEps < 1)) fail('ERR_MODEL_FORMAT', `${what}: RMS norm epsilon ${c.rmsNormEps} is not in (0, 1)`);
  if (!(c.ropeFreqBase > 0 && Number.isFinite(c.ropeFreqBase))) fail('ERR_MODEL_FORMAT', `${what}: rope frequency base ${c.ropeFreqBase} is not positive`);
  if (c.ropeScaling) checkRopeScaling(c.ropeScaling, what);
}

/** ModelWeights over a map of weights whose bytes stay in the file mapping. */
export class NamedWeights implements ModelWeights {
  /** The model's identity and file, set by loadModel: lets LlamaModel keep the decode layout in a
   *  sidecar named by the digest (packed-weights.ts). null: weights without a file identity. */
  source: PackSource | null = null;
  constructor(readonly config: LlamaConfig, private readonly map: Map<string, Weight>, private readonly what: string) {}
  get(name: string): Weight {
    const w = this.map.get(name);
    if (w === undefined) fail('ERR_MODEL_MISSING_TENSOR', `${this.what}: missing tensor '${name}'`);
    return w;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
}

/**
 * Builds the weights and checks every expected tensor is present with the expected shape.
 * Extra tensors (e.g. rope_freqs.weight) are kept under their names.
 */
export function checkedWeights(config: LlamaConfig, map: Map<string, Weight>, what: string): NamedWeights {
  validateConfig(config, what);
  // Every block needs 9 tensors: a block count the file cannot hold (a hostile 2^31) is refused
  // at its first missing tensor, before expectedShapes lists 9 names per claimed block.
  if (config.blockCount * 9 > map.size) {
    for (let i = 0; ; i++) {
      const part = ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].find((p) => !map.has(`blk.${i}.${p}.weight`));
      if (part) fail('ERR_MODEL_MISSING_TENSOR', `${what}: missing tensor 'blk.${i}.${part}.weight' (the configuration has ${config.blockCount} blocks)`);
    }
  }
  for (const [name, { shape, optional }] of expectedShapes(config)) {
    const w = map.get(name);
    if (w === undefined) {
      if (optional) continue;
      fail('ERR_MODEL_MISSING_TENSOR', `${what}: missing tensor '${name}' (expected shape [${shape.join(', ')}])`);
    }
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      fail('ERR_MODEL_SHAPE', `${what}: tensor '${name}' has shape [${w.shape.join(', ')}], the configuration implies [${shape.join(', ')}]`);
    }
  }
  return new NamedWeights(config, map, what);
}
