/**
 * A fuzz worker process: builds one target's seeds and runs a range of cases (or given input
 * files), writing one JSON line per event to fd 3 *synchronously*, so the line naming the case
 * that starts is on the pipe before the case runs: when the process aborts or hangs, the
 * parent knows which input did it, and finds that input in the scratch file (written before
 * each case: a seed built with fresh randomness, as sealed envelopes are, could not be rebuilt
 * byte for byte). Run by campaign.ts; never by hand.
 */
import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { caseInput, judge } from './target.js';
import { loadTarget } from './targets/index.js';
import { caseFileName, type ChildJob, type ChildMessage } from './child-protocol.js';

const send = (m: ChildMessage) => writeSync(3, JSON.stringify(m) + '\n');

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as ChildJob;
  const target = await loadTarget(job.target);
  const seeds = await target.seeds();
  send({ t: 'ready', seeds: seeds.length });
  const indices = job.files ? job.files.map((_, i) => i) : Array.from({ length: job.to! - job.from! }, (_, k) => job.from! + k);
  for (const i of indices) {
    const input = job.files ? new Uint8Array(readFileSync(job.files[i])) : caseInput(target, seeds, job.seed, i);
    writeFileSync(job.scratch, input);
    send({ t: 'begin', i });
    const outcome = await judge(target, input);
    if (outcome.kind === 'untyped' && job.failuresDir && !job.files) writeFileSync(join(job.failuresDir, caseFileName(job.target, job.seed, i)), input);
    send({ t: 'end', i, outcome });
  }
  send({ t: 'done' });
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`fuzz child: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(70);
});
