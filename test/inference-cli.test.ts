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

  it('--requests: OpenAI spellings are aliases, an unknown key is an error naming the key and the line', () => {
    const jsonl = join(dir, 'keys.jsonl');
    writeFileSync(jsonl, `{"prompt":"abc","maxTokens":4,"topK":5,"topP":0.9,"temperature":0.7,"seed":2}\n{"prompt":"abc","max_tokens":4,"top_k":5,"top_p":0.9,"temperature":0.7,"seed":2}\n`);
    const r = runCli(['run', '--requests', jsonl, '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(a.tokens).toHaveLength(4);
    expect(b.outputDigest).toBe(a.outputDigest);
    writeFileSync(jsonl, `{"prompt":"abc"}\n{"prompt":"abc","max_token":4}\n`);
    const bad = runCli(['run', '--requests', jsonl, '--json'], env);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${jsonl} line 2: unknown key 'max_token' (did you mean max_tokens?)`);
    expect(bad.stdout).toBe('');
    writeFileSync(jsonl, `{"prompt":"abc","maxTokens":4,"max_tokens":5}\n`);
    expect(runCli(['run', '--requests', jsonl, '--json'], env).stderr).toContain("line 1: 'maxTokens' and 'max_tokens' give the same setting twice");
  });

  it('rejects bad options with usage errors', () => {
    expect(runCli(['run', '--max-tokens', '3'], env).status).toBe(2);
    expect(runCli(['run', '--prompt', 'x', '--max-tokens', 'many'], env).stderr).toContain('ERR_USAGE');
    expect(runCli(['run', '--prompt', 'x', '--top-p', '2'], env).stderr).toContain('ERR_ARGUMENT');
    expect(runCli(['trace', '--prompt', 'x', '--steps', '1-2'], env).stderr).toContain('ERR_USAGE');
  });
});
