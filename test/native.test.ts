/**
 * The native test programs: the kernels, BLAKE3 and the canonical functions built with
 * AddressSanitizer and UndefinedBehaviorSanitizer; the CUDA build and the CUDA kernels run on a
 * CPU emulator; a strided smoke run of the exhaustive correct-rounding proof (the full proof is
 * `npm run test:exhaustive`, on demand; the real-GPU check is scripts/gpu-check.sh).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

function sh(script: string, args: string[]) {
  const r = spawnSync('bash', [join(root, script), ...args], { cwd: root, encoding: 'utf8', timeout: 540_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('native programs', () => {
  it('kernels, BLAKE3 and math run clean under ASan + UBSan', () => {
    const r = sh('native/test/run-sanitized.sh', [join(root, 'build', 'sanitized')]);
    expect(r.status, r.out.slice(-4000)).toBe(0);
    for (const t of ['gemm_test', 'gemm_weights_test', 'gemm_weights_packed_test', 'gemm_weights_f32x16_test', 'gemm_weights_blocks_test', 'rows_test', 'blake3_test', 'math_test']) expect(r.out).toContain(`== ${t}`);
  }, 600_000);

  it('the CUDA sources compile with nvcc, and the kernels match the CPU engine on the emulator', () => {
    const r = sh('native/test/run-cuda-checks.sh', [join(root, 'build', 'cuda-checks')]);
    expect(r.status, r.out.slice(-4000)).toBe(0);
    // One PASS line per emulator program the script runs.
    expect(r.out.match(/^PASS$/gm)?.length).toBe(5);
    // Where nvcc exists, the CUDA addon itself is built and loaded (it finds no GPU here).
    expect(r.out).toMatch(/loaded: cudaBuilt true|nvcc not found/);
  }, 600_000);

  it('the exhaustive proof harness finds no mismatch on a strided sample', () => {
    const r = sh('native/test/run-exhaustive.sh', ['all', '2', '1021']);
    expect(r.status, r.out.slice(-4000)).toBe(0);
  }, 600_000);
});
