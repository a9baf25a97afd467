// GEMM and decode GEMV against their peers, measured in the same run:
//   canonical SGEMM vs OpenBLAS sgemm through numpy (same thread count),
//   M = 1 GEMV (x W^T, W [N, K]) vs the parallel memcpy bandwidth.
// usage: node bench/gemm.mjs [--threads 2]
import { atomaJson, has, report, run } from './lib.mjs';

const threads = process.argv.includes('--threads') ? process.argv[process.argv.indexOf('--threads') + 1] : '2';
const env = { ATOMA_THREADS: threads };

// numpy's OpenBLAS, allowed its fastest kernel: the machine sets OPENBLAS_CORETYPE/L2_SIZE for
// old builds, which slows a current one, so they are unset for this command alone.
const numpyEnv = { OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads };
const NUMPY = `
import sys, time, numpy as np
n = int(sys.argv[1])
rng = np.random.default_rng(1)
a = rng.uniform(-1, 1, (n, n)).astype(np.float32); b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
a @ b
ts = []
t_end = time.perf_counter() + 1.0
while len(ts) < 5 or time.perf_counter() < t_end:
    t0 = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t0)
ts.sort(); print(2 * n ** 3 / ts[len(ts) // 2] / 1e9)
`;
function numpyGflops(n) {
  const e = { ...process.env, ...numpyEnv };
  delete e.OPENBLAS_CORETYPE;
  delete e.OPENBLAS_L2_SIZE;
  return Number(run('env', ['-u', 'OPENBLAS_CORETYPE', '-u', 'OPENBLAS_L2_SIZE', 'python3', '-c', NUMPY, String(n)], numpyEnv).trim());
}

const rows = [];
const havePeer = has('python3', ['-c', 'import numpy']);
if (!havePeer) console.error('numpy is not available: the OpenBLAS peer is skipped');
for (const n of [1024, 2048]) {
  const ours = atomaJson(['bench', 'gemm', '--m', String(n), '--k', String(n), '--n', String(n)], env).gflops;
  const peer = havePeer ? numpyGflops(n) : null;
  rows.push({ case: `sgemm ${n}^3`, threads: Number(threads), atoma_gflops: ours, openblas_gflops: peer, ratio: peer ? ours / peer : null, target: 0.9 });
}
const copy = atomaJson(['bench', 'copy', '--mib', '256'], env).gbps;
const gemv = atomaJson(['bench', 'gemm', '--m', '1', '--k', '4096', '--n', '4096', '--nk'], env);
rows.push({ case: 'gemv 1x4096x4096 (W^T)', threads: Number(threads), atoma_gbps: gemv.gbps, copy_gbps: copy, ratio: gemv.gbps / copy, target: 0.8 });
report('GEMM (canonical) vs peers, same run', rows);
