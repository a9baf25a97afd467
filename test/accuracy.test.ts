/** Accuracy against float64 references (DETERMINISM.md section 7, and section 6 for functions). */
import { describe, expect, it } from 'vitest';
import { Tensor, attentionSync, matmulSync, rmsnorm, rope, seeded, softmax, sum, unary, type UnaryOp } from '../lib/index.js';

function gemmError(m: number, k: number, n: number, nk: boolean): number {
  const a = seeded([m, k], 21n), b = nk ? seeded([n, k], 21n, 1) : seeded([k, n], 21n, 1);
  const c = matmulSync(a, b, { transposeB: nk });
  let worst = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let exact = 0, mag = 0;
    for (let t = 0; t < k; t++) {
      const p = a.data[i * k + t] * (nk ? b.data[j * k + t] : b.data[t * n + j]);
      exact += p;
      mag += Math.abs(p);
    }
    // Relative to the sum of magnitudes: the natural scale of a dot product's rounding error.
    worst = Math.max(worst, Math.abs(c.data[i * n + j] - exact) / mag);
  }
  return worst;
}

describe('GEMM against float64', () => {
  it.each([[4, 4096, 9, false], [5, 4096, 7, true], [17, 1000, 33, false], [3, 257, 300, true]] as const)(
    'm=%i k=%i n=%i nk=%s: relative error <= 1e-5',
    (m, k, n, nk) => expect(gemmError(m, k, n, nk)).toBeLessThanOrEqual(1e-5),
  );
});

describe('reductions and rows against float64', () => {
  it('sum', () => {
    const x = seeded([100003], 22n);
    let exact = 0, mag = 0;
    for (const v of x.data) { exact += v; mag += Math.abs(v); }
    expect(Math.abs(sum(x) - exact) / mag).toBeLessThan(1e-6);
  });

  it('rmsnorm', () => {
    const n = 4097, x = seeded([3, n], 23n), w = seeded([n], 23n, 1);
    const y = rmsnorm(x, w, 1e-5);
    for (let r = 0; r < 3; r++) {
      let ss = 0;
      for (let i = 0; i < n; i++) ss += x.data[r * n + i] ** 2;
      const inv = 1 / Math.sqrt(ss / n + 1e-5);
      for (let i = 0; i < n; i++) {
        const exact = x.data[r * n + i] * inv * w.data[i];
        expect(Math.abs(y.data[r * n + i] - exact)).toBeLessThanOrEqual(2e-6 * Math.abs(exact) + 1e-30);
      }
    }
  });

  it('softmax (rows of scale 20 to stress exp and the max shift)', () => {
    const n = 1000, x = seeded([2, n], 24n);
    for (let i = 0; i < x.data.length; i++) x.data[i] *= 20;
    const y = softmax(x);
    for (let r = 0; r < 2; r++) {
      const row = [...x.data.slice(r * n, (r + 1) * n)];
      const m = Math.max(...row);
      // x - m is rounded to f32 by the spec before exp; the reference starts from that value.
      const e = row.map((v) => Math.exp(Math.fround(v - m)));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, i) => expect(Math.abs(y.data[r * n + i] - v / s)).toBeLessThanOrEqual(2e-6 * (v / s) + 1e-38));
    }
  });

  it('attention', () => {
    const T = 50, H = 4, G = 2, D = 64;
    const q = seeded([T, H, D], 25n), k = seeded([T, G, D], 25n, 1), v = seeded([T, G, D], 25n, 2);
    const pos = Int32Array.from({ length: T }, (_, i) => i);
    const out = attentionSync(q, k, v, pos);
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / G));
      const scores: number[] = [];
      for (let j = 0; j <= t; j++) {
        let d = 0;
        for (let i = 0; i < D; i++) d += q.data[(t * H + h) * D + i] * k.data[(j * G + g) * D + i];
        scores.push(d / Math.sqrt(D));
      }
      const m = Math.max(...scores);
      const p = scores.map((s) => Math.exp(s - m));
      const z = p.reduce((a, b) => a + b, 0);
      for (let i = 0; i < D; i++) {
        let o = 0, mag = 0;
        for (let j = 0; j <= t; j++) { o += (p[j] / z) * v.data[(j * G + g) * D + i]; mag += Math.abs((p[j] / z) * v.data[(j * G + g) * D + i]); }
        expect(Math.abs(out.data[(t * H + h) * D + i] - o)).toBeLessThanOrEqual(1e-5 * mag + 1e-30);
      }
    }
  });

  it('rope', () => {
    const x = seeded([3, 2, 64], 26n);
    const pos = [0, 17, 4000];
    const y = rope(x, pos, { theta: 10000 });
    for (let t = 0; t < 3; t++) for (let h = 0; h < 2; h++) for (let i = 0; i < 32; i++) {
      const base = (t * 2 + h) * 64;
      // The angle as the spec forms it in f32: inv_freq = exp(-((2i / d) * log(theta))), pos * inv_freq.
      const f = Math.fround;
      const invFreq = f(Math.exp(-f(f((2 * i) / 64) * f(Math.log(10000)))));
      expect(Math.abs(invFreq - Math.pow(10000, -(2 * i) / 64))).toBeLessThanOrEqual(2e-6 * invFreq);
      const ang = f(pos[t] * invFreq);
      const [x0, x1] = [x.data[base + 2 * i], x.data[base + 2 * i + 1]];
      const tol = 2.5e-7;
      expect(Math.abs(y.data[base + 2 * i] - (x0 * Math.cos(ang) - x1 * Math.sin(ang)))).toBeLessThanOrEqual(tol);
      expect(Math.abs(y.data[base + 2 * i + 1] - (x0 * Math.sin(ang) + x1 * Math.cos(ang)))).toBeLessThanOrEqual(tol);
    }
  });
});

/** Where the float64 reference is far from a rounding midpoint, the correctly rounded f32 is certain. */
function checkCorrectlyRounded(op: UnaryOp, ref: (x: number) => number, xs: Float32Array) {
  const y = unary(op, new Tensor('f32', [xs.length], xs));
  let checked = 0;
  for (let i = 0; i < xs.length; i++) {
    const r = ref(xs[i]);
    if (!Number.isFinite(r)) continue;
    const f = Math.fround(r);
    const ulp = Math.abs(Math.fround(f * (1 + 2 ** -23)) - f) || 2 ** -149;
    const offMid = Math.abs(Math.abs(r - f) - ulp / 2);
    if (offMid < ulp * 2 ** -20) continue; // too close to call with a float64 reference
    expect(y.data[i], `${op}(${xs[i]})`).toBe(f);
    checked++;
  }
  expect(checked).toBeGreaterThan(xs.length * 0.9);
}

function randomFloats(n: number, lo: number, hi: number, seed: bigint): Float32Array {
  const u = seeded([n], seed);
  return Float32Array.from(u.data, (v) => lo + ((v + 1) / 2) * (hi - lo));
}

describe('correctly rounded functions agree with float64 wherever float64 decides', () => {
  it('exp', () => checkCorrectlyRounded('exp', Math.exp, randomFloats(50000, -104, 89, 31n)));
  it('log', () => checkCorrectlyRounded('log', Math.log, Float32Array.from(randomFloats(50000, -60, 60, 32n), (v) => Math.exp(v))));
  it('tanh', () => checkCorrectlyRounded('tanh', Math.tanh, randomFloats(50000, -12, 12, 33n)));
  it('sin and cos on RoPE angles', () => {
    const xs = randomFloats(50000, -100000, 100000, 34n);
    checkCorrectlyRounded('sin', Math.sin, xs);
    checkCorrectlyRounded('cos', Math.cos, xs);
  });
  it('special values', () => {
    const t = new Tensor('f32', [6], Float32Array.from([0, -0, Infinity, -Infinity, NaN, 1]));
    expect([...unary('exp', t).data]).toEqual([1, 1, Infinity, 0, NaN, Math.fround(Math.E)]);
    expect([...unary('log', t).data]).toEqual([-Infinity, -Infinity, Infinity, NaN, NaN, 0]);
    expect(Object.is(unary('tanh', t).data[1], -0)).toBe(true);
  });
  it('silu and gelu stay within a few ulps of float64', () => {
    const xs = randomFloats(20000, -20, 20, 35n);
    const silu = unary('silu', new Tensor('f32', [xs.length], xs));
    const gelu = unary('gelu', new Tensor('f32', [xs.length], xs));
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const s = x / (1 + Math.exp(-x));
      const g = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      expect(Math.abs(silu.data[i] - s)).toBeLessThanOrEqual(4e-7 * Math.abs(s) + 1e-37);
      expect(Math.abs(gelu.data[i] - g)).toBeLessThanOrEqual(1e-6 * Math.abs(x) + 1e-37);
    }
  });
});
