#!/usr/bin/env node
// Long fuzz campaigns (docs/fuzzing.md). `npm test` runs ~300 cases per target; this runs as many
// as asked, over every target or some, and writes each failing input with its reproduction.
//
//   npm run fuzz -- --iterations 20000                 every target, a fresh seed (printed)
//   npm run fuzz -- --target gguf,tokenizer --seed 7 --iterations 5000
//   npm run fuzz -- --target gguf --seed 7 --case 1234  one case again
//   npm run fuzz -- --target gguf --replay fuzz-failures/gguf-seed7-case1234.bin
import { register } from 'node:module';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

register('../test/fuzz/ts-hooks.mjs', import.meta.url);
const { runCampaign, formatFailures } = await import('../test/fuzz/campaign.ts');
const { TARGETS } = await import('../test/fuzz/targets/index.ts');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    iterations: { type: 'string', default: '1000' },
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    case: { type: 'string' },
    from: { type: 'string', default: '0' },
    replay: { type: 'string', multiple: true },
    out: { type: 'string', default: 'fuzz-failures' },
    'case-timeout-ms': { type: 'string', default: '30000' },
    jobs: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(`npm run fuzz -- [--iterations N] [--target T[,T]] [--seed S] [--case I | --from I] [--replay FILE...] [--out DIR] [--jobs J]
targets: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(0);
}
const int = (name, v, min) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`fuzz: --${name} must be an integer >= ${min}, got '${v}'`);
    process.exit(2);
  }
  return n;
};
const targets = (values.target ?? Object.keys(TARGETS)).flatMap((t) => t.split(',')).filter(Boolean);
for (const t of targets) if (!TARGETS[t] && t !== 'planted-bug') { console.error(`fuzz: unknown target '${t}' (${Object.keys(TARGETS).join(', ')})`); process.exit(2); }
const replay = [...(values.replay ?? []), ...positionals];
if (replay.length && targets.length !== 1) { console.error('fuzz: --replay needs exactly one --target'); process.exit(2); }
const seed = values.seed ?? randomBytes(4).toString('hex');
const single = values.case !== undefined;
const from = single ? int('case', values.case, 0) : int('from', values.from, 0);
const iterations = single ? 1 : int('iterations', values.iterations, 1);
const jobs = int('jobs', values.jobs, 1);
const caseTimeoutMs = int('case-timeout-ms', values['case-timeout-ms'], 100);

console.log(replay.length ? `fuzz: replaying ${replay.length} file(s) on ${targets[0]}` : `fuzz: seed ${seed}, cases ${from}..${from + iterations - 1} on ${targets.join(', ')}, ${jobs} at a time`);
const reports = [];
const queue = [...targets];
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
    const r = await runCampaign({ target: t, seed, from, iterations, files: replay.length ? replay : undefined, failuresDir: values.out, caseTimeoutMs });
    const typed = Object.entries(r.typed).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
    console.log(`${t}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s: ${r.ok} ok, ${r.cases - r.ok - r.failures.length} typed (${typed}), ${r.failures.length} failed`);
    if (r.failures.length) console.log(formatFailures(r));
    reports.push(r);
  }
}));
const failed = reports.reduce((n, r) => n + r.failures.length, 0);
console.log(`fuzz: ${reports.reduce((n, r) => n + r.cases, 0)} cases, ${failed} failed${failed ? ` (inputs and notes in ${values.out}/)` : ''}`);
process.exit(failed ? 1 : 0);
