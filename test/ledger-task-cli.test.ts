// `atoma ledger task`: creating a task on a running ledger from the command line.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../lib/engine/hash.js';
import { initModel } from '../lib/model/init.js';
import { serveLedger, type LedgerService } from '../lib/protocol/ledger/service.js';
import { cli } from './helpers.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'atoma-ledger-task-'));
let svc: LedgerService;

async function atoma(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [cli, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

beforeAll(async () => {
  svc = await serveLedger({ db: join(dir, 'ledger.db'), port: 0 });
});
afterAll(async () => {
  await svc.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('atoma ledger task', () => {
  it('creates a signed inference task pinned to the model file digest', async () => {
    const model = join(dir, 'tiny.gguf');
    initModel(model, { seed: 3 });
    const key = join(dir, 'client.key');
    const r = await atoma('ledger', 'task', '--ledger', svc.url, '--model', model, '--sample', '2', '--key', key, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const task = svc.ledger.state.tasks[out.task];
    expect(task.digest).toBe((await hashFile(model)).toString('hex'));
    expect(task).toMatchObject({ kind: 'inference', creator: out.creator, security: { mode: 'sampling', n: 2 } });
    // A second call makes a second task (fresh id), from the same creator key.
    const again = JSON.parse((await atoma('ledger', 'task', '--ledger', svc.url, '--model', model, '--key', key, '--json')).stdout);
    expect(again.task).not.toBe(out.task);
    expect(again.creator).toBe(out.creator);
  }, 60_000);

  it('refuses bad arguments with typed errors and leaves the ledger unchanged', async () => {
    const seq = svc.ledger.state.seq;
    const key = join(dir, 'client.key');
    const bad = await atoma('ledger', 'task', '--ledger', svc.url, '--kind', 'gpu', '--digest', 'ab'.repeat(32), '--key', key);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ERR_USAGE');
    const big = await atoma('ledger', 'task', '--ledger', svc.url, '--kind', 'wasm', '--digest', 'ab'.repeat(32), '--sample', '1000', '--key', key);
    expect(big.code).toBe(1);
    expect(big.stderr).toContain('maxSampleSize');
    expect(svc.ledger.state.seq).toBe(seq);
  }, 60_000);
});
