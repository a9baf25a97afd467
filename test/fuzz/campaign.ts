/**
 * Runs a fuzz campaign: one target's cases in child processes (child.ts), watched from here.
 * A case that throws an untyped error fails in the child; one that kills the child (an abort, a
 * heap limit, a signal) fails as a crash, one that runs past the per-case limit as a hang (the
 * child is killed). Either way a fresh child goes on with the next case, so one campaign finds
 * every failure in its range. Failing inputs are written to a folder with the command that
 * reproduces each.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { caseFileName, type ChildJob, type ChildMessage } from './child-protocol.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const REPO_ROOT = join(here, '..', '..');
const CHILD = join(here, 'child.ts');
const REGISTER = pathToFileURL(join(here, 'register-ts.mjs')).href;

export interface CampaignOptions {
  target: string;
  /** Any string; the same seed gives the same cases. */
  seed: string;
  /** Cases [from, from + iterations). */
  iterations: number;
  from?: number;
  /** Replay these input files instead of generated cases. */
  files?: string[];
  /** A case running longer is a hang (default 30 s: a hang detector, generous for loaded machines). */
  caseTimeoutMs?: number;
  /** Limit for loading the target and building its seeds (default 180 s). */
  setupTimeoutMs?: number;
  /** The child's V8 heap limit: a case that exhausts it is a crash, not a swapping machine. */
  heapMb?: number;
  /** Where failing inputs go (with a .txt naming the failure and the command); null: nowhere. */
  failuresDir?: string | null;
}

export type FailureKind = 'untyped' | 'crash' | 'hang' | 'seed';

export interface CaseFailure {
  index: number;
  kind: FailureKind;
  detail: string;
  /** The input's file in failuresDir (or the replayed file). */
  file?: string;
}

export interface CampaignReport {
  target: string;
  seed: string;
  cases: number;
  ok: number;
  /** Typed refusals by code. */
  typed: Record<string, number>;
  failures: CaseFailure[];
  /** Child processes started (1 + one per crash or hang). */
  children: number;
  ms: number;
}

interface ChildRun {
  messages: ChildMessage[];
  /** The case begun and not ended when the child stopped, if any. */
  inFlight: number | null;
  lastEnded: number | null;
  ready: boolean;
  done: boolean;
  timedOut: 'setup' | 'case' | null;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  tail: string;
}

function runChild(job: ChildJob, o: Required<Pick<CampaignOptions, 'caseTimeoutMs' | 'setupTimeoutMs' | 'heapMb'>>, onMessage: (m: ChildMessage) => void): Promise<ChildRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', `--max-old-space-size=${o.heapMb}`, '--import', REGISTER, CHILD, JSON.stringify(job)], {
      cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const run: ChildRun = { messages: [], inFlight: null, lastEnded: null, ready: false, done: false, timedOut: null, exit: { code: null, signal: null }, tail: '' };
    const keep = (b: Buffer) => { run.tail = (run.tail + b.toString('utf8')).slice(-8192); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let timer = setTimeout(() => { run.timedOut = 'setup'; child.kill('SIGKILL'); }, o.setupTimeoutMs);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { run.timedOut = 'case'; child.kill('SIGKILL'); }, o.caseTimeoutMs);
    };
    let buffered = '';
    (child.stdio[3] as Readable).on('data', (b: Buffer) => {
      buffered += b.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const m = JSON.parse(buffered.slice(0, nl)) as ChildMessage;
        buffered = buffered.slice(nl + 1);
        // The limit also covers drawing the next case's input (the mutators are code too).
        if (m.t === 'ready') { run.ready = true; arm(); }
        if (m.t === 'begin') { run.inFlight = m.i; arm(); }
        if (m.t === 'end') { run.inFlight = null; run.lastEnded = m.i; arm(); }
        if (m.t === 'done') run.done = true;
        onMessage(m);
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.exit = { code, signal };
      resolve(run);
    });
  });
}

function reproCommand(target: string, seed: string, index: number, file: string | undefined): string {
  const byCase = `npm run fuzz -- --target ${target} --seed ${JSON.stringify(seed)} --case ${index}`;
  return file ? `npm run fuzz -- --target ${target} --replay ${relative(process.cwd(), file) || file}\n  or: ${byCase}` : byCase;
}

/**
 * Runs one target's campaign to the end, whatever the cases do.
 *
 * @example
 * const r = await runCampaign({ target: 'gguf', seed: '1', iterations: 300, failuresDir: 'fuzz-failures' });
 * if (r.failures.length) console.log(formatFailures(r));
 */
export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const started = Date.now();
  const o = { caseTimeoutMs: opts.caseTimeoutMs ?? 30_000, setupTimeoutMs: opts.setupTimeoutMs ?? 180_000, heapMb: opts.heapMb ?? 2048 };
  const from = opts.from ?? 0;
  const end = opts.files ? opts.files.length : from + opts.iterations;
  const report: CampaignReport = { target: opts.target, seed: opts.seed, cases: 0, ok: 0, typed: {}, failures: [], children: 0, ms: 0 };
  let seeds = 0;
  let next = opts.files ? 0 : from;
  const work = mkdtempSync(join(tmpdir(), 'atoma-fuzz-'));
  const scratch = join(work, 'in-flight.bin');
  const dir = opts.failuresDir ?? null;
  if (dir) mkdirSync(dir, { recursive: true });
  /** The saved input of a failing case: the replayed file, or the child's copy of a generated one. */
  const fileOf = (index: number, inFlight: boolean): string | undefined => {
    if (opts.files) return opts.files[index];
    if (!dir) return undefined;
    const f = join(dir, caseFileName(opts.target, opts.seed, index));
    if (inFlight) copyFileSync(scratch, f);
    return f;
  };
  try {
    while (next < end) {
      const offset = opts.files ? next : 0;
      const job: ChildJob = opts.files
        ? { target: opts.target, seed: opts.seed, files: opts.files.slice(next), scratch, failuresDir: null }
        : { target: opts.target, seed: opts.seed, from: next, to: end, scratch, failuresDir: dir };
      report.children++;
      const run = await runChild(job, o, (m) => {
        if (m.t === 'ready') seeds = opts.files ? 0 : m.seeds;
        if (m.t !== 'end') return;
        const index = m.i + offset;
        report.cases++;
        if (m.outcome.kind === 'ok') report.ok++;
        else if (m.outcome.kind === 'typed') report.typed[m.outcome.code] = (report.typed[m.outcome.code] ?? 0) + 1;
        if (m.outcome.kind === 'untyped') report.failures.push({ index, kind: 'untyped', detail: m.outcome.error, file: fileOf(index, false) });
        else if (index < seeds && m.outcome.kind !== 'ok') report.failures.push({ index, kind: 'seed', detail: `seed ${index} does not run to success: ${JSON.stringify(m.outcome)}` });
      });
      if (run.done) break;
      if (!run.ready) throw new Error(`fuzz target '${opts.target}': setup ${run.timedOut ? `ran past ${o.setupTimeoutMs} ms` : `failed (exit ${run.exit.code ?? run.exit.signal})`}:\n${run.tail}`);
      const how = run.exit.signal ? `signal ${run.exit.signal}` : `exit code ${run.exit.code}`;
      if (run.inFlight !== null) {
        const index = run.inFlight + offset;
        report.cases++;
        report.failures.push(run.timedOut === 'case'
          ? { index, kind: 'hang', detail: `no result after ${o.caseTimeoutMs} ms (killed)\n${run.tail}`, file: fileOf(index, true) }
          : { index, kind: 'crash', detail: `the process died (${how}) in this case\n${run.tail}`, file: fileOf(index, true) });
        next = index + 1;
      } else if (run.timedOut === 'case') {
        // Stuck between cases: drawing the next input, the fuzzer's own code, ran past the limit.
        const index = run.lastEnded === null ? next : run.lastEnded + offset + 1;
        report.cases++;
        report.failures.push({ index, kind: 'hang', detail: `drawing this case's input (a mutator, not the target) ran past ${o.caseTimeoutMs} ms\n${run.tail}` });
        next = index + 1;
      } else {
        // Died between cases (an unhandled rejection after a case returned): blame the last one.
        const last = run.lastEnded === null ? next : run.lastEnded + offset;
        report.failures.push({ index: last, kind: 'crash', detail: `the process died (${how}) ${run.lastEnded === null ? 'before' : 'after'} this case\n${run.tail}` });
        next = last + 1;
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (dir) {
    for (const f of report.failures) {
      const note = `${opts.target} case ${f.index} (seed ${opts.seed}): ${f.kind}\n\nreproduce: ${reproCommand(opts.target, opts.seed, f.index, f.file)}\n\n${f.detail}\n`;
      writeFileSync(f.file && !opts.files ? f.file.replace(/\.bin$/, '.txt') : join(dir, `${opts.target}-seed${opts.seed}-case${f.index}.txt`), note);
    }
  }
  report.ms = Date.now() - started;
  return report;
}

/** The failures of a report as text: kind, case, input file, reproduction and the error. */
export function formatFailures(r: CampaignReport): string {
  return r.failures.map((f) => `${r.target} case ${f.index} (seed ${r.seed}): ${f.kind}${f.file ? `\n  input: ${f.file}` : ''}\n  reproduce: ${reproCommand(r.target, r.seed, f.index, f.file)}\n  ${f.detail.split('\n').slice(0, 12).join('\n  ')}`).join('\n\n');
}
