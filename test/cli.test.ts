/** The command line, as an operator or a cross-implementation check would run it. */
import { describe, expect, it } from 'vitest';
import { runCase } from '../lib/engine/conformance.js';
import { ISAS, runCli } from './helpers.js';

describe('atoma info', () => {
  it('--json reports version, ISA paths, threads and CUDA', () => {
    const r = runCli(['info', '--json'], { ATOMA_ISA: 'scalar', ATOMA_THREADS: '3' });
    expect(r.status).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i).toMatchObject({ isa: 'scalar', threads: 3, canonicalArithmetic: 1 });
    expect(i.isas).toContain('scalar');
    expect(typeof i.version).toBe('string');
    expect(typeof i.cuda.available).toBe('boolean');
  });
});

describe('atoma conform', () => {
  const cmds = [
    ['gemm', '--m', '5', '--k', '700', '--n', '33', '--seed', '1'],
    ['sum', '--n', '10007', '--seed', '2'],
    ['rmsnorm', '--rows', '3', '--n', '1000', '--seed', '3'],
    ['softmax', '--rows', '2', '--n', '513', '--seed', '4'],
    ['attention', '--tokens', '9', '--heads', '4', '--kv-heads', '2', '--dim', '32', '--seed', '5'],
  ];
  it.each(cmds)('%s prints one digest, the same under every ATOMA_ISA and ATOMA_THREADS', (...args) => {
    const want = runCli(['conform', ...args]);
    expect(want.status, want.stderr).toBe(0);
    expect(want.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    for (const isa of ISAS) for (const threads of ['1', '2', '3']) {
      expect(runCli(['conform', ...args], { ATOMA_ISA: isa, ATOMA_THREADS: threads }).stdout, `${isa}/${threads}`).toBe(want.stdout);
    }
  });

  it('the CLI digest equals the library digest', async () => {
    const r = runCli(['conform', 'gemm', '--m', '3', '--k', '300', '--n', '7', '--seed', '9', '--nk']);
    expect(r.stdout.trim()).toBe((await runCase('gemm', { m: '3', k: '300', n: '7', seed: '9', nk: true })).digest());
  });

  it('seeded digests are pinned (known-answer, computed by an independent Philox in Python and b3sum)', () => {
    const r = runCli(['conform', 'seeded', '--shape', '2,3', '--seed', '0']);
    expect(r.stdout.trim()).toBe('1565460d824415b5346921af3cf08600aadd6884962299ac78f39c8ca69a72bf');
  });

  it('--help lists every op', () => {
    const r = runCli(['conform', '--help']);
    for (const op of ['seeded', 'gemm', 'sum', 'rmsnorm', 'softmax', 'rope', 'attention', 'embedding', 'argmax', 'exp', 'gelu']) expect(r.stdout).toContain(op);
  });
});

describe('atoma bench', () => {
  it('gemm, hash and copy print JSON with their figure', () => {
    const g = JSON.parse(runCli(['bench', 'gemm', '--m', '64', '--k', '64', '--n', '64', '--json', '--seconds', '0.05']).stdout);
    expect(g.gflops).toBeGreaterThan(0);
    const h = JSON.parse(runCli(['bench', 'hash', '--mib', '4', '--json', '--seconds', '0.05']).stdout);
    expect(h.gibps).toBeGreaterThan(0);
    const c = JSON.parse(runCli(['bench', 'copy', '--mib', '8', '--json']).stdout);
    expect(c.gbps).toBeGreaterThan(0);
  });
});
