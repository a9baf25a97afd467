/**
 * Loading a model by path: a GGUF file, or a Hugging Face directory (or one .safetensors file)
 * with config.json and tokenizer.json beside it. Weights stay in the file mappings.
 *
 * Identity (the digest the network agrees on):
 *  - GGUF: BLAKE3 (hex) of the file;
 *  - safetensors: the RFC 6962 Merkle root (BLAKE3, lib/engine merkleRoot) over the model's
 *    files sorted by name in code-unit order (config.json, tokenizer.json,
 *    tokenizer_config.json when present, and the .safetensors files), leaf = UTF-8 name, one 0x00
 *    byte, then the file's 32-byte BLAKE3.
 */
import { openSync, readSync, closeSync, statSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../engine/errors.js';
import { hashFile, merkleRoot } from '../engine/hash.js';
import { readGguf } from './gguf/reader.js';
import { ggufWeights } from './gguf/llama.js';
import { hfConfig, readSafetensors, safetensorsWeights } from './safetensors.js';
import { ggufTokenizer } from './tokenizer/gguf.js';
import { hfTokenizer } from './tokenizer/hf.js';
import type { LoadedModel } from './types.js';
import { checkedWeights } from './weights.js';

function isGguf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'GGUF';
  } finally {
    closeSync(fd);
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail('ERR_MODEL_FORMAT', `${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The Merkle identity of a set of files (see the module comment). */
export async function filesDigest(dir: string, names: string[]): Promise<string> {
  const sorted = names.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const leaves: Uint8Array[] = [];
  for (const n of sorted) leaves.push(Buffer.concat([Buffer.from(n, 'utf8'), Buffer.of(0), await hashFile(join(dir, n))]));
  return merkleRoot(leaves).toString('hex');
}

async function loadGguf(path: string): Promise<LoadedModel> {
  const file = readGguf(path);
  const weights = ggufWeights(file, path);
  const tokenizer = ggufTokenizer(file, path);
  const digest = (await hashFile(path)).toString('hex');
  weights.source = { digest, path };
  return { weights, tokenizer, digest, path };
}

async function loadSafetensors(path: string, dir: string, shards: string[]): Promise<LoadedModel> {
  if (shards.length === 0) fail('ERR_MODEL_FORMAT', `${dir}: no .safetensors files`);
  for (const f of ['config.json', 'tokenizer.json']) if (!existsSync(join(dir, f))) fail('ERR_MODEL_FORMAT', `${dir}: ${f} is missing beside the safetensors weights`);
  const files = shards.map((s) => ({ file: readSafetensors(join(dir, s)), what: join(dir, s) }));
  const map = safetensorsWeights(files);
  const cfgPath = join(dir, 'config.json');
  const cfg = readJson(cfgPath);
  const config = hfConfig(cfg, new Set(map.keys()), cfgPath);
  const weights = checkedWeights(config, map, dir);
  const tcPath = join(dir, 'tokenizer_config.json');
  const hasTc = existsSync(tcPath);
  const tokenizer = hfTokenizer(readJson(join(dir, 'tokenizer.json')), hasTc ? readJson(tcPath) : null, cfg, join(dir, 'tokenizer.json'));
  const digest = await filesDigest(dir, ['config.json', 'tokenizer.json', ...(hasTc ? ['tokenizer_config.json'] : []), ...shards]);
  return { weights, tokenizer, digest, path };
}

/**
 * Loads a model: weights (memory-mapped, checked against the configuration), tokenizer, digest.
 *
 * @example
 * const m = await loadModel('tiny.gguf');
 * const ids = m.tokenizer.encode('Hello', { addBos: true });
 * const wq = m.weights.get('blk.0.attn_q.weight');   // { format, shape, bytes (a view of the file) }
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  if (typeof path !== 'string' || path === '') fail('ERR_USAGE', 'loadModel: path must be a non-empty string');
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    fail('ERR_IO', `${path}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    const shards = readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort();
    return loadSafetensors(path, path, shards);
  }
  if (path.endsWith('.safetensors')) return loadSafetensors(path, dirname(path), [basename(path)]);
  if (st.size < 4) fail('ERR_MODEL_FORMAT', `${path}: truncated file: ${st.size} bytes`);
  if (!isGguf(path)) fail('ERR_MODEL_FORMAT', `${path}: bad magic: neither a GGUF file nor a .safetensors file or directory`);
  return loadGguf(path);
}
