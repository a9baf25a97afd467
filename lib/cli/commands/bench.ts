import { performance } from 'node:perf_hooks';
import { copyBandwidth, info } from '../../engine/config.js';
import { fail } from '../../engine/errors.js';
import { blake3 } from '../../engine/hash.js';
import { matmulSync } from '../../engine/ops.js';
import { Tensor, seeded } from '../../engine/tensor.js';
import { didYouMean, parse } from '../args.js';

const HELP = `usage: atoma bench KIND [options] [--json]

  gemm --m M --k K --n N [--nk]   canonical matmul; prints {"gflops", "gbps", ...}
                                  (--nk: B stored [N,K] as weights; --m 1 --nk is decode GEMV)
  hash [--mib N]                  BLAKE3 of N MiB (default 256) in memory; prints {"gibps", ...}
  copy [--mib N]                  parallel memcpy of N MiB (default 256); prints {"gbps"}
                                  (bytes read + written)

Each figure is the median of timed repeats after a warm-up. ATOMA_ISA and ATOMA_THREADS apply.`;

/** Median seconds of fn over repeats (at least 5, and at least ~1 s of work) after a warm-up. */
function timeMedian(fn: () => void, minSeconds = 1, minReps = 5): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 1000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function size(v: string | boolean | undefined, name: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isSafeInteger(n) || n < 1) fail('ERR_USAGE', `--${name} must be a positive integer, got '${String(v)}'`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    m: { type: 'string' }, k: { type: 'string' }, n: { type: 'string' }, nk: { type: 'boolean' },
    mib: { type: 'string' }, json: { type: 'boolean' }, seconds: { type: 'string' },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const { isa, threads } = info();
  const minSeconds = values.seconds ? Number(values.seconds) : 1;
  let result: Record<string, number | string | boolean>;
  switch (positionals[0]) {
    case 'gemm': {
      const [m, k, n] = [size(values.m, 'm'), size(values.k, 'k'), size(values.n, 'n')];
      const nk = values.nk === true;
      const a = seeded([m, k], 1n, 0);
      const b = nk ? seeded([n, k], 1n, 1) : seeded([k, n], 1n, 1);
      const out = Tensor.zeros([m, n]);
      const s = timeMedian(() => matmulSync(a, b, { transposeB: nk, out }), minSeconds);
      result = { kind: 'gemm', m, k, n, nk, isa, threads, seconds: s, gflops: (2 * m * n * k) / s / 1e9, gbps: (4 * (m * k + k * n + m * n)) / s / 1e9 };
      break;
    }
    case 'hash': {
      const mib = size(values.mib, 'mib', 256);
      const data = new Uint8Array(mib << 20);
      for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
      const s = timeMedian(() => blake3(data), minSeconds, 3);
      result = { kind: 'hash', mib, isa, threads, seconds: s, gibps: mib / 1024 / s };
      break;
    }
    case 'copy': {
      const mib = size(values.mib, 'mib', 256);
      result = { kind: 'copy', mib, threads, gbps: copyBandwidth(mib) };
      break;
    }
    default:
      fail('ERR_USAGE', `unknown bench '${positionals[0]}'${didYouMean(positionals[0], ['gemm', 'hash', 'copy'])} (gemm, hash or copy)`);
  }
  if (values.json) console.log(JSON.stringify(result));
  else for (const [key, v] of Object.entries(result)) console.log(`${key.padEnd(8)} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : v}`);
  return 0;
}
