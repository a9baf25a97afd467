import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

describe('atoma run / trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoma-run-'));
  const env = { ATOMA_CACHE_DIR: dir };

  it('runs the default tiny model; a batch gives the same results as single runs', () => {
    const one = runCli(['run', '--prompt', 'Hello world', '--max-tokens', '5', '--seed', '3', '--temperature', '0.8', '--json'], env);
    expect(one.status, one.stderr).toBe(0);
    const r = JSON.parse(one.stdout);
    expect(r.tokens).toHaveLength(5);
    expect(r.outputDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.traceRoot).toMatch(/^[0-9a-f]{64}$/);
    const jsonl = join(dir, 'reqs.jsonl');
    writeFileSync(jsonl, `{"prompt":"abc","maxTokens":3}\n{"prompt":"Hello world","maxTokens":5,"seed":3,"temperature":0.8}\n`);
    const batch = runCli(['run', '--requests', jsonl, '--json', '--prefill-chunk', '2'], env);
    expect(batch.status, batch.stderr).toBe(0);
    const lines = batch.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[1].outputDigest).toBe(r.outputDigest);
    expect(lines[1].traceRoot).toBe(r.traceRoot);
    const trace = runCli(['trace', '--prompt', 'Hello world', '--max-tokens', '5', '--seed', '3', '--temperature', '0.8', '--steps', '1:3', '--json'], env);
    expect(trace.status, trace.stderr).toBe(0);
    const t = JSON.parse(trace.stdout);
    expect(t.traceRoot).toBe(r.traceRoot);
    expect(t.leaves.map((l: { step: number }) => l.step)).toEqual([1, 1, 2, 2]);
  });

  it('rejects bad options with usage errors', () => {
    expect(runCli(['run', '--max-tokens', '3'], env).status).toBe(2);
    expect(runCli(['run', '--prompt', 'x', '--max-tokens', 'many'], env).stderr).toContain('ERR_USAGE');
    expect(runCli(['run', '--prompt', 'x', '--top-p', '2'], env).stderr).toContain('ERR_ARGUMENT');
    expect(runCli(['trace', '--prompt', 'x', '--steps', '1-2'], env).stderr).toContain('ERR_USAGE');
  });
});
