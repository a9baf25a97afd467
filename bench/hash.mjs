// `atoma hash` vs `b3sum` on the same 1 GiB file, one thread each, measured in the same run.
// usage: node bench/hash.mjs [--mib 1024]
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atoma, bestTime, has, report, run } from './lib.mjs';

const mib = process.argv.includes('--mib') ? Number(process.argv[process.argv.indexOf('--mib') + 1]) : 1024;
const dir = mkdtempSync(join(tmpdir(), 'atoma-bench-'));
const file = join(dir, 'data.bin');
const empty = join(dir, 'empty.bin');
closeSync(openSync(empty, 'w'));
const fd = openSync(file, 'w');
const block = Buffer.alloc(1 << 20);
for (let i = 0; i < mib; i++) {
  for (let j = 0; j < block.length; j += 4) block.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
  writeSync(fd, block);
}
closeSync(fd);

try {
  const ours = run(process.execPath, [atoma, 'hash', file], { ATOMA_THREADS: '1' }).split(' ')[0];
  const tOurs = bestTime(process.execPath, [atoma, 'hash', file], { ATOMA_THREADS: '1' });
  const rows = [];
  if (has('b3sum')) {
    const theirs = run('b3sum', ['--num-threads', '1', '--no-names', file]).trim();
    if (theirs !== ours) throw new Error(`digest mismatch: atoma ${ours}, b3sum ${theirs}`);
    const tPeer = bestTime('b3sum', ['--num-threads', '1', file]);
    rows.push({ case: `hash ${mib} MiB file, 1 thread, whole process`, atoma_gibps: mib / 1024 / tOurs, b3sum_gibps: mib / 1024 / tPeer, ratio: tPeer / tOurs, target: 0.8 });
    // Each tool's fixed start-up (Node's bootstrap is ~50 ms, b3sum's ~1 ms), measured on an
    // empty file, taken out: what is left is the hashing throughput of the two programs.
    const tOurs0 = bestTime(process.execPath, [atoma, 'hash', empty], { ATOMA_THREADS: '1' }, 5);
    const tPeer0 = bestTime('b3sum', ['--num-threads', '1', empty], {}, 5);
    rows.push({ case: `hash ${mib} MiB file, 1 thread, net of start-up`, atoma_gibps: mib / 1024 / (tOurs - tOurs0), b3sum_gibps: mib / 1024 / (tPeer - tPeer0), ratio: (tPeer - tPeer0) / (tOurs - tOurs0), atoma_startup_s: tOurs0, b3sum_startup_s: tPeer0 });
  } else {
    console.error('b3sum is not installed (apt-get install b3sum): the peer is skipped');
    rows.push({ case: `hash ${mib} MiB file, 1 thread`, atoma_gibps: mib / 1024 / tOurs });
  }
  const tAll = bestTime(process.execPath, [atoma, 'hash', file]);
  rows.push({ case: `hash ${mib} MiB file, all threads`, atoma_gibps: mib / 1024 / tAll });
  report('BLAKE3 file hashing vs b3sum, same run', rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
