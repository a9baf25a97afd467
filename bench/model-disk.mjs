// usage: node bench/model-disk.mjs [DIST] [fixed|before]
//   DIST: a compiled dist/ (default this repository's); `before` puts the sidecar where the node's
//   engine put it before issue 13 (ATOMA_CACHE_DIR), `fixed` (default) in cache_dir.
//
// Disk use of a node serving a `path =` Q8_0 model: du -s --bytes (hard links counted once) over
// the model's directory (model + node cache_dir) and ATOMA_CACHE_DIR, after AtomaNode.start, then
// after the decode-layout sidecar is built as an AVX-512 node builds it (packedMatrices into the
// directory the node's engine uses: cache_dir with the fix, ATOMA_CACHE_DIR before).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const dist = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'), fixed = process.argv[3] !== 'before';
const { initModel } = await import(join(dist, 'model/init.js'));
const { hashFile } = await import(join(dist, 'engine/hash.js'));
const { parseConfig } = await import(join(dist, 'node/config.js'));
const { AtomaNode } = await import(join(dist, 'node/node.js'));
const { loadModel } = await import(join(dist, 'model/load.js'));
const { packedMatrices } = await import(join(dist, 'model/packed-weights.js'));
const home = mkdtempSync(join(tmpdir(), 'atoma-disk-')), env = mkdtempSync(join(tmpdir(), 'atoma-envcache-'));
process.env.ATOMA_CACHE_DIR = env;
const model = join(home, 'm.gguf');
initModel(model, { seed: 3, format: 'q8_0', layers: 8, dim: 512, heads: 8, kvHeads: 8, ff: 1536, vocab: 4096 });
const digest = (await hashFile(model)).toString('hex');
const cfg = parseConfig(`[node]\ncache_dir = "cache"\n[ledger]\nkind = "embedded"\npath = "ledger.db"\n[keys]\nnode_key = "node.key"\n[[tasks]]\nname = "m"\nmodel = "${digest}"\npath = "m.gguf"\n`, home);
const node = await AtomaNode.start(cfg, { port: 0, logger: () => {} });
await node.close();
const du = () => Number(execFileSync('du', ['-s', '--bytes', '--exclude=*.db*', '--exclude=*.key', home, env]).toString().trim().split('\n').reduce((a, l) => a + Number(l.split('\t')[0]), 0));
const size = statSync(model).size;
const afterStart = du();
const m = await loadModel(model);
const names = m.weights.names().filter((n) => n !== 'token_embd.weight').map((n) => m.weights.get(n));
const p = packedMatrices(names, { digest, path: model }, { cacheDir: fixed ? join(home, 'cache') : env });
const afterSidecar = du();
console.log(JSON.stringify({ build: fixed ? 'fixed' : 'before', modelBytes: size, afterStart, afterStartRatio: +(afterStart / size).toFixed(2), sidecar: p.file, afterSidecar, afterSidecarRatio: +(afterSidecar / size).toFixed(2) }));
rmSync(home, { recursive: true, force: true });
rmSync(env, { recursive: true, force: true });
