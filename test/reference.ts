/**
 * An independent TypeScript reading of DETERMINISM.md sections 3-5, exact to the bit: f32 +, *, /
 * and sqrt through float64 then Math.fround (double rounding is harmless for these), and fma
 * through exact BigInt arithmetic. The native kernels must match it bit for bit.
 */
const view = new DataView(new ArrayBuffer(8));

/** x * 2^shift as an exact BigInt (x a finite double whose ulp is at least 2^-shift). */
function scaled(x: number, shift: number): bigint {
  if (x === 0) return 0n;
  view.setFloat64(0, x);
  const hi = view.getUint32(0), lo = view.getUint32(4);
  const bexp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e: number;
  if (bexp === 0) e = -1074;
  else { mant |= 1n << 52n; e = bexp - 1075; }
  while ((mant & 1n) === 0n) { mant >>= 1n; e++; }
  const s = e + shift;
  if (s < 0) throw new Error('scaled: value not representable at this scale');
  const v = mant << BigInt(s);
  return x < 0 ? -v : v;
}

/** The binary32 nearest (ties to even) to S * 2^-scaleExp. */
function roundF32(S: bigint, scaleExp: number): number {
  const neg = S < 0n;
  let a = neg ? -S : S;
  const n = a.toString(2).length;
  const E = n - 1 - scaleExp;
  const q = Math.max(E - 23, -149);
  const shift = q + scaleExp;
  let r: bigint;
  if (shift <= 0) r = a << BigInt(-shift);
  else {
    r = a >> BigInt(shift);
    const rem = a & ((1n << BigInt(shift)) - 1n);
    const half = 1n << BigInt(shift - 1);
    if (rem > half || (rem === half && (r & 1n) === 1n)) r += 1n;
  }
  a = r;
  const v = Number(a) * 2 ** q;
  const out = v >= 2 ** 128 ? Infinity : Math.fround(v);
  return neg ? -out : out;
}

/** fma with one rounding, for f32 operands. */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact in float64 for f32 operands
  if (!Number.isFinite(p) || !Number.isFinite(c) || Number.isNaN(p)) return Math.fround(p + c);
  const S = scaled(a, 149) * scaled(b, 149) + scaled(c, 298);
  if (S === 0n) return Object.is(p, -0) && Object.is(c, -0) ? -0 : 0;
  return roundF32(S, 298);
}

const f = Math.fround;

export function chunkedDot(a: (k: number) => number, b: (k: number) => number, K: number): number {
  let acc = 0;
  for (let c = 0; c < K; c += 256) {
    let p = 0;
    for (let k = c; k < Math.min(K, c + 256); k++) p = fmaF32(a(k), b(k), p);
    acc = f(acc + p);
  }
  return acc;
}

export function gemmRef(A: Float32Array, B: Float32Array, m: number, k: number, n: number, nk: boolean, bias?: Float32Array): Float32Array {
  const C = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    const v = chunkedDot((t) => A[i * k + t], (t) => (nk ? B[j * k + t] : B[t * n + j]), k);
    C[i * n + j] = bias ? f(v + bias[j]) : v;
  }
  return C;
}

function fold(p: number[]): number {
  for (let s = 16; s >= 1; s >>= 1) for (let l = 0; l < s; l++) p[l] = f(p[l] + p[l + s]);
  return p[0];
}

export function laneSum(x: ArrayLike<number>): number {
  const p = new Array<number>(32).fill(0);
  for (let t = 0; t < x.length; t++) p[t % 32] = f(p[t % 32] + x[t]);
  return fold(p);
}

export function laneSumSq(x: ArrayLike<number>): number {
  const p = new Array<number>(32).fill(0);
  for (let t = 0; t < x.length; t++) p[t % 32] = fmaF32(x[t], x[t], p[t % 32]);
  return fold(p);
}

export function rmsnormRef(x: Float32Array, w: Float32Array, rows: number, n: number, eps: number): Float32Array {
  const y = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * n, (r + 1) * n);
    const ms = f(laneSumSq(row) / f(n));
    const inv = f(1 / f(Math.sqrt(f(ms + f(eps)))));
    for (let t = 0; t < n; t++) y[r * n + t] = f(f(row[t] * inv) * w[t]);
  }
  return y;
}
