/** Tiny seeded Llama models built in memory (GGUF tensor names) and a float64 reference forward. */
import { NamedWeights } from '../lib/model/weights.js';
import { widenRows } from '../lib/model/linear.js';
import type { LlamaConfig, Weight, WeightFormat } from '../lib/model/types.js';

/** xorshift-based bytes: the test data only needs to be reproducible, not canonical. */
function rng(seed: number) {
  let s = (seed * 0x9e3779b1) >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Half bits of a value whose magnitude is about 2^e (random mantissa and sign). */
function halfBits(r: () => number, e: number): number {
  const exp = Math.max(1, Math.min(30, e + 15 - Math.floor(r() * 3)));
  return (r() < 0.5 ? 0x8000 : 0) | (exp << 10) | Math.floor(r() * 1024);
}

export function makeWeight(name: string, format: WeightFormat, shape: number[], seed: number, scale = 0.1): Weight {
  const r = rng(seed);
  const k = shape[shape.length - 1], rows = shape.length === 1 ? 1 : shape[0];
  const e = Math.round(Math.log2(scale));
  let bytes: Uint8Array;
  if (format === 'f32') {
    const f = new Float32Array(rows * k);
    for (let i = 0; i < f.length; i++) f[i] = (r() * 2 - 1) * scale;
    bytes = new Uint8Array(f.buffer);
  } else if (format === 'f16' || format === 'bf16') {
    const u = new Uint16Array(rows * k);
    for (let i = 0; i < u.length; i++) {
      const h = halfBits(r, e);
      // bf16: sign, 8-bit exponent, 7-bit mantissa of a similar magnitude.
      u[i] = format === 'f16' ? h : (h & 0x8000) | ((((h >> 10) & 31) - 15 + 127) << 7) | ((h >> 3) & 0x7f);
    }
    bytes = new Uint8Array(u.buffer);
  } else {
    bytes = new Uint8Array(rows * (k / 32) * 34);
    const dv = new DataView(bytes.buffer);
    for (let b = 0; b < rows * (k / 32); b++) {
      dv.setUint16(b * 34, (0x0000) | ((Math.max(1, e - 7 + 15)) << 10) | Math.floor(r() * 1024), true);
      for (let i = 0; i < 32; i++) dv.setInt8(b * 34 + 2 + i, Math.floor(r() * 255) - 127);
    }
  }
  return { name, format, shape, bytes };
}

export function tinyConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    architecture: 'llama', vocabSize: 96, contextLength: 128, embeddingLength: 64, blockCount: 2,
    feedForwardLength: 96, headCount: 4, headCountKv: 2, headDim: 16, rmsNormEps: 1e-5,
    ropeFreqBase: 10000, ropeDims: 16, ropeNeox: false, tiedEmbeddings: false, attentionBias: false, ...over,
  };
}

/** A complete seeded model; matrices in `format`, norms in f32 (as GGUF files store them). */
export function tinyModel(format: WeightFormat = 'f32', over: Partial<LlamaConfig> = {}, seed = 1): NamedWeights {
  const c = tinyConfig(over);
  const D = c.embeddingLength, H = c.headCount, G = c.headCountKv, hd = c.headDim, F = c.feedForwardLength, V = c.vocabSize;
  const m = new Map<string, Weight>();
  let s = seed * 1000;
  const add = (name: string, fmt: WeightFormat, shape: number[], scale = 0.1) => m.set(name, makeWeight(name, fmt, shape, ++s, scale));
  const norm = (name: string, n: number) => {
    const w = makeWeight(name, 'f32', [n], ++s, 0.2);
    const f = new Float32Array(w.bytes.buffer);
    for (let i = 0; i < n; i++) f[i] += 1;
    m.set(name, w);
  };
  add('token_embd.weight', format, [V, D], 0.5);
  norm('output_norm.weight', D);
  if (!c.tiedEmbeddings) add('output.weight', format, [V, D], 0.2);
  for (let i = 0; i < c.blockCount; i++) {
    const b = `blk.${i}.`;
    norm(`${b}attn_norm.weight`, D);
    add(`${b}attn_q.weight`, format, [H * hd, D], 0.2);
    add(`${b}attn_k.weight`, format, [G * hd, D], 0.2);
    add(`${b}attn_v.weight`, format, [G * hd, D], 0.2);
    add(`${b}attn_output.weight`, format, [D, H * hd], 0.1);
    norm(`${b}ffn_norm.weight`, D);
    add(`${b}ffn_gate.weight`, format, [F, D], 0.2);
    add(`${b}ffn_up.weight`, format, [F, D], 0.2);
    add(`${b}ffn_down.weight`, format, [D, F], 0.1);
    if (c.attentionBias) {
      add(`${b}attn_q.bias`, 'f32', [H * hd], 0.1);
      add(`${b}attn_k.bias`, 'f32', [G * hd], 0.1);
      add(`${b}attn_v.bias`, 'f32', [G * hd], 0.1);
    }
  }
  return new NamedWeights(c, m, 'tiny');
}

/** float64 reference forward of a whole sequence: logits [T][V] (plain math, not canonical). */
export function referenceLogits(w: NamedWeights, tokens: number[]): Float64Array[] {
  const c = w.config;
  const D = c.embeddingLength, H = c.headCount, G = c.headCountKv, hd = c.headDim, F = c.feedForwardLength, V = c.vocabSize;
  const mat = (name: string) => {
    const wt = w.get(name);
    return { rows: wt.shape[0], k: wt.shape[wt.shape.length - 1], data: Float64Array.from(widenRows(wt, 0, wt.shape.length === 1 ? 1 : wt.shape[0])) };
  };
  const lin = (x: Float64Array, name: string, bias?: string) => {
    const m = mat(name), b = bias ? mat(bias).data : null;
    const y = new Float64Array(m.rows);
    for (let j = 0; j < m.rows; j++) {
      let s = 0;
      for (let k = 0; k < m.k; k++) s += x[k] * m.data[j * m.k + k];
      y[j] = s + (b ? b[j] : 0);
    }
    return y;
  };
  const rms = (x: Float64Array, name: string) => {
    const g = mat(name).data;
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + c.rmsNormEps);
    return x.map((v, i) => v * r * g[i]);
  };
  const rope = (x: Float64Array, heads: number, pos: number) => {
    const rot = c.ropeDims;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < rot / 2; i++) {
        const ang = pos * Math.pow(c.ropeFreqBase, -(2 * i) / rot);
        const [a, b] = c.ropeNeox ? [i, i + rot / 2] : [2 * i, 2 * i + 1];
        const x0 = x[h * hd + a], x1 = x[h * hd + b];
        x[h * hd + a] = x0 * Math.cos(ang) - x1 * Math.sin(ang);
        x[h * hd + b] = x0 * Math.sin(ang) + x1 * Math.cos(ang);
      }
    }
  };
  const embd = mat('token_embd.weight');
  let xs = tokens.map((t) => Float64Array.from(embd.data.subarray(t * D, (t + 1) * D)));
  for (let l = 0; l < c.blockCount; l++) {
    const b = `blk.${l}.`;
    const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
    xs.forEach((x, p) => {
      const h = rms(x, `${b}attn_norm.weight`);
      const bias = c.attentionBias;
      const q = lin(h, `${b}attn_q.weight`, bias ? `${b}attn_q.bias` : undefined);
      const k = lin(h, `${b}attn_k.weight`, bias ? `${b}attn_k.bias` : undefined);
      rope(q, H, p);
      rope(k, G, p);
      qs.push(q); ks.push(k); vs.push(lin(h, `${b}attn_v.weight`, bias ? `${b}attn_v.bias` : undefined));
    });
    xs = xs.map((x, p) => {
      const att = new Float64Array(H * hd);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / G));
        const s: number[] = [];
        for (let j = 0; j <= p; j++) {
          let d = 0;
          for (let e = 0; e < hd; e++) d += qs[p][h * hd + e] * ks[j][g * hd + e];
          s.push(d / Math.sqrt(hd));
        }
        const mx = Math.max(...s), ex = s.map((v) => Math.exp(v - mx)), z = ex.reduce((a, v) => a + v, 0);
        for (let j = 0; j <= p; j++) for (let e = 0; e < hd; e++) att[h * hd + e] += (ex[j] / z) * vs[j][g * hd + e];
      }
      const o = lin(att, `${b}attn_output.weight`);
      const x1 = x.map((v, i) => v + o[i]);
      const h2 = rms(x1, `${b}ffn_norm.weight`);
      const g = lin(h2, `${b}ffn_gate.weight`), u = lin(h2, `${b}ffn_up.weight`);
      const a = new Float64Array(F);
      for (let i = 0; i < F; i++) a[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
      const d = lin(a, `${b}ffn_down.weight`);
      return x1.map((v, i) => v + d[i]);
    });
  }
  const out = c.tiedEmbeddings ? 'token_embd.weight' : 'output.weight';
  return xs.map((x) => {
    const y = lin(rms(x, 'output_norm.weight'), out);
    if (y.length !== V) throw new Error('bad head');
    return y;
  });
}
