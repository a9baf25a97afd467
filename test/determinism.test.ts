/**
 * The determinism contract (DETERMINISM.md section 7): the same digest on every ISA path,
 * thread count and batch split, on odd shapes.
 */
import { describe, expect, it } from 'vitest';
import { runCase, type CaseArgs } from '../lib/engine/conformance.js';
import { Tensor, attentionSync, matmulSync, rmsnorm, rope, seeded, softmax, unary, argmax, embedding, add, mul, rowSums } from '../lib/index.js';
import { acrossConfigurations, ISAS } from './helpers.js';

const s = (o: Record<string, number | boolean>): CaseArgs =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'boolean' ? v : String(v)]));

const GRID: [string, CaseArgs][] = [
  ...[
    { m: 1, k: 1, n: 1 }, { m: 1, k: 4096, n: 17 }, { m: 7, k: 255, n: 33 }, { m: 13, k: 257, n: 100 },
    { m: 5, k: 700, n: 33 }, { m: 64, k: 1000, n: 3 }, { m: 0, k: 5, n: 4 }, { m: 3, k: 0, n: 4 }, { m: 33, k: 513, n: 65 },
  ].flatMap((g) => [
    ['gemm', s({ ...g, seed: 1 })] as [string, CaseArgs],
    ['gemm', s({ ...g, seed: 2, nk: true, bias: true })] as [string, CaseArgs],
  ]),
  ...[1, 31, 33, 255, 257, 1000, 4097, 10007].map((n) => ['sum', s({ n, seed: 2 })] as [string, CaseArgs]),
  ...['rmsnorm', 'softmax', 'add', 'mul', 'argmax'].flatMap((op) =>
    [{ rows: 3, n: 1000 }, { rows: 1, n: 1 }, { rows: 5, n: 33 }, { rows: 2, n: 4097 }].map((g) => [op, s({ ...g, seed: 3 })] as [string, CaseArgs]),
  ),
  ...['exp', 'log', 'tanh', 'sin', 'cos', 'silu', 'gelu'].flatMap((op) =>
    [{ rows: 3, n: 257, scale: 1 }, { rows: 2, n: 1000, scale: 64 }].map((g) => [op, s({ ...g, seed: 4 })] as [string, CaseArgs]),
  ),
  ['rope', s({ tokens: 5, heads: 3, dim: 64, seed: 5 })],
  ['rope', s({ tokens: 4, heads: 2, dim: 128, rot: 64, neox: true, start: 1000, seed: 5 })],
  ['attention', s({ tokens: 7, heads: 4, 'kv-heads': 2, dim: 64, seed: 6 })],
  ['attention', s({ tokens: 300, heads: 2, 'kv-heads': 1, dim: 80, seed: 7 })],
  ['embedding', s({ vocab: 1000, dim: 33, n: 17, seed: 8 })],
];

describe('one digest across ISA paths x threads (1, 2, 3)', () => {
  it('this machine offers more than one path to compare', () => {
    expect(ISAS.length).toBeGreaterThan(1);
  });
  it.each(GRID)('%s %j', async (op, args) => {
    const seen = await acrossConfigurations(async () => (await runCase(op, args)).digest());
    expect([...seen.values()], `distinct digests: ${JSON.stringify([...seen.entries()])}`).toHaveLength(1);
  });
});

function concatRows(parts: Tensor<'f32'>[], shape: number[]): Tensor<'f32'> {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let off = 0;
  for (const p of parts) { out.set(p.data, off); off += p.size; }
  return new Tensor('f32', shape, out);
}

const row = (t: Tensor<'f32'>, i: number, n: number) => new Tensor('f32', [1, n], t.data.slice(i * n, (i + 1) * n));

describe('batch splits give the same bytes as one batch', () => {
  it('a matmul of 8 rows equals 8 one-row matmuls, in both layouts, for several K, on every configuration', async () => {
    // Each configuration reports its digests, not a verdict on them: equal within a configuration
    // is not enough, a split must give the same bytes as one batch on every (ISA, threads) pair.
    const seen = await acrossConfigurations(() => {
      const out: Record<string, { whole: string; split: string; into: string }> = {};
      for (const k of [1, 256, 257, 1000]) {
        for (const nk of [false, true]) {
          const a = seeded([8, k], 9n);
          const b = nk ? seeded([45, k], 9n, 1) : seeded([k, 45], 9n, 1);
          const whole = matmulSync(a, b, { transposeB: nk });
          const split = concatRows([...Array(8).keys()].map((i) => matmulSync(row(a, i, k), b, { transposeB: nk })), [8, 45]);
          // Writing into a caller's buffer (dirty on purpose) gives the same bytes.
          const into = new Tensor('f32', [8, 45], new Float32Array(8 * 45).fill(NaN));
          out[`k=${k} nk=${nk}`] = { whole: whole.digest(), split: split.digest(), into: matmulSync(a, b, { transposeB: nk, out: into }).digest() };
        }
      }
      return out;
    });
    expect(seen.size, `configurations grouped by the digests they gave: ${JSON.stringify([...seen.values()])}`).toBe(1);
    const [digests] = [...seen.keys()].map((k) => JSON.parse(k) as Record<string, { whole: string; split: string; into: string }>);
    expect(Object.keys(digests)).toHaveLength(8);
    for (const [shape, d] of Object.entries(digests)) expect([d.split, d.into], shape).toEqual([d.whole, d.whole]);
  });

  it('row kernels: rows computed together equal rows computed one by one, on every configuration', async () => {
    const x = seeded([6, 1001], 10n), w = seeded([1001], 10n, 1);
    const byRow = <T extends Tensor>(f: (t: Tensor<'f32'>) => T) =>
      [...Array(6).keys()].map((i) => f(row(x, i, 1001)).digest());
    const together = (f: (t: Tensor<'f32'>) => Tensor) => {
      const y = f(x) as Tensor<'f32'>;
      return [...Array(6).keys()].map((i) => (y.rank === 1 ? new Tensor(y.dtype, [1], y.data.slice(i, i + 1) as never) : row(y, i, 1001)).digest());
    };
    const ops: [string, (t: Tensor<'f32'>) => Tensor][] = [
      ['rmsnorm', (t) => rmsnorm(t, w)], ['softmax', (t) => softmax(t)], ['silu', (t) => unary('silu', t)],
      ['add', (t) => add(t, w)], ['mul', (t) => mul(t, w)], ['rowSums', (t) => rowSums(t)], ['argmax', (t) => argmax(t)],
    ];
    const seen = await acrossConfigurations(() => Object.fromEntries(ops.map(([name, f]) => [name, { together: together(f), byRow: byRow(f) }])));
    expect(seen.size, `configurations grouped by the digests they gave: ${JSON.stringify([...seen.values()])}`).toBe(1);
    const [digests] = [...seen.keys()].map((k) => JSON.parse(k) as Record<string, { together: string[]; byRow: string[] }>);
    for (const [name] of ops) expect(digests[name].together, name).toEqual(digests[name].byRow);
  });

  it('attention: a prefill of T queries equals T decode steps, for every configuration', async () => {
    const T = 37, H = 6, G = 2, D = 64;
    const q = seeded([T, H, D], 11n), k = seeded([T, G, D], 11n, 1), v = seeded([T, G, D], 11n, 2);
    const seen = await acrossConfigurations(() => {
      const prefill = attentionSync(q, k, v, Int32Array.from({ length: T }, (_, i) => i));
      const steps: Tensor<'f32'>[] = [];
      for (let t = 0; t < T; t++) {
        const qt = new Tensor('f32', [1, H, D], q.data.slice(t * H * D, (t + 1) * H * D));
        // Decode sees only the cache so far: keys 0..t.
        const kt = new Tensor('f32', [t + 1, G, D], k.data.slice(0, (t + 1) * G * D));
        const vt = new Tensor('f32', [t + 1, G, D], v.data.slice(0, (t + 1) * G * D));
        steps.push(attentionSync(qt, kt, vt, [t]));
      }
      return [prefill.digest(), concatRows(steps, [T, H, D]).digest()];
    });
    expect(seen.size).toBe(1);
    const [[pair]] = [...seen.entries()].map(([k2]) => [JSON.parse(k2) as string[]]);
    expect(pair[0]).toBe(pair[1]);
  });

  it('rope of a chunk at its positions equals its rows in a longer sequence', () => {
    const x = seeded([10, 4, 64], 12n);
    const all = rope(x, [...Array(10).keys()].map((p) => p + 500));
    const tail = rope(new Tensor('f32', [4, 4, 64], x.data.slice(6 * 256)), [506, 507, 508, 509]);
    expect(Buffer.from(all.data.buffer, 6 * 256 * 4).equals(Buffer.from(tail.data.buffer))).toBe(true);
  });

  it('embedding rows equal their table rows', () => {
    const table = seeded([50, 16], 13n);
    const e = embedding(table, [3, 49, 0, 3]);
    expect([...e.data.slice(16, 32)]).toEqual([...table.data.slice(49 * 16, 50 * 16)]);
  });
});
