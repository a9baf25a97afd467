// Helpers shared by the benchmark scripts: run the CLI, time commands, print JSON and a table.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const atoma = join(root, 'dist', 'cli', 'atoma.js');

export function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

export function atomaJson(args, env = {}) {
  return JSON.parse(run(process.execPath, [atoma, ...args, '--json'], env).trim().split('\n').pop());
}

export function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
}

/** Best wall time in seconds of `cmd args` over `reps` runs. */
export function bestTime(cmd, args, env = {}, reps = 3) {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    run(cmd, args, env);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

export function report(title, rows) {
  console.log(JSON.stringify({ bench: title, rows }));
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v ?? ''));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals) => vals.map((v, i) => v.padStart(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(keys));
  for (const r of rows) console.log(line(keys.map((k) => cell(r[k]))));
}
