/**
 * The Llama-family forward pass over canonical kernels. Read top to bottom it is the model:
 *
 *   x = embed(tokens)
 *   per layer:  h = rmsnorm(x) ; q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)
 *               rope(q), rope(k) at each row's position ; append k, v to the request's cache
 *               a = causal GQA attention of q against the cache ; x = x + a Wo^T
 *               h = rmsnorm(x) ; x = x + (silu(h Wgate^T) * (h Wup^T)) Wdown^T
 *   logits = rmsnorm(x) Wout^T   (Wout = token_embd when tied)
 *
 * Several requests run in one pass: their rows are stacked into every matmul and norm, and only
 * attention is split per request (each against its own cache). Every kernel here is
 * row-independent (a row's bytes never depend on the other rows, on M, on the ISA or threads), so
 * a request computes the same bytes alone or batched, prefilled at once or in chunks.
 */
import { fail } from '../engine/errors.js';
import { brief } from '../engine/brief.js';
import { native } from '../engine/native.js';
import { KvCache } from './kv-cache.js';
import { decodeLayoutPreferred, linear, linearMany, swiglu, widenRows, widenVector, type MatrixWeight } from './linear.js';
import { packedMatrices, type PackSource } from './packed-weights.js';
import { ropeFreqDivisors } from './rope-scaling.js';
import type { LlamaConfig, ModelWeights, Weight } from './types.js';

/** New tokens of one request for one forward pass; they take positions cache.length, ... */
export interface Segment {
  cache: KvCache;
  tokens: readonly number[];
}

export interface ForwardOptions {
  /** Logits of every new row (true) or of each segment's last row only (default). */
  allLogits?: boolean;
  /** Called with each layer's output rows [n, D] of each segment (for the trace); the view is reused
   *  by the next layer, so copy what must outlive the call. */
  onLayer?: (segment: number, layer: number, rows: Float32Array) => void;
}

/** One block's weights: norms and biases widened to f32, matrices as stored (or in a decode layout). */
export interface LayerWeights {
  attnNorm: Float32Array;
  q: MatrixWeight; k: MatrixWeight; v: MatrixWeight; o: MatrixWeight;
  qBias: Float32Array | null; kBias: Float32Array | null; vBias: Float32Array | null;
  ffnNorm: Float32Array;
  gate: MatrixWeight; up: MatrixWeight; down: MatrixWeight;
}

/** The matrices one pass multiplies by: the stored ones, or their decode layout. */
interface Matrices {
  layers: LayerWeights[];
  out: MatrixWeight;
}

export interface LlamaModelOptions {
  /**
   * Cache directory for the decode layout's sidecar file (default: ATOMA_CACHE_DIR or
   * ~/.cache/atoma); null packs it into memory instead. Used only where decodeLayoutPreferred().
   */
  packedCacheDir?: string | null;
}

/** Where the decode layout of a model's q8_0 / f32 matrices lives (LlamaModel.packedWeights). */
export interface PackedWeightsInfo {
  /** The memory-mapped sidecar, or null when packed into memory. */
  file: string | null;
  /** Whether this model wrote the sidecar (false: reused one, or packed into memory). */
  built: boolean;
  /** Matrices in the decode layout. */
  count: number;
}

const BIN_ADD = 0;

/**
 * Grow-only intermediate buffers of one forward pass, reused pass after pass: a decode step
 * would otherwise allocate a dozen typed arrays per layer, a visible share of its few ms.
 */
class Scratch {
  readonly #bufs = new Map<string, Float32Array>();
  /** A zero-offset view of exactly n floats (contents undefined: every user overwrites it). */
  get(name: string, n: number): Float32Array {
    let b = this.#bufs.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.#bufs.set(name, b);
    }
    return b.length === n ? b : b.subarray(0, n);
  }
}

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly #embd: Weight;
  readonly #out: Weight;
  readonly #outNorm: Float32Array;
  readonly #layers: LayerWeights[];
  #packed: (PackedWeightsInfo & { mats: Matrices }) | null = null;   // the decode layout, made once
  readonly #packedCacheDir: string | null | undefined;
  /** Per-pair RoPE frequency divisors (scaling, rope_freqs.weight), or null: computed once. */
  readonly #ropeDiv: Float32Array | null;
  readonly #scratch = new Scratch();
  #busy = false;   // a pass is using #scratch (a callback may re-enter forward or layer)

  /**
   * @example
   * const model = new LlamaModel((await loadModel('tiny.gguf')).weights);
   * const cache = model.newCache();
   * const [logits] = model.forward([{ cache, tokens: [1, 2, 3] }]);
   */
  constructor(readonly weights: ModelWeights, opts: LlamaModelOptions = {}) {
    const c = weights.config;
    if (c.architecture !== 'llama') fail('ERR_MODEL_UNSUPPORTED', `architecture ${brief(c.architecture)} is not supported`);
    if (c.headCount % c.headCountKv !== 0) fail('ERR_MODEL_SHAPE', 'attention heads must be a multiple of KV heads');
    this.config = c;
    this.#embd = weights.get('token_embd.weight');
    this.#out = c.tiedEmbeddings ? this.#embd : weights.get('output.weight');
    this.#outNorm = widenVector(weights.get('output_norm.weight'));
    this.#ropeDiv = ropeFreqDivisors(c, weights);
    this.#layers = [];
    for (let i = 0; i < c.blockCount; i++) {
      const g = (s: string) => weights.get(`blk.${i}.${s}`);
      const bias = (s: string) => (c.attentionBias ? widenVector(g(s)) : null);
      this.#layers.push({
        attnNorm: widenVector(g('attn_norm.weight')),
        q: g('attn_q.weight'), k: g('attn_k.weight'), v: g('attn_v.weight'), o: g('attn_output.weight'),
        qBias: bias('attn_q.bias'), kBias: bias('attn_k.bias'), vBias: bias('attn_v.bias'),
        ffnNorm: widenVector(g('ffn_norm.weight')),
        gate: g('ffn_gate.weight'), up: g('ffn_up.weight'), down: g('ffn_down.weight'),
      });
    }
    this.#packedCacheDir = opts.packedCacheDir;
    // At load, not at the first pass: the sidecar is built (or checked) as part of loading.
    if (decodeLayoutPreferred()) this.#pack();
  }

  /**
   * @internal The weights in their stored layout, as read by a pass: what the device-resident pass
   * (device-llama.ts) uploads once. The head is token_embd itself when the embeddings are tied.
   */
  get storedWeights(): { layers: readonly LayerWeights[]; out: MatrixWeight; outNorm: Float32Array; ropeDivisors: Float32Array | null } {
    return { layers: this.#layers, out: this.#out, outNorm: this.#outNorm, ropeDivisors: this.#ropeDiv };
  }

  /** Where the decode layout lives, or null while the model reads its stored layout only. */
  get packedWeights(): PackedWeightsInfo | null {
    if (!this.#packed || this.#packed.count === 0) return null;
    const { file, built, count } = this.#packed;
    return { file, built, count };
  }

  /**
   * An empty cache for one request. `positions`, when the caller knows how many positions the
   * request will hold (prompt + tokens to generate), sizes it once: no growth copies, no slack.
   */
  newCache(positions?: number): KvCache {
    const c = this.config;
    return new KvCache(c.blockCount, c.headCountKv * c.headDim, c.contextLength, positions);
  }

  /** Embedding rows of `tokens` (exact widening of the stored table rows). */
  embed(tokens: readonly number[]): Float32Array {
    const D = this.config.embeddingLength, V = this.config.vocabSize;
    const x = new Float32Array(tokens.length * D);
    tokens.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= V) fail('ERR_RANGE', `token id ${t} is outside the vocabulary 0..${V - 1}`);
      widenRows(this.#embd, t, 1, x.subarray(i * D, (i + 1) * D));
    });
    return x;
  }

  /**
   * One forward pass over the new tokens of several requests; commits their K/V to the caches.
   * Returns per segment the logits [rows, vocab] of its last row (or of all rows).
   */
  forward(segments: readonly Segment[], opts: ForwardOptions = {}): Float32Array[] {
    const D = this.config.embeddingLength;
    if (segments.length === 0) return [];
    const spans = segments.map((s) => {
      if (s.tokens.length === 0) fail('ERR_ARGUMENT', 'a segment needs at least one token');
      return { cache: s.cache, n: s.tokens.length };
    });
    if (new Set(spans.map((s) => s.cache)).size !== spans.length) fail('ERR_ARGUMENT', 'two segments of one pass share a cache');
    for (const s of spans) s.cache.reserve(s.n);
    let x = this.embed(segments.flatMap((s) => s.tokens));
    const T = x.length / D;
    const own = !this.#busy;
    const scratch = own ? this.#scratch : new Scratch();
    this.#busy = true;
    try {
      const mats = this.#matrices();
      for (let l = 0; l < this.#layers.length; l++) {
        // Layer outputs ping-pong between two buffers; onLayer sees rows valid only during the call.
        x = this.#layer(l, x, spans, scratch.get(l % 2 ? 'xb' : 'xa', T * D), scratch, mats);
        if (opts.onLayer) {
          let row = 0;
          spans.forEach((s, i) => {
            opts.onLayer!(i, l, x.subarray(row * D, (row + s.n) * D));
            row += s.n;
          });
        }
      }
    } finally {
      if (own) this.#busy = false;
    }
    for (const s of spans) s.cache.advance(s.n);
    // The head runs only on the rows whose logits are wanted (row-independent, so no difference).
    const picks: number[] = [];
    let row = 0;
    for (const s of spans) {
      for (let i = opts.allLogits ? 0 : s.n - 1; i < s.n; i++) picks.push(row + i);
      row += s.n;
    }
    const h = new Float32Array(picks.length * D);
    picks.forEach((r, i) => h.set(x.subarray(r * D, (r + 1) * D), i * D));
    const logits = this.head(h, picks.length);
    const V = this.config.vocabSize;
    const out: Float32Array[] = [];
    let at = 0;
    for (const s of spans) {
      const rows = opts.allLogits ? s.n : 1;
      out.push(logits.subarray(at * V, (at + rows) * V));
      at += rows;
    }
    return out;
  }

  /** Final norm and output head for `rows` rows of hidden state. */
  head(x: Float32Array, rows: number): Float32Array {
    const D = this.config.embeddingLength;
    const h = new Float32Array(rows * D);
    native.rmsnorm(x, this.#outNorm, h, rows, D, this.config.rmsNormEps);
    return linear(h, rows, this.#matrices().out);
  }

  /**
   * The matrices for a pass. On a path with fused kernels for them (decodeLayoutPreferred), q8_0
   * and f32 matrices are read in their decode layouts for EVERY pass, prefill included (the same
   * values, so the same bytes; faster decode), so their stored pages are never touched after
   * load and only one copy is resident. Elsewhere the stored layout is read.
   */
  #matrices(): Matrices {
    if (!decodeLayoutPreferred()) return { layers: this.#layers, out: this.#out };
    return this.#pack().mats;
  }

  /** The decode layout: mapped from the model's sidecar (packed-weights.ts), or packed in memory. */
  #pack(): PackedWeightsInfo & { mats: Matrices } {
    if (this.#packed) return this.#packed;
    const all: MatrixWeight[] = [this.#out];
    for (const w of this.#layers) all.push(w.q, w.k, w.v, w.o, w.gate, w.up, w.down);
    const stored = all.filter((w): w is Weight => w.format === 'q8_0' || w.format === 'f32');
    const source = (this.weights as { source?: PackSource | null }).source ?? null;
    const p = packedMatrices(stored, source, { cacheDir: this.#packedCacheDir });
    const pick = (w: MatrixWeight): MatrixWeight => p.matrices.get(w.name) ?? w;
    this.#packed = {
      file: p.file, built: p.built, count: p.matrices.size,
      mats: {
        layers: this.#layers.map((w) => ({ ...w, q: pick(w.q), k: pick(w.k), v: pick(w.v), o: pick(w.o), gate: pick(w.gate), up: pick(w.up), down: pick(w.down) })),
        out: pick(this.#out),
      },
    };
    return this.#packed;
  }

  /**
   * One transformer block over stacked rows: spans[i] owns the next spans[i].n rows, at positions
   * cache.length.. of its cache. Writes this layer's K/V rows into the caches (not committed).
   */
  layer(l: number, x: Float32Array, spans: readonly { cache: KvCache; n: number }[]): Float32Array {
    const out = new Float32Array(x.length);   // a wrong length fails in #layer before any write
    const own = !this.#busy;
    this.#busy = true;
    try {
      return this.#layer(l, x, spans, out, own ? this.#scratch : new Scratch(), this.#matrices());
    } finally {
      if (own) this.#busy = false;
    }
  }

  /** layer() writing its output rows to `out` ([T, D], not aliasing x), intermediates in `s`. */
  #layer(l: number, x: Float32Array, spans: readonly { cache: KvCache; n: number }[], out: Float32Array, sc: Scratch, mats: Matrices): Float32Array {
    const c = this.config, w = mats.layers[l];
    if (!w) fail('ERR_RANGE', `layer ${l} is outside 0..${c.blockCount - 1}`);
    const D = c.embeddingLength, H = c.headCount, G = c.headCountKv, hd = c.headDim, F = c.feedForwardLength;
    const T = spans.reduce((a, s) => a + s.n, 0);
    if (x.length !== T * D) fail('ERR_SHAPE', `layer input has ${x.length} values, expected ${T} x ${D}`);
    const positions = new Int32Array(T);
    {
      let r = 0;
      for (const s of spans) for (let i = 0; i < s.n; i++) positions[r++] = s.cache.length + i;
    }

    // Attention.
    const h = sc.get('h', T * D);
    native.rmsnorm(x, w.attnNorm, h, T, D, c.rmsNormEps);
    const [q, k, v] = linearMany(h, T, [w.q, w.k, w.v], [w.qBias, w.kBias, w.vBias],
      [sc.get('q', T * w.q.shape[0]), sc.get('k', T * w.k.shape[0]), sc.get('v', T * w.v.shape[0])]);
    native.rope(q, T, H, hd, c.ropeDims, positions, c.ropeFreqBase, c.ropeNeox, this.#ropeDiv);
    native.rope(k, T, G, hd, c.ropeDims, positions, c.ropeFreqBase, c.ropeNeox, this.#ropeDiv);
    const attn = sc.get('attn', T * H * hd);
    let r = 0;
    for (const sp of spans) {
      const kvw = G * hd, qw = H * hd;
      sp.cache.write(l, k.subarray(r * kvw, (r + sp.n) * kvw), v.subarray(r * kvw, (r + sp.n) * kvw), sp.n);
      const upTo = sp.cache.length + sp.n;
      native.attention(q.subarray(r * qw, (r + sp.n) * qw), sp.n, H, sp.cache.keys(l, upTo), sp.cache.values(l, upTo),
        upTo, G, hd, positions.subarray(r, r + sp.n), attn.subarray(r * qw, (r + sp.n) * qw), false);
      r += sp.n;
    }
    const o = linear(attn, T, w.o, null, sc.get('o', T * D));
    const x1 = sc.get('x1', T * D);
    native.binary(BIN_ADD, x, o, x1);

    // SwiGLU MLP.
    native.rmsnorm(x1, w.ffnNorm, h, T, D, c.rmsNormEps);
    const act = swiglu(h, T, w.gate, w.up, { gate: sc.get('gate', T * F), up: sc.get('up', T * F), act: sc.get('act', T * F) });
    const down = linear(act, T, w.down, null, sc.get('down', T * D));
    native.binary(BIN_ADD, x1, down, out);
    return out;
  }
}
