// The decode layouts' sidecar (lib/model/packed-weights.ts, packed-sidecar.ts), for a q8_0 and an
// f32 model: created in the cache directory on first use, reused after, rebuilt when corrupted or
// truncated (never used), older layout versions removed, safe under concurrent builders; the same
// bytes out of every pass with it, without it (packed in memory), and on the stored layout; an
// unusable cache directory still works (packs in memory, one warning).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configure, info } from '../lib/engine/config.js';
import { blake3 } from '../lib/engine/hash.js';
import { generate } from '../lib/model/generate.js';
import { initModel } from '../lib/model/init.js';
import { decodeLayoutPreferred, linear } from '../lib/model/linear.js';
import { LlamaModel } from '../lib/model/llama.js';
import { loadModel } from '../lib/model/load.js';
import { packedMatrices, sidecarPath } from '../lib/model/packed-weights.js';
import type { LoadedModel } from '../lib/model/types.js';

const initial = info();
const hasAvx512 = initial.isas.includes('avx512');
let dir: string;
const models: Record<'q8_0' | 'f32', LoadedModel> = {} as Record<'q8_0' | 'f32', LoadedModel>;
let model: LoadedModel;   // the model of the describe block running
const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(w.message);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'atoma-packed-'));
  writeFileSync(join(dir, 'a-file'), 'not a directory');
  for (const format of ['q8_0', 'f32'] as const) {
    const file = join(dir, `m-${format}.gguf`);
    // Non-multiples of the panels (vocab 300, ff 168, kv 2 x 12 = 24 rows) exercise padded panels.
    initModel(file, { seed: 11, layers: 2, dim: 96, heads: 4, kvHeads: 2, ff: format === 'q8_0' ? 160 : 168, vocab: 300, context: 64, format });
    models[format] = await loadModel(file);
  }
  process.on('warning', onWarning);
});
afterAll(() => {
  process.off('warning', onWarning);
  configure({ isa: initial.isa as 'scalar', threads: initial.threads });
  rmSync(dir, { recursive: true, force: true });
});

/** Digest of a greedy generation's tokens and every logit row of a prefill + decode. */
function run(m: LlamaModel): string {
  const [r] = generate(m, [{ prompt: [5, 17, 42, 99, 7, 3, 250, 12, 64, 8, 1], maxTokens: 6 }]);
  const cache = m.newCache();
  const pre = m.forward([{ cache, tokens: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3] }], { allLogits: true })[0];
  const dec = m.forward([{ cache, tokens: [7] }])[0];
  return `${r.outputDigest}/${blake3(pre).toString('hex')}/${blake3(dec).toString('hex')}`;
}

const sidecarOf = (cache: string) => sidecarPath(cache, model.digest);
const stored = () => model.weights.names().map((n) => model.weights.get(n)).filter((w) => (w.format === 'q8_0' || w.format === 'f32') && w.shape.length === 2);
const tick = () => new Promise((r) => setImmediate(r));

describe.each(['q8_0', 'f32'] as const)('packed-weights sidecar, %s model', (format) => {
  beforeAll(() => {
    model = models[format];
  });

  it('is created, reused, and rebuilt (never used) when corrupted or truncated', async () => {
    const cache = join(dir, `cache-a-${format}`);
    const ws = stored();
    // A sidecar of an older layout version is removed when the current one is built.
    const old = join(cache, 'packed', `${model.digest}.q8_0x128-v1.atpk`);
    mkdirSync(join(cache, 'packed'), { recursive: true });
    writeFileSync(old, 'an older layout');
    const a = packedMatrices(ws, { digest: model.digest, path: model.path }, { cacheDir: cache });
    expect(a.built).toBe(true);
    expect(a.file).toBe(sidecarOf(cache));
    expect(a.matrices.size).toBe(ws.length);
    const bytes = readFileSync(a.file!);
    expect(existsSync(old)).toBe(false);
    const b = packedMatrices(ws, { digest: model.digest, path: model.path }, { cacheDir: cache });
    expect(b.built).toBe(false);
    expect(b.file).toBe(a.file);
    // The mapped matrices compute exactly what the stored ones do, on every ISA path.
    for (const name of ['blk.1.ffn_up.weight', 'blk.0.attn_k.weight', 'output.weight']) {
      const w = ws.find((x) => x.name === name)!;
      const K = w.shape[1];
      for (const isa of info().isas as ('scalar' | 'avx2' | 'avx512')[]) {
        configure({ isa, threads: 2 });
        for (const M of [1, 3, 20]) {
          const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.61) * 1.5);
          expect(Buffer.from(linear(x, M, b.matrices.get(name)!).buffer), `${name} ${isa} M=${M}`).toEqual(Buffer.from(linear(x, M, w).buffer));
        }
      }
    }
    configure({ isa: initial.isa as 'scalar', threads: initial.threads });

    const corruptions: [string, (f: string) => void][] = [
      ['payload byte', (f) => { const d = readFileSync(f); d[d.length - 100] ^= 0x40; writeFileSync(f, d); }],
      ['header byte', (f) => { const d = readFileSync(f); d[60] ^= 0x01; writeFileSync(f, d); }],
      ['truncated', (f) => truncateSync(f, statSync(f).size - 4096)],
      ['empty', (f) => truncateSync(f, 0)],
      ['model digest', (f) => { const d = readFileSync(f); const i = d.indexOf(model.digest); d.write(model.digest.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), i); writeFileSync(f, d); }],
    ];
    const n0 = warnings.length;
    for (const [what, corrupt] of corruptions) {
      corrupt(a.file!);
      const c = packedMatrices(ws, { digest: model.digest, path: model.path }, { cacheDir: cache });
      expect(c.built, what).toBe(true);
      expect(readFileSync(c.file!).equals(bytes), what).toBe(true);
    }
    await tick();
    expect(warnings.slice(n0).filter((m) => m.includes('rebuilding')).length).toBe(corruptions.length);
    // No temp files are left behind.
    expect(readdirSync(join(cache, 'packed'))).toEqual([sidecarOf(cache).split('/').pop()]);
  });

  it('concurrent processes building the same sidecar both succeed and leave one valid file', async () => {
    const cache = join(dir, `cache-c-${format}`);
    const dist = fileURLToPath(new URL('../dist/model/', import.meta.url));
    const script = `const { loadModel } = await import(${JSON.stringify(join(dist, 'load.js'))});
      const { packedMatrices } = await import(${JSON.stringify(join(dist, 'packed-weights.js'))});
      const m = await loadModel(process.argv[1]);
      const ws = m.weights.names().map((n) => m.weights.get(n)).filter((w) => (w.format === 'q8_0' || w.format === 'f32') && w.shape.length === 2);
      const p = packedMatrices(ws, { digest: m.digest, path: m.path }, { cacheDir: process.argv[2] });
      console.log(JSON.stringify({ file: p.file, n: p.matrices.size }));`;
    const child = () => new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script, model.path, cache], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('error', reject);
      c.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}`))));
    });
    const outs = await Promise.all([child(), child(), child()]);
    for (const o of outs) expect(JSON.parse(o)).toEqual({ file: sidecarOf(cache), n: stored().length });
    expect(readdirSync(join(cache, 'packed'))).toEqual([sidecarOf(cache).split('/').pop()]);
    expect(packedMatrices(stored(), { digest: model.digest, path: model.path }, { cacheDir: cache }).built).toBe(false);
  });

  it.runIf(format === 'q8_0')('an unusable cache directory packs in memory, with one warning', async () => {
    const notDir = join(dir, 'a-file');
    const n0 = warnings.length;
    const p1 = packedMatrices(stored(), { digest: model.digest, path: model.path }, { cacheDir: notDir });
    const p2 = packedMatrices(stored(), { digest: model.digest, path: model.path }, { cacheDir: notDir });
    expect(p1.file).toBeNull();
    expect(p2.file).toBeNull();
    expect(p1.matrices.size).toBe(stored().length);
    await tick();
    expect(warnings.slice(n0).filter((m) => m.includes('packing in memory')).length).toBe(1);
    for (const [name, w] of p1.matrices) expect(Buffer.from(w.bytes).equals(Buffer.from(p2.matrices.get(name)!.bytes))).toBe(true);
  });

  // The sidecar is read on the AVX-512 path only: a CPU without it has nothing to compare here
  // (the first test above still checks the packed layouts on every path it has).
  it.skipIf(!hasAvx512)(`every pass gives the same bytes with the sidecar, packed in memory, and on the stored layout${hasAvx512 ? '' : ' (skipped: this CPU has no AVX-512)'}`, () => {
    configure({ isa: 'avx512', threads: 2 });
    expect(decodeLayoutPreferred()).toBe(true);
    const cache = join(dir, `cache-b-${format}`);
    const first = new LlamaModel(model.weights, { packedCacheDir: cache });
    expect(first.packedWeights).toMatchObject({ file: sidecarOf(cache), built: true, count: stored().filter((w) => w.name !== 'token_embd.weight').length });
    const withSidecar = run(first);
    const again = new LlamaModel(model.weights, { packedCacheDir: cache });
    expect(again.packedWeights).toMatchObject({ file: sidecarOf(cache), built: false });
    expect(run(again)).toBe(withSidecar);
    const inMemory = new LlamaModel(model.weights, { packedCacheDir: null });
    expect(inMemory.packedWeights).toMatchObject({ file: null, built: false });
    expect(run(inMemory)).toBe(withSidecar);
    const unusable = new LlamaModel(model.weights, { packedCacheDir: join(dir, 'a-file') });
    expect(unusable.packedWeights?.file).toBeNull();
    expect(run(unusable)).toBe(withSidecar);
    // Other ISA paths read the stored layout (decodeLayoutPreferred is false there).
    for (const isa of info().isas.filter((i) => i !== 'avx512') as ('scalar' | 'avx2')[]) {
      configure({ isa, threads: 1 });
      const m = new LlamaModel(model.weights, { packedCacheDir: cache });
      expect(m.packedWeights).toBeNull();
      expect(run(m), isa).toBe(withSidecar);
    }
  });
});
