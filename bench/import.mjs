// What importing each entry point of the package costs: wall time from the start of `import()` to
// its end (median and best), the CPU time it took (user + system, all threads: less sensitive to a
// busy machine than wall time), RSS after it and the peak RSS (VmHWM), each in a fresh node.
// The import resolves the package by its own name ("exports"), as a consumer's would.
// Target (issue 13): atoma-node/engine <= 50 ms and <= 50 MiB.
// usage: node bench/import.mjs [--reps 7] [--only engine,root]
import { spawnSync } from 'node:child_process';
import { report, root } from './lib.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const reps = Number(arg('--reps', '7'));
const ENTRIES = ['root', 'engine', 'model', 'protocol', 'sui', 'node', 'wasm', 'crypto'];
const only = arg('--only', ENTRIES.join(',')).split(',');

// Runs in the child: nothing is loaded before performance.now(), so the figure is the import alone.
const PROBE = `
import { readFileSync } from 'node:fs';
const t0 = performance.now(), c0 = process.cpuUsage();
await import(process.env.ATOMA_BENCH_SPEC);
const ms = performance.now() - t0, c = process.cpuUsage(c0);
const status = readFileSync('/proc/self/status', 'utf8');
const kib = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(status)?.[1] ?? NaN);
process.stdout.write(JSON.stringify({ ms, cpu: (c.user + c.system) / 1000, rss: process.memoryUsage().rss / 2 ** 20, hwm: kib('VmHWM') / 1024 }));
`;

function once(spec) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], { cwd: root, encoding: 'utf8', env: { ...process.env, ATOMA_BENCH_SPEC: spec } });
  if (r.status !== 0) throw new Error(`import ${spec} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// A bare node with nothing imported: the floor every row includes.
const floor = once('node:fs');
const rows = [{ entry: 'node:fs (bare node)', import_ms: floor.ms, min_ms: floor.ms, cpu_ms: floor.cpu, rss_mib: floor.rss, hwm_mib: floor.hwm }];
for (const e of ENTRIES.filter((x) => only.includes(x))) {
  const spec = e === 'root' ? 'atoma-node' : `atoma-node/${e}`;
  once(spec); // warm the file cache so every run reads from memory
  const runs = Array.from({ length: reps }, () => once(spec));
  const row = { entry: spec, import_ms: median(runs.map((r) => r.ms)), min_ms: Math.min(...runs.map((r) => r.ms)), cpu_ms: median(runs.map((r) => r.cpu)), rss_mib: median(runs.map((r) => r.rss)), hwm_mib: median(runs.map((r) => r.hwm)) };
  if (e === 'engine') Object.assign(row, { target_ms: 50, target_mib: 50 });
  rows.push(row);
}
report(`import cost, median of ${reps} fresh processes (node ${process.version})`, rows);
