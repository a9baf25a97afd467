/**
 * Hugging Face checkpoints: a safetensors file with its config.json, read as loadModel reads a
 * checkpoint directory (readSafetensors, safetensorsWeights, hfConfig, checkedWeights). One fuzz
 * input holds config.json and the safetensors file (bundle.ts), so byte mutations reach either. Seeds are the init models written as safetensors (f16 Llama,
 * bf16 Qwen2 with biases and tied embeddings, f32 with Llama 3 RoPE scaling); format-aware
 * mutations edit the header JSON (re-encoded with its true length) or config.json.
 */
import { fail } from '../../../lib/engine/errors.js';
import { initModelSpec } from '../../../lib/model/init.js';
import { hfConfig, readSafetensors, safetensorsWeights } from '../../../lib/model/safetensors.js';
import { checkedWeights } from '../../../lib/model/weights.js';
import { dequantizeQ8_0 } from '../../../lib/model/quantize.js';
import { pack, unpack } from '../bundle.js';
import { JSON_TOKENS, mutateJson, type Json } from '../mutate-json.js';
import type { Rng } from '../prng.js';
import { runStages, type FuzzTarget } from '../target.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

const HF_PARTS: Record<string, string> = {
  attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj', ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};

/** GGUF llama tensor names to Hugging Face names (the inverse of lib/model/safetensors.ts ggufName). */
function hfName(gguf: string): string {
  const fixed: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
  if (fixed[gguf]) return fixed[gguf];
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(gguf);
  if (!m || !HF_PARTS[m[2]]) return `extra.${gguf}`;
  return `model.layers.${m[1]}.${HF_PARTS[m[2]]}.${m[3]}`;
}

/** A safetensors file: u64 header length, the JSON header padded to 8 bytes, the data. */
export function encodeSafetensors(header: Record<string, Json>, data: Uint8Array): Uint8Array {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function checkpoint(o: { seed: number; type: 'llama' | 'qwen2'; dtype: 'F16' | 'BF16' | 'F32'; bias?: boolean; tied?: boolean; rope?: Json }): Uint8Array {
  const dims = { layers: 2, dim: 8, heads: 2, kvHeads: 1, vocab: 270, ff: 16, context: 64 };
  const spec = initModelSpec({ seed: o.seed, ...dims, format: o.dtype.toLowerCase() as 'f16', bias: o.bias, tied: o.tied });
  const header: Record<string, Json> = { __metadata__: { format: 'pt' } };
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const t of spec.tensors) {
    // Vectors are f32 in init models; a checkpoint keeps one dtype.
    const data = t.format === o.dtype.toLowerCase() || o.dtype === 'F32' && t.format === 'f32' ? t.data : convert(t.data, t.format, o.dtype);
    header[hfName(t.name)] = { dtype: o.dtype, shape: [...t.shape], data_offsets: [off, off + data.length] };
    parts.push(data);
    off += data.length;
  }
  const all = new Uint8Array(off);
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  const config = JSON.stringify({
    model_type: o.type, vocab_size: dims.vocab, max_position_embeddings: dims.context, hidden_size: dims.dim, num_hidden_layers: dims.layers,
    intermediate_size: dims.ff, num_attention_heads: dims.heads, num_key_value_heads: dims.kvHeads, rms_norm_eps: 1e-5, rope_theta: 10000,
    tie_word_embeddings: !!o.tied, ...(o.rope ? { rope_scaling: o.rope } : {}),
  });
  return pack(config, encodeSafetensors(header, all));
}

/** f32 vector bytes to f16/bf16 (truncating: the values only need to be well-formed). */
function convert(data: Uint8Array, from: string, to: 'F16' | 'BF16' | 'F32'): Uint8Array {
  const f = from === 'q8_0' ? dequantizeQ8_0(data) : new Float32Array(data.slice().buffer);
  if (to === 'F32') return new Uint8Array(f.buffer);
  const out = new Uint16Array(f.length);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < f.length; i++) out[i] = to === 'BF16' ? u[i] >>> 16 : 0x3c00;   // bf16: top half; f16: 1.0
  return new Uint8Array(out.buffer);
}

function mutateCheckpoint(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]): Uint8Array | null {
  const { first: config, second: file } = unpack(input);
  if (config === null || file.length < 8) return null;
  if (rng.chance(0.4)) {
    const others = seeds.map((s) => unpack(s).first).filter((c): c is string => c !== null).map((c) => JSON.parse(c) as Json);
    const next = mutateJson(config, rng, others);
    return next === null ? null : pack(next, file);
  }
  const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  if (n > file.length - 8) return null;
  const next = mutateJson(dec.decode(file.subarray(8, 8 + n)), rng, []);
  if (next === null) return null;
  const header = JSON.parse(next) as Json;
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return pack(config, encodeSafetensors({ x: header }, file.subarray(8 + n)));
  return pack(config, encodeSafetensors(header, file.subarray(8 + n)));
}

export function safetensorsTarget(): FuzzTarget {
  return {
    name: 'safetensors',
    async seeds() {
      return [
        checkpoint({ seed: 1, type: 'llama', dtype: 'F16' }),
        checkpoint({ seed: 2, type: 'qwen2', dtype: 'BF16', bias: true, tied: true }),
        checkpoint({ seed: 3, type: 'llama', dtype: 'F32', rope: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }),
      ];
    },
    mutate: mutateCheckpoint,
    structuredShare: 0.9,
    dictionary: JSON_TOKENS,
    async run(input) {
      const { first: config, second: file } = unpack(input);
      const st = readSafetensors(file);
      const map = safetensorsWeights([{ file: st, what: 'fuzz.safetensors' }]);
      await runStages([
        () => {
          if (config === null) return;
          let cfg: unknown;
          try {
            cfg = JSON.parse(config);
          } catch (e) {
            fail('ERR_MODEL_FORMAT', `config.json: not valid JSON (${(e as Error).message})`);
          }
          checkedWeights(hfConfig(cfg, new Set(map.keys()), 'config.json'), map, 'fuzz');
        },
      ]);
    },
  };
}
