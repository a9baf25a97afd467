/**
 * RoPE scaling (issue 3): linear and Llama 3 divisors in canonical f32 against float64, the
 * kernel's use of them, the same bytes on every ISA path and thread count, GGUF rope_freqs and
 * HF rope_scaling models that load and run, and typed refusals of what is not implemented.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomaError, LlamaModel, Tensor, seeded, encodeGguf, initModel, loadModel, rope, unary, ropeInvFreqs, ropeFreqDivisors, llama3Divisors, type RopeScaling } from '../lib/index.js';
import { initModelSpec, parseRopeScaling } from '../lib/model/init.js';
import { hfRopeScaling, ggufRopeScaling } from '../lib/model/rope-scaling.js';
import { acrossConfigurations, ISAS, runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-rope-'));
const f = Math.fround;
type Llama3 = Extract<RopeScaling, { type: 'llama3' }>;
const LLAMA31: Llama3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof AtomaError ? e.code : `not an AtomaError: ${String(e)}`;
  }
  return 'no error';
}
async function codeAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof AtomaError ? e.code : `not an AtomaError: ${String(e)}`;
  }
  return 'no error';
}
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** transformers' Llama 3 smoothing in float64 from given unscaled frequencies: the scaled ones. */
function llama3Reference(inv: ArrayLike<number>, s: Llama3): number[] {
  const lowW = s.originalContextLength / s.lowFreqFactor, highW = s.originalContextLength / s.highFreqFactor;
  return Array.from(inv, (v) => {
    const w = (2 * Math.PI) / v;
    if (w < highW) return v;
    if (w > lowW) return v / s.factor;
    const sm = (s.originalContextLength / w - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - sm) * (v / s.factor) + sm * v;
  });
}
/** theta^(-2i/d) in float64. */
const exactInv = (d: number, theta: number) => Array.from({ length: d / 2 }, (_, i) => theta ** (-(2 * i) / d));

describe('scaled frequencies against float64', () => {
  it('linear: the kernel table is f32(base / factor), within 1e-6 of float64', () => {
    for (const [d, theta, factor] of [[128, 500000, 4], [64, 10000, 2.5], [16, 10000, 8]] as const) {
      const base = ropeInvFreqs(d, theta);
      const scaled = ropeInvFreqs(d, theta, new Float32Array(d / 2).fill(factor));
      const exact = exactInv(d, theta);
      for (let i = 0; i < d / 2; i++) {
        expect(scaled[i]).toBe(f(base[i] / f(factor)));
        expect(rel(scaled[i], base[i] / factor)).toBeLessThan(1e-6);
        // End to end (theta^(-2i/d) / factor in float64): the unscaled canonical frequency brings
        // its own error (a and b are rounded before the exp; measured below 7e-7 here).
        expect(rel(scaled[i], exact[i] / factor)).toBeLessThan(1e-6);
      }
    }
  });

  it('llama3 (Llama 3.1 parameters): divisors in [1, 8] and frequencies within 1e-6 of float64', () => {
    const d = 128, theta = 500000;
    const base = ropeInvFreqs(d, theta);
    const div = llama3Divisors(base, LLAMA31);
    const scaled = ropeInvFreqs(d, theta, div);
    const ref = llama3Reference(base, LLAMA31);
    const refExact = llama3Reference(exactInv(d, theta), LLAMA31);
    let smooth = 0;
    for (let i = 0; i < d / 2; i++) {
      expect(div[i]).toBeGreaterThanOrEqual(1);
      expect(div[i]).toBeLessThanOrEqual(8);
      if (div[i] > 1 && div[i] < 8) smooth++;
      expect(scaled[i]).toBe(f(base[i] / div[i]));
      expect(rel(scaled[i], ref[i]), `pair ${i}`).toBeLessThan(1e-6);
      expect(rel(scaled[i], refExact[i]), `pair ${i}`).toBeLessThan(1e-6);
    }
    // Long wavelengths scaled by the factor, short ones untouched, and a smoothed band between.
    expect(div[0]).toBe(1);
    expect(div[d / 2 - 1]).toBe(8);
    expect(smooth).toBeGreaterThan(2);
    // Divisors are non-decreasing with the wavelength.
    for (let i = 1; i < d / 2; i++) expect(div[i]).toBeGreaterThanOrEqual(div[i - 1]);
  });

  it('llama3 with a small original context puts many pairs in the smoothed band, still within 1e-6', () => {
    const s: Llama3 = { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 };
    const base = ropeInvFreqs(64, 10000);
    const scaled = ropeInvFreqs(64, 10000, llama3Divisors(base, s));
    const ref = llama3Reference(base, s);
    for (let i = 0; i < 32; i++) expect(rel(scaled[i], ref[i]), `pair ${i}`).toBeLessThan(1e-6);
  });

  it('the kernel rotates by angle = f32(pos * scaled inv_freq) with the canonical sin/cos, within 1e-6 of float64 angles', () => {
    const d = 32, heads = 2, positions = [0, 1, 7, 1000, 65535];
    const base = ropeInvFreqs(d, 10000);
    const div = llama3Divisors(base, { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 128 });
    const inv = ropeInvFreqs(d, 10000, div);
    const ref = llama3Reference(base, { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 128 });
    // x = (1, 0) in every pair: the output pair is (cos angle, sin angle).
    const x = new Float32Array(positions.length * heads * d);
    for (let i = 0; i < x.length; i += 2) x[i] = 1;
    const y = rope(new Tensor('f32', [positions.length, heads, d], x), positions, { theta: 10000, freqDivisors: div }).data;
    const angles = new Float32Array(positions.length * (d / 2));
    positions.forEach((p, t) => {
      for (let i = 0; i < d / 2; i++) {
        angles[t * (d / 2) + i] = f(p * inv[i]);
        if (p > 0) expect(rel(angles[t * (d / 2) + i], p * ref[i])).toBeLessThan(1e-6);
      }
    });
    const cos = unary('cos', new Tensor('f32', [angles.length], angles)).data;
    const sin = unary('sin', new Tensor('f32', [angles.length], angles)).data;
    positions.forEach((_, t) => {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < d / 2; i++) {
          const o = (t * heads + h) * d + 2 * i;
          expect(y[o]).toBe(cos[t * (d / 2) + i]);
          expect(y[o + 1]).toBe(sin[t * (d / 2) + i]);
        }
      }
    });
  });

  it('known answers (docs/canonical-arithmetic.md 5.1): Llama 3.1 divisors, frequencies and a rotation', () => {
    const div = llama3Divisors(ropeInvFreqs(128, 500000), LLAMA31);
    expect(new Tensor('f32', [64], div).digest()).toBe('fb546505056577b128139edb9e94a89cfddfa639d537e31883be98ebccff8317');
    expect(new Tensor('f32', [64], ropeInvFreqs(128, 500000, div)).digest()).toBe('68d28e89521d00284c8062d73f9674d21c1fe177f5850fd94d2d563fb254258e');
    expect(Array.from(div.subarray(28, 36))).toEqual([1, 1.2074836492538452, 1.5534145832061768, 2.0263123512268066, 2.6945290565490723, 3.684253215789795, 5.25732421875, 8]);
    const x = seeded([4, 2, 128], 7n);
    expect(rope(x, [0, 1, 8191, 100000], { theta: 500000, neox: true, freqDivisors: div }).digest()).toBe('f76baf1614ad689ba3897aec660fe09e7680d37beefb4776a7eee5cac829c0b6');
  });

  it('divisors of 1 give the unscaled bytes; other divisors change them', () => {
    const x = new Tensor('f32', [3, 2, 16], Float32Array.from({ length: 96 }, (_, i) => Math.sin(i)));
    const plain = rope(x, [0, 5, 300]).digest();
    expect(rope(x, [0, 5, 300], { freqDivisors: new Float32Array(8).fill(1) }).digest()).toBe(plain);
    expect(rope(x, [0, 5, 300], { freqDivisors: new Float32Array(8).fill(2) }).digest()).not.toBe(plain);
  });
});

describe('the same bytes on every ISA path and thread count', () => {
  it('this machine offers more than one path', () => expect(ISAS.length).toBeGreaterThan(1));

  it('rope with llama3 divisors', async () => {
    const div = llama3Divisors(ropeInvFreqs(64, 500000), LLAMA31);
    const x = new Tensor('f32', [9, 4, 128], Float32Array.from({ length: 9 * 4 * 128 }, (_, i) => Math.cos(i * 0.37)));
    const seen = await acrossConfigurations(() => rope(x, [0, 1, 2, 100, 4095, 8191, 8192, 100000, 1 << 24], { theta: 500000, rotDims: 64, neox: true, freqDivisors: div }).digest());
    expect([...seen.keys()]).toHaveLength(1);
  });
});

/** An HF checkpoint directory with the weights of init model `seed` and a chosen rope_scaling. */
function hfDir(name: string, seed: number, ropeScaling: unknown): string {
  const d = join(dir, name);
  mkdirSync(d);
  const spec = initModelSpec({ seed, layers: 1, format: 'f32' });
  const hf = (g: string): string => {
    const fixed: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
    const parts: Record<string, string> = {
      attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
      ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
    };
    if (fixed[g]) return fixed[g];
    const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(g)!;
    return `model.layers.${m[1]}.${parts[m[2]]}.weight`;
  };
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of spec.tensors) {
    header[hf(t.name)] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(d, 'model.safetensors'), Buffer.concat([len, Buffer.from(json), ...spec.tensors.map((t) => t.data)]));
  writeFileSync(join(d, 'config.json'), JSON.stringify({
    model_type: 'llama', vocab_size: 512, max_position_embeddings: 512, hidden_size: 64, num_hidden_layers: 1, intermediate_size: 192,
    num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, rope_scaling: ropeScaling,
  }));
  const meta = new Map(spec.metadata);
  const tokens = meta.get('tokenizer.ggml.tokens')!.value as string[];
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({
    added_tokens: tokens.slice(507).map((c, i) => ({ id: 507 + i, content: c, special: true })),
    normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true }, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', vocab: Object.fromEntries(tokens.slice(0, 507).map((t, i) => [t, i])), merges: meta.get('tokenizer.ggml.merges')!.value },
  }));
  return d;
}

/** Logits digest of a prompt of 40 tokens (positions beyond the smallest wavelengths). */
async function logitsDigest(path: string): Promise<string> {
  const model = new LlamaModel((await loadModel(path)).weights);
  const [logits] = model.forward([{ cache: model.newCache(), tokens: Array.from({ length: 40 }, (_, i) => (i * 37) % 500) }], { allLogits: true });
  return new Tensor('f32', [40, 512], logits).digest();
}

describe('models with RoPE scaling load and run', () => {
  const path = (n: string) => join(dir, n);
  beforeAll(() => {
    initModel(path('plain.gguf'), { seed: 11, layers: 1 });
    initModel(path('linear4.gguf'), { seed: 11, layers: 1, ropeScaling: 'linear:4' });
    initModel(path('llama3.gguf'), { seed: 11, layers: 1, ropeScaling: 'llama3:8:1:4:64' });
    initModel(path('yarn.gguf'), { seed: 11, layers: 1, ropeScaling: 'yarn:4' });
    // The same weights with rope_freqs.weight = 4 everywhere: must equal linear scaling by 4.
    const spec = initModelSpec({ seed: 11, layers: 1 });
    spec.tensors.push({ name: 'rope_freqs.weight', format: 'f32', shape: [8], data: new Uint8Array(new Float32Array(8).fill(4).buffer) });
    writeFileSync(path('freqs4.gguf'), encodeGguf(spec));
    const bad = initModelSpec({ seed: 11, layers: 1 });
    bad.tensors.push({ name: 'rope_freqs.weight', format: 'f32', shape: [8], data: new Uint8Array(new Float32Array(8).fill(0.5).buffer) });
    writeFileSync(path('freqs-bad.gguf'), encodeGguf(bad));
  });

  it('GGUF metadata: linear scaling is read and applied; rope_freqs of 4 gives the same bytes as linear x4', async () => {
    const linear = await loadModel(path('linear4.gguf'));
    expect(linear.weights.config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
    const [plain, lin, freqs] = await Promise.all(['plain.gguf', 'linear4.gguf', 'freqs4.gguf'].map((n) => logitsDigest(path(n))));
    expect(lin).not.toBe(plain);
    expect(freqs).toBe(lin);
  });

  it('a GGUF with a Llama 3 rope_freqs tensor loads, uses it, and matches the HF llama3 config of the same numbers', async () => {
    const m = await loadModel(path('llama3.gguf'));
    expect(m.weights.has('rope_freqs.weight')).toBe(true);
    const fromFile = ropeFreqDivisors(m.weights.config, m.weights)!;
    const s: Llama3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 };
    const fromConfig = ropeFreqDivisors({ ...m.weights.config, ropeScaling: s });
    expect(Array.from(fromFile)).toEqual(Array.from(fromConfig!));
    expect(fromFile.some((v) => v > 1 && v < 8)).toBe(true);
    expect(await logitsDigest(path('llama3.gguf'))).not.toBe(await logitsDigest(path('plain.gguf')));
  });

  it('safetensors configs with rope_scaling (linear, llama3) load and change the output; null and default do not', async () => {
    const none = await logitsDigest(hfDir('hf-none', 11, null));
    expect(await logitsDigest(hfDir('hf-default', 11, { rope_type: 'default' }))).toBe(none);
    const lin = hfDir('hf-linear', 11, { type: 'linear', factor: 4 });
    expect((await loadModel(lin)).weights.config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect(await logitsDigest(lin)).not.toBe(none);
    const l3 = hfDir('hf-llama3', 11, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 });
    const d3 = await logitsDigest(l3);
    expect(d3).not.toBe(none);
    expect(d3).not.toBe(await logitsDigest(lin));
  });

  it('the scaled models generate the same outputDigest and traceRoot under every ATOMA_ISA and thread count', () => {
    const runs = new Map<string, string[]>();
    for (const isa of ISAS) {
      for (const threads of ['1', '2']) {
        const r = runCli(['run', '--model', path('llama3.gguf'), '--prompt', 'the quick brown fox jumps over the lazy dog', '--max-tokens', '6', '--json'], { ATOMA_ISA: isa, ATOMA_THREADS: threads });
        expect(r.status, r.stderr).toBe(0);
        const o = JSON.parse(r.stdout) as { outputDigest: string; traceRoot: string };
        const k = `${o.outputDigest}/${o.traceRoot}`;
        runs.set(k, [...(runs.get(k) ?? []), `${isa}/${threads}`]);
      }
    }
    expect([...runs.entries()], 'distinct results').toHaveLength(1);
  }, 60_000);

  it('unsupported scalings are refused with ERR_MODEL_UNSUPPORTED, bad numbers with ERR_MODEL_FORMAT', async () => {
    expect(await codeAsync(loadModel(path('yarn.gguf')))).toBe('ERR_MODEL_UNSUPPORTED');
    for (const t of ['yarn', 'dynamic', 'longrope', 'something-new']) {
      expect(code(() => hfRopeScaling({ rope_type: t, factor: 4 }, 'config.json')), t).toBe('ERR_MODEL_UNSUPPORTED');
      expect(code(() => ggufRopeScaling(t, 4, 'x.gguf')), t).toBe('ERR_MODEL_UNSUPPORTED');
    }
    expect(await codeAsync(loadModel(hfDir('hf-yarn', 11, { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 256 })))).toBe('ERR_MODEL_UNSUPPORTED');
    expect(code(() => hfRopeScaling({ type: 'linear', factor: 0.5 }, 'c'))).toBe('ERR_MODEL_FORMAT');
    expect(code(() => hfRopeScaling({ type: 'linear' }, 'c'))).toBe('ERR_MODEL_FORMAT');
    expect(code(() => hfRopeScaling({ rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 }, 'c'))).toBe('ERR_MODEL_FORMAT');
    // llama.cpp's reading of GGUF metadata: absent type means linear, type none never scales.
    expect(ggufRopeScaling(undefined, 2, 'g')).toEqual({ type: 'linear', factor: 2 });
    expect(ggufRopeScaling('none', 2, 'g')).toEqual({ type: 'none' });
    expect(ggufRopeScaling('linear', undefined, 'g')).toEqual({ type: 'none' });
    // A rope_freqs divisor below 1 would push angles past the position (and the sin/cos domain).
    const bad = await loadModel(path('freqs-bad.gguf'));
    expect(code(() => new LlamaModel(bad.weights))).toBe('ERR_MODEL_FORMAT');
    expect(code(() => parseRopeScaling('cubic:2'))).toBe('ERR_USAGE');
  });

  it('atoma model init --rope-scaling / --rope-theta write what model inspect reads back', () => {
    const out = path('cli-linear.gguf');
    const w = runCli(['model', 'init', '--seed', '3', '--out', out, '--rope-scaling', 'linear:2.5', '--rope-theta', '500000']);
    expect(w.status, w.stderr).toBe(0);
    const r = runCli(['model', 'inspect', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const cfg = (JSON.parse(r.stdout) as { config: { ropeScaling: unknown; ropeFreqBase: number } }).config;
    expect(cfg.ropeScaling).toEqual({ type: 'linear', factor: 2.5 });
    expect(cfg.ropeFreqBase).toBe(500000);
    const bad = runCli(['model', 'init', '--seed', '3', '--out', path('cli-bad.gguf'), '--rope-scaling', 'linear:x']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('ERR_USAGE');
  });

  it('the kernel checks divisors itself: count and range', () => {
    const x = new Tensor('f32', [1, 1, 8], new Float32Array(8).fill(1));
    expect(code(() => rope(x, [3], { freqDivisors: [1, 2, 3] }))).toBe('ERR_SHAPE');
    expect(code(() => rope(x, [3], { freqDivisors: [1, 2, 0.5, 4] }))).toBe('ERR_RANGE');
    expect(code(() => rope(x, [3], { freqDivisors: [1, 2, NaN, 4] }))).toBe('ERR_RANGE');
    expect(code(() => rope(x, [3], { freqDivisors: [1, 2, Infinity, 4] }))).toBe('ERR_RANGE');
  });
});
