import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configure, info } from '../lib/engine/config.js';
import { AtomaError } from '../lib/engine/errors.js';
import { initModel } from '../lib/model/init.js';
import { LlamaModel } from '../lib/model/llama.js';
import { loadModel } from '../lib/model/load.js';
import { execute, forge, refereeLeaf, replay, type Assignment } from '../lib/node/executor.js';
import { runDevnet } from '../lib/node/devnet.js';
import { Trace } from '../lib/protocol/trace.js';
import { cli, runCli, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-devnet-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Live (not zombie) processes whose parent is `ppid` (Linux /proc). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
    const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(parent) === ppid && state !== 'Z') out.push(Number(e));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}


/** `atoma devnet` with its temp dir under `tmp`, once every node process has opened its node.db. */
async function startDevnetCli(tmp: string) {
  mkdirSync(tmp, { recursive: true });
  const child = spawn(process.execPath, [cli, 'devnet', '--nodes', '3', '--sample', '2', '--requests', '500', '--tokens', '4'],
    { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const dbs = () => readdirSync(tmp).filter((d) => d.startsWith('atoma-devnet-'))
    .flatMap((d) => [0, 1, 2, 3].map((i) => join(tmp, d, `node-${i}`, 'node.db'))).filter((f) => existsSync(f)).length;
  const nodes = await until(`4 node processes (${err})`, () => { const k = childrenOf(child.pid!); return k.length === 4 && dbs() === 4 && k; });
  return { child, exited, nodes };
}

describe('executor', () => {
  it('replays, forges and lets the referee expose the first differing leaf', async () => {
    const path = join(dir, 'm.gguf');
    initModel(path, { seed: 1 });
    const model = new LlamaModel((await loadModel(path)).weights);
    const L = model.config.blockCount;
    const a: Assignment = { prompt: [5, 17, 230, 41], maxTokens: 6, seed: 9, temperature: 0.8 };
    const honest = execute(model, a);
    expect(honest.leaves.length).toBe(6 * L);
    // Teacher-forcing the honest tokens gives generate's own trace.
    expect(replay(model, a.prompt, honest.tokens).traceRoot).toBe(honest.traceRoot);
    const forged = forge(model, a, honest, 2);
    expect(forged.outputDigest).not.toBe(honest.outputDigest);
    expect(forged.traceRoot).not.toBe(honest.traceRoot);
    // Bisection's result: the first differing leaf. The referee recomputes exactly that one.
    const first = honest.leaves.findIndex((x, i) => !x.equals(forged.leaves[i]));
    expect(first).toBe(3 * L);        // token 2 changed -> step 3, layer 0
    const ref = refereeLeaf(model, a, first).leafHash;
    expect(ref).toBe(Trace.fromLeafHashes(honest.leaves).leaf(first));
    expect(ref).not.toBe(Trace.fromLeafHashes(forged.leaves).leaf(first));
    // Any leaf, including step 0 and a later layer, on another CPU path.
    configure({ isa: info().isas[0], threads: 1 });
    for (const i of [0, 1, 2 * L + L - 1, 6 * L - 1]) expect(refereeLeaf(model, a, i).leafHash).toBe(honest.leaves[i].toString('hex'));
    expect(() => refereeLeaf(model, a, 6 * L)).toThrow(AtomaError);
  });
});

describe('devnet', () => {
  it('runs a real network: no false disputes, no tampered result settled, the tamperer slashed', async () => {
    // The fair clock: an honest node slowed down by a loaded machine is never slashed for it.
    const r = await runDevnet({ nodes: 6, sample: 3, byzantine: 1, requests: 10, behavior: 'tamper', maxTokens: 4, timeoutMs: 50_000, clock: 'fair' });
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.settled).toBe(10);
    expect(r.falseDisputes).toBe(0);
    expect(r.tamperedSettled).toBe(0);
    expect(r.honestSlashed).toBe(0);
    // Honest nodes on different (ISA, threads) paths revealed identical digests.
    expect(r.honestDisagreements).toBe(0);
    expect(r.crossPathAgreements).toBeGreaterThan(0);
    expect(r.pathMismatches).toBe(0);
    expect(r.executions).toBeGreaterThanOrEqual(3 * r.settled);
    // Each node is its own process with its own ATOMA_ISA / ATOMA_THREADS: the paths differ at once.
    expect(new Set(r.paths.filter((p) => p.role === 'honest').map((p) => p.isa)).size).toBe(Math.min(3, info().isas.length));
    expect(new Set(r.paths.map((p) => p.threads))).toEqual(new Set([1, 2]));
    const tamperer = r.paths.find((p) => p.role === 'tamper')!;
    // Every request it was sampled for ends in a dispute that it loses (sampled with 2 honest nodes).
    expect(r.disputes).toBe(tamperer.sampled);
    expect(r.disputesWonByHonest).toBe(r.disputes);
    expect(r.leafDisputes).toBe(r.disputes);
    expect(tamperer.slashed).toBe(tamperer.sampled);
    if (tamperer.sampled > 0) expect(r.byzantineSlashed).toBe(1);
    expect(r.payments).toBeGreaterThanOrEqual(2 * r.settled);
    expect(r.ledgerVerified).toBe(true);
    // Every request, commit and reveal (and every bisection and verdict) was signed by its actor.
    expect(r.signedEvents).toBeGreaterThanOrEqual(7 * r.settled + r.disputes);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.p99).toBeGreaterThanOrEqual(r.latencyMs.p50);
  });

  it('copiers and silent nodes are slashed for missed deadlines and replaced', async () => {
    // Which deadlines pass is decided by the protocol's progress, not by how fast this machine
    // runs (fairClock): honest nodes cannot miss theirs, and the silent nodes' and copiers' pass
    // without waiting, so the deadlines can be long.
    const r = await runDevnet({
      nodes: 6, sample: 3, byzantine: 3, requests: 6, behavior: 'mixed', maxTokens: 3, timeoutMs: 50_000,
      params: { commitMs: 60_000, revealMs: 60_000 }, clock: 'fair',
    });
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.settled).toBe(6);
    expect(r.falseDisputes).toBe(0);
    expect(r.tamperedSettled).toBe(0);
    expect(r.honestSlashed).toBe(0);
    const copier = r.paths.find((p) => p.role === 'copy')!;
    const silent = r.paths.find((p) => p.role === 'silent')!;
    expect(copier.slashed).toBe(copier.sampled);
    expect(silent.slashed).toBe(silent.sampled);
    expect(r.timeouts).toBe(copier.sampled + silent.sampled);
    expect(r.disputes).toBe(r.paths.find((p) => p.role === 'tamper')!.sampled);
  });

  it.runIf(process.platform === 'linux')('every node process dies with the devnet: SIGINT (temp dir removed too) and kill -9', async () => {
    const a = join(dir, 'sigint');
    const run = await startDevnetCli(a);
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGINT' });
    await until('the node processes to exit', () => run.nodes.every((pid) => !alive(pid)), 10_000);
    expect(readdirSync(a)).toEqual([]);
    // The parent killed outright: each node sees its IPC channel close and exits by itself.
    const b = join(dir, 'sigkill');
    const run2 = await startDevnetCli(b);
    run2.child.kill('SIGKILL');
    await run2.exited;
    await until('the orphaned node processes to exit', () => run2.nodes.every((pid) => !alive(pid)), 10_000);
  }, 60_000);

  it('reports usage errors from the CLI', () => {
    const res = runCli(['devnet', '--nodes', '2', '--sample', '3', '--requests', '1']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/sample must be at most nodes/);
  });
});
