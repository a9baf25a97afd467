/** The command line, as an operator or a cross-implementation check would run it. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCase } from '../lib/engine/conformance.js';
import { exampleWasm, runWasm } from '../lib/wasm/index.js';
import { ISAS, root, runCli } from './helpers.js';

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

describe('CLI ergonomics and errors (issue 13)', () => {
  const oneLine = (stderr: string) => stderr.trim().split('\n');

  it('atoma --version prints package.json\'s version', () => {
    const want = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
    const r = runCli(['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(want);
  });

  it('--help needs no other flag, for every command and subcommand, even beside an unknown option', () => {
    for (const cmd of [['info'], ['conform'], ['hash'], ['bench'], ['wasm'], ['wasm', 'run'], ['ledger'], ['ledger', 'serve'], ['ledger', 'task'],
      ['devnet'], ['model', 'init'], ['model', 'inspect'], ['run'], ['node'], ['request'], ['trace']]) {
      const r = runCli([...cmd, '--help', '--no-such-flag']);
      expect(r.status, `${cmd.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout, cmd.join(' ')).toMatch(/^usage: atoma /);
    }
  });

  it('a failing command prints one line with the error code and no stack (ATOMA_DEBUG adds the stack)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-cli-'));
    const args = ['model', 'init', '--seed', '1', '--out', join(dir, 'no-such-dir', 'x.gguf')];
    const r = runCli(args);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/^atoma: cannot write --out .*no-such-dir.*ENOENT.* \[ERR_IO\]$/)]);
    const debug = runCli(args, { ATOMA_DEBUG: '1' });
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('a negative number reaches the flag\'s range check instead of the option parser', () => {
    const r = runCli(['run', '--prompt', 'x', '--max-tokens', '-1']);
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr)).toEqual(["atoma: --max-tokens must be an integer >= 1, got '-1' [ERR_USAGE]"]);
    const m = runCli(['model', 'init', '--seed', '1', '--out', '/tmp/never.gguf', '--layers', '-2']);
    expect(m.stderr).toContain("--layers must be a non-negative integer, got '-2' [ERR_USAGE]");
  });

  it('unknown commands, subcommands and options name the closest known one', () => {
    const cases: [string[], string][] = [
      [['modle'], "unknown command 'modle' (did you mean model?)"],
      [['run', '--prompt', 'x', '--max-token', '3'], 'unknown option --max-token (did you mean --max-tokens?)'],
      [['wasm', 'rnu', 'x.wasm'], "unknown wasm command 'rnu' (did you mean run?)"],
      [['ledger', 'serv', '--db', 'x'], "unknown ledger command 'serv' (did you mean serve?)"],
      [['model', 'inpsect', 'x'], "unknown model command 'inpsect' (did you mean inspect?)"],
      [['bench', 'gem'], "unknown bench 'gem' (did you mean gemm?)"],
    ];
    for (const [args, message] of cases) {
      const r = runCli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(oneLine(r.stderr), args.join(' ')).toEqual([expect.stringContaining(message)]);
      expect(r.stderr).toContain('[ERR_USAGE]');
    }
  });

  it('help marks a flag required only when leaving it out is an error', () => {
    // trace and devnet default these flags: their usage lines show them optional.
    const trace = runCli(['trace', '--help']).stdout.split('\n')[0];
    expect(trace).toContain('[--max-tokens N] [--seed S]');
    expect(runCli(['bench', '--help']).stdout).toContain('hash [--mib N]');
    const devnet = runCli(['devnet', '--help']).stdout;
    expect(devnet).toContain('[--nodes N] [--sample n] [--byzantine B] [--requests R]');
    expect(devnet).toContain('--nodes 10');
    // Those shown required are: a missing one is a usage error naming it.
    const ledgerTask = runCli(['ledger', 'task', '--wasm', 'x.wasm']);
    expect(ledgerTask.status).toBe(2);
    expect(ledgerTask.stderr).toContain('--ledger URL is required');
    const request = runCli(['request', '--ledger', 'http://127.0.0.1:9', '--task', 'ab'.repeat(32), '--tokens', '1', '--seed', '0']);
    expect(request.status).toBe(2);
    expect(request.stderr).toContain('--max-tokens is required');
  });

  it('durations past the timer maximum (2^31-1 ms) are refused, naming the flag and the bound', async () => {
    // setTimeout turns a longer delay into 1 ms: before this check the guest "timed out" at once.
    const dir = mkdtempSync(join(tmpdir(), 'atoma-cli-'));
    const wasm = join(dir, 'echo.wasm');
    writeFileSync(wasm, await exampleWasm('json-minify'));
    const over = runCli(['wasm', 'run', wasm, '--timeout-ms', '2147483648', '--input', '-', '--json'], {}, Buffer.from('{ }'));
    expect(over.status).toBe(2);
    expect(oneLine(over.stderr)).toEqual(['atoma: --timeout-ms must be from 1 to 2147483647, got 2147483648 [ERR_USAGE]']);
    const max = runCli(['wasm', 'run', wasm, '--timeout-ms', '2147483647', '--input', '-', '--json'], {}, Buffer.from('{ }'));
    expect(max.status, max.stderr).toBe(0);
    expect(JSON.parse(max.stdout).error).toBeNull();
    // --timeout is in seconds: checked before anything is sent to the ledger (none listens here).
    const req = runCli(['request', '--ledger', 'http://127.0.0.1:9', '--task', 'ab'.repeat(32), '--tokens', '1', '--max-tokens', '1', '--seed', '0', '--timeout', '2147484']);
    expect(req.status).toBe(2);
    expect(req.stderr).toContain("--timeout must be an integer from 1 to 2147483, got '2147484'");
    const module = await exampleWasm('json-minify');
    await expect((async () => runWasm(module, Buffer.from('{}'), { timeoutMs: 2 ** 31 }))()).rejects.toMatchObject({ code: 'ERR_RANGE', message: expect.stringContaining('2147483647') });
  });
});
