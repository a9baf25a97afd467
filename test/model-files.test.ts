import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomaError, loadModel, initModel, encodeGguf, readGguf, blake3, merkleRoot } from '../lib/index.js';
import { initModelSpec } from '../lib/model/init.js';
import { readSafetensors } from '../lib/model/safetensors.js';
import { runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-models-'));

const HF: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight',
  attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj', ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};
function hfName(g: string): string {
  if (HF[g]) return HF[g];
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(g)!;
  return `model.layers.${m[1]}.${HF[m[2]]}.${m[3]}`;
}

/** Writes a safetensors file (header padded to 8 bytes, as Hugging Face does). */
function writeSafetensors(path: string, tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[], extra: Record<string, unknown> = {}) {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' }, ...extra };
  let off = 0;
  for (const t of tensors) { header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] }; off += t.data.length; }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => t.data)]));
}

/** An HF checkpoint directory equivalent to the init model of `seed` (f16 weights). */
function hfDir(name: string, seed: number, opts: { bias?: boolean; tied?: boolean } = {}) {
  const d = join(dir, name);
  mkdirSync(d);
  const spec = initModelSpec({ seed, layers: 2, format: 'f16', ...opts });
  const tensors = spec.tensors.map((t) => ({ name: hfName(t.name), dtype: t.format.toUpperCase(), shape: [...t.shape], data: t.data }));
  writeSafetensors(join(d, 'model.safetensors'), tensors);
  writeFileSync(join(d, 'config.json'), JSON.stringify({
    model_type: opts.bias ? 'qwen2' : 'llama', vocab_size: 512, max_position_embeddings: 512, hidden_size: 64, num_hidden_layers: 2,
    intermediate_size: 192, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: !!opts.tied,
  }));
  const meta = new Map(spec.metadata);
  const tokens = meta.get('tokenizer.ggml.tokens')!.value as string[];
  const merges = meta.get('tokenizer.ggml.merges')!.value as string[];
  const specials = tokens.slice(507);
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({
    added_tokens: specials.map((c, i) => ({ id: 507 + i, content: c, special: true })),
    normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true }, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', vocab: Object.fromEntries(tokens.slice(0, 507).map((t, i) => [t, i])), merges },
  }));
  writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|bos|>', eos_token: '<|eos|>', chat_template: meta.get('tokenizer.chat_template')!.value }));
  return { dir: d, spec };
}

function code(e: unknown): string {
  return e instanceof AtomaError ? e.code : String(e);
}

describe('safetensors directories', () => {
  let hf: ReturnType<typeof hfDir>;
  let ggufPath: string;
  beforeAll(() => {
    hf = hfDir('hf', 4);
    ggufPath = join(dir, 'same.gguf');
    initModel(ggufPath, { seed: 4, layers: 2, format: 'f16' });
  });

  it('maps Hugging Face names onto the same weights and tokenizer as the GGUF', async () => {
    const a = await loadModel(hf.dir);
    const b = await loadModel(ggufPath);
    expect(a.weights.config).toEqual({ ...b.weights.config, ropeNeox: true, rmsNormEps: 1e-5 });
    expect(a.weights.names().sort()).toEqual(b.weights.names().sort());
    for (const n of b.weights.names()) {
      const [x, y] = [a.weights.get(n), b.weights.get(n)];
      expect([x.format, x.shape]).toEqual([y.format, y.shape]);
      expect(Buffer.from(x.bytes).equals(Buffer.from(y.bytes))).toBe(true);
    }
    const buffers = new Set(a.weights.names().map((n) => a.weights.get(n).bytes.buffer));
    expect(buffers.size).toBe(1);
    expect([...buffers][0].byteLength).toBe(readFileSync(join(hf.dir, 'model.safetensors')).length);
    for (const s of ['The river came down.', 'Ünïcödé 🎉 text', '<|user|>\nhi<|eos|>']) {
      expect(a.tokenizer.encode(s, { allowSpecial: true })).toEqual(b.tokenizer.encode(s, { allowSpecial: true }));
    }
    expect([a.tokenizer.bosId, a.tokenizer.eosId]).toEqual([b.tokenizer.bosId, b.tokenizer.eosId]);
    expect(a.tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe(b.tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }]));
  });

  it('identifies a directory by the Merkle root of its named file digests', async () => {
    const a = await loadModel(hf.dir);
    const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    const leaves = names.map((n) => Buffer.concat([Buffer.from(n), Buffer.of(0), blake3(readFileSync(join(hf.dir, n)))]));
    expect(a.digest).toBe(merkleRoot(leaves).toString('hex'));
    // A .safetensors path with the same files beside it has the same identity.
    expect((await loadModel(join(hf.dir, 'model.safetensors'))).digest).toBe(a.digest);
    const b = await loadModel(ggufPath);
    expect(b.digest).toBe(blake3(readFileSync(ggufPath)).toString('hex'));
  });

  it('reads biases (Qwen2 style) and tied embeddings', async () => {
    const q = await loadModel(hfDir('qwen', 5, { bias: true, tied: true }).dir);
    expect(q.weights.config.attentionBias).toBe(true);
    expect(q.weights.config.tiedEmbeddings).toBe(true);
    expect(q.weights.get('blk.1.attn_k.bias').shape).toEqual([32]);
    expect(q.weights.has('output.weight')).toBe(false);
  });

  it('rejects bad files with typed errors', async () => {
    const d = join(dir, 'bad');
    mkdirSync(d);
    const f = join(d, 'model.safetensors');
    copyFileSync(join(hf.dir, 'config.json'), join(d, 'config.json'));
    copyFileSync(join(hf.dir, 'tokenizer.json'), join(d, 'tokenizer.json'));
    writeSafetensors(f, [{ name: 'model.embed_tokens.weight', dtype: 'I64', shape: [2], data: new Uint8Array(16) }]);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_UNSUPPORTED', message: expect.stringMatching(/dtype I64/) });
    writeSafetensors(f, [{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [512, 64], data: new Uint8Array(512 * 64 * 4) }]);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_MISSING_TENSOR' });
    writeSafetensors(f, [{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [512, 65], data: new Uint8Array(512 * 64 * 4) }]);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_SHAPE' });
    const full = readFileSync(join(hf.dir, 'model.safetensors'));
    writeFileSync(f, full.subarray(0, full.length - 10));
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/out of bounds/) });
    const absurd = Buffer.from(full);
    absurd.writeBigUInt64LE(1n << 60n, 0);
    writeFileSync(f, absurd);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/header length .* absurd/) });
    expect(() => readSafetensors(new Uint8Array(3))).toThrow(/truncated/);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt_neox' }));
    copyFileSync(join(hf.dir, 'model.safetensors'), f);
    await expect(loadModel(d)).rejects.toMatchObject({ code: 'ERR_MODEL_UNSUPPORTED', message: expect.stringMatching(/gpt_neox/) });
    await expect(loadModel(join(dir, 'nothing-here'))).rejects.toMatchObject({ code: 'ERR_IO' });
    writeFileSync(join(dir, 'junk.bin'), 'not a model at all');
    await expect(loadModel(join(dir, 'junk.bin'))).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/bad magic/) });
  });
});

describe('atoma model', () => {
  it('init writes a deterministic GGUF and inspect describes it', () => {
    const a = join(dir, 'cli-a.gguf');
    const b = join(dir, 'cli-b.gguf');
    const r1 = runCli(['model', 'init', '--seed', '11', '--out', a, '--format', 'q8_0', '--layers', '1', '--json']);
    expect(r1.status, r1.stderr).toBe(0);
    const r2 = runCli(['model', 'init', '--seed', '11', '--out', b, '--format', 'q8_0', '--layers', '1', '--json']);
    expect(JSON.parse(r1.stdout).digest).toBe(JSON.parse(r2.stdout).digest);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    const c = join(dir, 'cli-c.gguf');
    runCli(['model', 'init', '--seed', '12', '--out', c, '--format', 'q8_0', '--layers', '1']);
    expect(readFileSync(c).equals(readFileSync(a))).toBe(false);
    const info = runCli(['model', 'inspect', a, '--json']);
    expect(info.status, info.stderr).toBe(0);
    const j = JSON.parse(info.stdout);
    expect(j).toMatchObject({ format: 'gguf', version: 3, architecture: 'llama', tokens: 512, digest: JSON.parse(r1.stdout).digest });
    expect(j.config.blockCount).toBe(1);
    expect(j.tensors.find((t: any) => t.name === 'blk.0.ffn_down.weight')).toMatchObject({ type: 'Q8_0', shape: [64, 192] });
    const text = runCli(['model', 'inspect', a]);
    expect(text.stdout).toMatch(/blk\.0\.attn_q\.weight\s+Q8_0\s+\[64, 64\]/);
    expect(readGguf(readFileSync(a)).tensors.length).toBe(12);
  });

  it('reports usage and file errors', () => {
    expect(runCli(['model', 'init', '--out', join(dir, 'x.gguf')]).stderr).toMatch(/--seed/);
    expect(runCli(['model', 'init', '--seed', '1', '--out', join(dir, 'x.gguf'), '--dim', '65']).stderr).toMatch(/multiple of --heads/);
    expect(runCli(['model', 'init', '--seed', '1', '--out', join(dir, 'x.gguf'), '--vocab', '100']).status).toBe(2);
    writeFileSync(join(dir, 'bad.gguf'), Buffer.from('GGUF\x02\x00\x00\x00'));
    const r = runCli(['model', 'inspect', join(dir, 'bad.gguf')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unsupported GGUF version 2 .*\[ERR_MODEL_UNSUPPORTED\]/);
  });
});

describe('loading speed', () => {
  it('loads a 50 MB-class q8_0 model as views of one mapping: no weight copied or converted', async () => {
    const p = join(dir, 'big.gguf');
    initModel(p, { seed: 1, layers: 4, dim: 1024, heads: 16, kvHeads: 4, ff: 2816, vocab: 4096, format: 'q8_0' });
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const m = await loadModel(p);
    const ms = performance.now() - t0;
    const size = statSync(p).size;
    // What keeps loading fast is structural, and checked as such (no wall-clock bound): every
    // tensor is a view at its own offset in one mapping of the whole file, in its stored format.
    const tensors = readGguf(p).tensors;
    const mapping = m.weights.get(tensors[0].name).bytes.buffer;
    expect(mapping.byteLength).toBe(size);
    expect(m.weights.names().length).toBe(tensors.length);
    for (const t of tensors) {
      const w = m.weights.get(t.name);
      expect({ name: t.name, same: w.bytes.buffer === mapping, offset: w.bytes.byteOffset, length: w.bytes.byteLength, format: w.format })
        .toEqual({ name: t.name, same: true, offset: t.offset, length: t.byteLength, format: t.format });
    }
    expect(tensors.filter((t) => t.format === 'q8_0').length).toBeGreaterThan(0);
    // The mapping is not a JavaScript allocation: ArrayBuffer memory grows far less than the file.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(size / 4);
    console.log(`loaded ${(size / 2 ** 20).toFixed(1)} MiB q8_0 model in ${ms.toFixed(0)} ms (digest included)`);
  });
});
