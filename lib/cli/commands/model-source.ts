/** Shared by `atoma run` and `atoma trace`: opens --model, or the tiny default model in the cache. */
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../../engine/errors.js';
import { hashFile } from '../../engine/hash.js';
import { ggufWeights } from '../../model/gguf/llama.js';
import { readGguf } from '../../model/gguf/reader.js';
import { initModel } from '../../model/init.js';
import { LlamaModel } from '../../model/llama.js';
import { ggufTokenizer } from '../../model/tokenizer/gguf.js';
import type { LoadedModel } from '../../model/types.js';

/** ~/.cache/atoma, or $ATOMA_CACHE_DIR. */
export function cacheDir(): string {
  return process.env.ATOMA_CACHE_DIR || join(homedir(), '.cache', 'atoma');
}

/**
 * The model ready to run, its decode-layout sidecar (if this CPU path uses one) in cacheDir().
 * Building the sidecar writes about the model's size again: stderr names the file when it does.
 */
export function newModel(loaded: LoadedModel): LlamaModel {
  const model = new LlamaModel(loaded.weights, { packedCacheDir: cacheDir() });
  const p = model.packedWeights;
  if (p?.built && p.file) console.error(`atoma: wrote the decode layout of ${loaded.path} to ${p.file} (reused by later runs; ATOMA_CACHE_DIR moves it)`);
  return model;
}

/** The model at `path`, or (no path) the seeded tiny model, created on first use. */
export async function openModel(path: string | undefined): Promise<LoadedModel> {
  let file = path;
  if (file === undefined) {
    const dir = cacheDir();
    file = join(dir, 'tiny-default-seed7.gguf');
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true });
      initModel(file, { seed: 7 });
    }
  }
  if (!existsSync(file)) fail('ERR_IO', `no model file at '${file}'`);
  // lib/model/load.ts (GGUF and safetensors) when present; else the GGUF reader directly.
  const loader = '../../model/load.js';
  try {
    const mod = (await import(loader)) as { loadModel?: (p: string) => Promise<LoadedModel> };
    if (mod.loadModel) return await mod.loadModel(file);
  } catch (e) {
    if (!(e instanceof Error && 'code' in e && (e as { code: string }).code === 'ERR_MODULE_NOT_FOUND')) throw e;
  }
  const gguf = readGguf(file);
  return { weights: ggufWeights(gguf, file), tokenizer: ggufTokenizer(gguf, file), digest: (await hashFile(file)).toString('hex'), path: file };
}
