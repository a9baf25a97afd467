/**
 * atoma node as a process (the built CLI, dist/): kill -9 mid-request, restart, and the request
 * completes from the job database with the digests generate() gives; SIGTERM finishes in-flight
 * work and exits 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, hashFile, initModel, loadModel, LlamaModel } from '../lib/index.js';
import { requestHash, verifyResponse } from '../lib/node/keys.js';
import { cli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-node-restart-'));
const cfgPath = join(dir, 'node.toml');
let digest = '';
const children: ChildProcess[] = [];

beforeAll(async () => {
  // Big enough that a 1500-token request runs for about a second on one core.
  initModel(join(dir, 'mid.gguf'), { seed: 2, dim: 256, layers: 4, ff: 512, context: 2048 });
  digest = (await hashFile(join(dir, 'mid.gguf'))).toString('hex');
  writeFileSync(cfgPath, `[node]\ncache_dir = "cache"\n[limits]\nmax_tokens = 2000\n[[tasks]]\nname = "mid"\nmodel = "${digest}"\npath = "mid.gguf"\n`);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(): Promise<{ child: ChildProcess; url: string; publicKey: string; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [cli, 'node', '--config', cfgPath, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const first = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) { clearTimeout(timer); resolve(out.split('\n')[0]); }
    });
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`node exited: ${err}`)); });
  });
  const { url, publicKey } = JSON.parse(first) as { url: string; publicKey: string };
  return { child, url, publicKey, stderr: () => err, exited };
}

async function waitRunning(url: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const h = await (await fetch(url + '/health')).json() as { running: number };
    if (h.running >= 1) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the request never started running');
}

describe('atoma node process', () => {
  it('kill -9 mid-request, restart: the request completes from SQLite', async () => {
    const a = await startNode();
    const raw = JSON.stringify({ model: 'mid', prompt: 'Tell me a long story', max_tokens: 1500, seed: 77, temperature: 1 });
    const id = requestHash(raw);
    const pending = fetch(a.url + '/v1/completions', { method: 'POST', body: raw }).then((r) => r.status, () => 'dropped');
    await waitRunning(a.url);
    a.child.kill('SIGKILL');
    expect(await a.exited).toBeNull();
    expect(await pending).toBe('dropped');

    const b = await startNode();
    expect(b.publicKey).toBe(a.publicKey);   // the same key file
    let body: any = null;
    for (let i = 0; i < 600 && !body; i++) {
      const r = await fetch(`${b.url}/v1/results/${id}`);
      if (r.status === 200) body = await r.json();
      else {
        expect([202]).toContain(r.status);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    expect(body).not.toBeNull();
    expect(b.stderr()).toContain('"msg":"recovering unfinished job"');
    const m = await loadModel(join(dir, 'mid.gguf'));
    const [want] = generate(new LlamaModel(m.weights), [{ prompt: m.tokenizer.encode('Tell me a long story', { addBos: true }), maxTokens: 1500, seed: 77n, temperature: 1, stopTokens: [m.tokenizer.eosId!] }]);
    expect(body.outputDigest).toBe(want.outputDigest);
    expect(body.traceRoot).toBe(want.traceRoot);
    expect(verifyResponse({ model: digest, requestHash: id, outputDigest: want.outputDigest, traceRoot: want.traceRoot }, body.atoma.signature, a.publicKey)).toBe(true);

    // SIGTERM with a request in flight: it finishes, then the process exits 0.
    const raw2 = JSON.stringify({ model: 'mid', prompt: 'Another one', max_tokens: 1500, seed: 1 });
    const inflight = fetch(b.url + '/v1/completions', { method: 'POST', body: raw2 }).then(async (r) => ({ status: r.status, json: await r.json() as any }));
    await waitRunning(b.url);
    b.child.kill('SIGTERM');
    const done = await inflight;
    expect(done.status).toBe(200);
    expect(done.json.usage.completion_tokens).toBeGreaterThan(0);
    expect(await b.exited).toBe(0);
    expect(b.stderr()).toContain('"msg":"stopped"');
  });
});
