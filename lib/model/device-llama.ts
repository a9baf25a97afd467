/**
 * The forward pass of llama.ts with every activation resident on the GPU. The weights are
 * uploaded once per model (widened exactly to f32, their canonical value), each request's K/V
 * cache lives in device memory, and a pass uploads only its token embeddings and positions: no
 * activation crosses PCIe. Trace leaves are hashed on the device (the caller queues them from
 * onLayer) and generate.ts samples on the device, so a decode step brings back one token and the
 * step's 32-byte leaves.
 *
 * It runs the same kernels in the same order as LlamaModel.forward (rmsnorm, the products with
 * their biases, RoPE, the cache append, causal attention per request, the residual adds, silu
 * then mul), each of them bit-identical on CUDA and CPU, so a request's tokens, outputDigest and
 * traceRoot are those of the CPU path, alone or batched, whole or chunked.
 */
import { fail } from '../engine/errors.js';
import { gpu, type DeviceAddon, type NativeDeviceTensor } from '../engine/device-tensor.js';
import { grownCapacity } from './kv-cache.js';
import type { LlamaModel } from './llama.js';
import type { MatrixWeight } from './linear.js';
import type { LlamaConfig } from './types.js';

type H = NativeDeviceTensor;

const ADD = 0, MUL = 1, SILU = 5;

/** One request's K and V rows of every layer, in device memory. */
export class DeviceKvCache {
  #k: H[];
  #v: H[];
  #length = 0;
  #capacity: number;

  constructor(readonly layers: number, readonly rowWidth: number, readonly maxPositions: number, capacity: number) {
    const g = gpu();
    this.#capacity = Math.max(1, Math.min(capacity, maxPositions));
    this.#k = Array.from({ length: layers }, () => g.dtZeros([this.#capacity, rowWidth]));
    this.#v = Array.from({ length: layers }, () => g.dtZeros([this.#capacity, rowWidth]));
  }

  /** Positions committed so far. */
  get length(): number {
    return this.#length;
  }

  /** Makes room for n more positions (doubling; generate sizes its caches exactly, so never). */
  reserve(n: number): void {
    const cap = grownCapacity(this.#length + n, this.#capacity, this.maxPositions);
    if (cap === this.#capacity) return;
    const g = gpu();
    const grow = (old: H): H => {
      const t = g.dtZeros([cap, this.rowWidth]);
      g.dtWriteRows(t, 0, old, 0, this.#length, this.rowWidth);
      old.free();
      return t;
    };
    this.#k = this.#k.map(grow);
    this.#v = this.#v.map(grow);
    this.#capacity = cap;
  }

  /** Writes rows [first, first + n) of k and v as positions length.. of one layer (reserve first). */
  write(layer: number, k: H, v: H, first: number, n: number): void {
    const g = gpu();
    g.dtWriteRows(this.#k[layer], this.#length, k, first, n, this.rowWidth);
    g.dtWriteRows(this.#v[layer], this.#length, v, first, n, this.rowWidth);
  }

  keys(layer: number): H {
    return this.#k[layer];
  }
  values(layer: number): H {
    return this.#v[layer];
  }

  /** Commits n positions written to every layer. */
  advance(n: number): void {
    this.#length += n;
  }

  /** Frees the device memory now (GC would, later). */
  dispose(): void {
    for (const t of [...this.#k, ...this.#v]) t.free();
  }
}

/** New tokens of one request for one device pass. */
export interface DeviceSegment {
  cache: DeviceKvCache;
  tokens: readonly number[];
}

/** Called with each layer's output x [T, D] and a segment's rows [first, first + rows) of it. */
export type DeviceLayerHook = (segment: number, layer: number, x: H, first: number, rows: number) => void;

interface DeviceLayer {
  attnNorm: H; q: H; k: H; v: H; o: H;
  qBias: H | null; kBias: H | null; vBias: H | null;
  ffnNorm: H; gate: H; up: H; down: H;
}

const resident = new WeakMap<LlamaModel, DeviceLlama>();

export class DeviceLlama {
  readonly config: LlamaConfig;
  readonly #g: DeviceAddon;
  readonly #layers: DeviceLayer[];
  readonly #out: H;
  readonly #outNorm: H;
  readonly #ropeDiv: Float32Array | null;
  readonly #devRopeDiv: H | null;

  /**
   * The model's weights on the GPU, uploaded at the first call and kept while the model lives.
   *
   * @example
   * const dm = DeviceLlama.of(model);
   * const cache = dm.newCache(prompt.length + maxTokens - 1);
   * const logits = dm.forward([{ cache, tokens: prompt }]);   // [1, vocab] on the device
   */
  static of(model: LlamaModel): DeviceLlama {
    let d = resident.get(model);
    if (!d) {
      d = new DeviceLlama(model);
      resident.set(model, d);
    }
    return d;
  }

  private constructor(readonly model: LlamaModel) {
    const g = (this.#g = gpu());
    this.config = model.config;
    const w = model.storedWeights;
    const mats = new Map<MatrixWeight, H>();   // token_embd serves as the head when tied: once
    const mat = (m: MatrixWeight): H => {
      let t = mats.get(m);
      if (!t) {
        if (m.shape.length !== 2) fail('ERR_MODEL_SHAPE', `${m.name}: a matrix weight needs 2 dimensions, got [${m.shape.join(', ')}]`);
        t = g.dtUploadWeight(m.bytes, m.format, m.shape[0], m.shape[1]);
        mats.set(m, t);
      }
      return t;
    };
    const vec = (v: Float32Array): H => g.dtUploadSync(v, [v.length]);
    const opt = (v: Float32Array | null): H | null => (v ? vec(v) : null);
    this.#layers = w.layers.map((l) => ({
      attnNorm: vec(l.attnNorm), q: mat(l.q), k: mat(l.k), v: mat(l.v), o: mat(l.o),
      qBias: opt(l.qBias), kBias: opt(l.kBias), vBias: opt(l.vBias),
      ffnNorm: vec(l.ffnNorm), gate: mat(l.gate), up: mat(l.up), down: mat(l.down),
    }));
    this.#out = mat(w.out);
    this.#outNorm = vec(w.outNorm);
    this.#ropeDiv = w.ropeDivisors;
    this.#devRopeDiv = w.ropeDivisors ? vec(w.ropeDivisors) : null;
  }

  /** An empty device cache for one request of up to `positions` positions. */
  newCache(positions: number): DeviceKvCache {
    const c = this.config;
    return new DeviceKvCache(c.blockCount, c.headCountKv * c.headDim, c.contextLength, positions);
  }

  /**
   * One pass over the new tokens of several requests; commits their K/V to the caches. Returns
   * the logits [segments, vocab] of each segment's last row, on the device (the caller frees it).
   */
  forward(segments: readonly DeviceSegment[], onLayer?: DeviceLayerHook): H {
    const g = this.#g, c = this.config;
    const D = c.embeddingLength, H = c.headCount, G = c.headCountKv, hd = c.headDim, F = c.feedForwardLength, V = c.vocabSize;
    if (segments.length === 0) fail('ERR_ARGUMENT', 'a pass needs at least one segment');
    if (new Set(segments.map((s) => s.cache)).size !== segments.length) fail('ERR_ARGUMENT', 'two segments of one pass share a cache');
    for (const s of segments) if (s.tokens.length === 0) fail('ERR_ARGUMENT', 'a segment needs at least one token');
    const tokens = segments.flatMap((s) => s.tokens);
    const hostX = this.model.embed(tokens);   // exact widening of the table rows; checks the ids
    for (const s of segments) s.cache.reserve(s.tokens.length);
    const T = tokens.length, qw = H * hd, kvw = G * hd;
    const positions = new Int32Array(T);
    const firstRow: number[] = [];
    {
      let r = 0;
      for (const s of segments) {
        firstRow.push(r);
        for (let i = 0; i < s.tokens.length; i++) positions[r++] = s.cache.length + i;
      }
    }
    const product = (x: H, w: H, rows: number, n: number, k: number, bias: H | null = null): H => g.dtGemm(x, w, rows, n, k, true, bias, [rows, n]);
    const eps = c.rmsNormEps;

    // A pageable upload waits for the stream, so a pass makes two (embeddings, positions as int32
    // bits) and every kernel after them only queues.
    let x = g.dtUploadSync(hostX, [T, D]);
    const devPos = g.dtUploadSync(new Float32Array(positions.buffer, positions.byteOffset, T), [T]);
    this.#layers.forEach((w, l) => {
      // Attention.
      const h = g.dtRmsnorm(x, w.attnNorm, T, D, eps);
      const q0 = product(h, w.q, T, qw, D, w.qBias), k0 = product(h, w.k, T, kvw, D, w.kBias), v = product(h, w.v, T, kvw, D, w.vBias);
      h.free();
      const q = g.dtRope(q0, T, H, hd, c.ropeDims, positions, c.ropeFreqBase, c.ropeNeox, this.#ropeDiv, devPos, this.#devRopeDiv);
      const k = g.dtRope(k0, T, G, hd, c.ropeDims, positions, c.ropeFreqBase, c.ropeNeox, this.#ropeDiv, devPos, this.#devRopeDiv);
      q0.free();
      k0.free();
      let attn: H;
      if (segments.length === 1) {
        const s = segments[0];
        s.cache.write(l, k, v, 0, T);
        attn = g.dtAttention(q, T, H, s.cache.keys(l), s.cache.values(l), s.cache.length + T, G, hd, positions, devPos, 0);
      } else {
        attn = g.dtZeros([T, qw]);
        segments.forEach((s, i) => {
          const r = firstRow[i], n = s.tokens.length;
          s.cache.write(l, k, v, r, n);
          const qs = g.dtZeros([n, qw]);
          g.dtWriteRows(qs, 0, q, r, n, qw);
          const a = g.dtAttention(qs, n, H, s.cache.keys(l), s.cache.values(l), s.cache.length + n, G, hd, positions.subarray(r, r + n), devPos, r);
          g.dtWriteRows(attn, r, a, 0, n, qw);
          qs.free();
          a.free();
        });
      }
      q.free();
      k.free();
      v.free();
      const o = product(attn, w.o, T, D, qw);
      attn.free();
      const x1 = g.dtBinary(ADD, x, o);
      x.free();
      o.free();

      // SwiGLU MLP: the bytes of unary silu, then binary mul (as linear.ts swiglu).
      const h2 = g.dtRmsnorm(x1, w.ffnNorm, T, D, eps);
      const gate = product(h2, w.gate, T, F, D), up = product(h2, w.up, T, F, D);
      h2.free();
      const sg = g.dtUnary(SILU, gate);
      gate.free();
      const act = g.dtBinary(MUL, sg, up);
      sg.free();
      up.free();
      const down = product(act, w.down, T, D, F);
      act.free();
      x = g.dtBinary(ADD, x1, down);
      x1.free();
      down.free();
      if (onLayer) segments.forEach((s, i) => onLayer(i, l, x, firstRow[i], s.tokens.length));
    });
    devPos.free();
    for (const s of segments) s.cache.advance(s.tokens.length);

    // The head runs on each segment's last row only (row-independent, as on the CPU).
    let last = x;
    if (segments.length > 1 || T > 1) {
      last = g.dtZeros([segments.length, D]);
      segments.forEach((s, i) => g.dtWriteRows(last, i, x, firstRow[i] + s.tokens.length - 1, 1, D));
      x.free();
    }
    const hn = g.dtRmsnorm(last, this.#outNorm, segments.length, D, eps);
    last.free();
    const logits = product(hn, this.#out, segments.length, V, D);
    hn.free();
    return logits;
  }
}
