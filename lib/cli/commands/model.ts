/** `atoma model init` (seeded GGUF models with a trained vocabulary) and `atoma model inspect`. */
import { statSync } from 'node:fs';
import { fail } from '../../engine/errors.js';
import { hashFile } from '../../engine/hash.js';
import { readGguf, GgufMetadata } from '../../model/gguf/reader.js';
import { ggufConfig } from '../../model/gguf/llama.js';
import { GGML_TYPE_NAMES } from '../../model/gguf/types.js';
import { initModel, INIT_DEFAULTS } from '../../model/init.js';
import { loadModel } from '../../model/load.js';
import { describeRopeScaling, type RopeScaling } from '../../model/rope-scaling.js';
import type { WeightFormat } from '../../model/types.js';
import { didYouMean, parse } from '../args.js';

const HELP = `usage: atoma model init --seed S --out FILE [options]
       atoma model inspect PATH [--json]

init       writes a small Llama GGUF with seeded weights and a byte-level BPE vocabulary
           trained on the built-in corpus (recipe: docs/models.md)
  --seed S           seed of the weights (required)
  --out FILE         output path (required)
  --layers N         blocks (${INIT_DEFAULTS.layers})        --dim N       model dimension (${INIT_DEFAULTS.dim})
  --heads N          attention heads (${INIT_DEFAULTS.heads})     --kv-heads N  KV heads (${INIT_DEFAULTS.kvHeads})
  --ff N             feed-forward size (${INIT_DEFAULTS.ff})  --vocab N     vocabulary size (${INIT_DEFAULTS.vocab})
  --context N        context length (${INIT_DEFAULTS.context})
  --format F         f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k,
                     iq4_nl, iq4_xs or mxfp4 (${INIT_DEFAULTS.format}; block types get random valid
                     blocks); vectors stay f32
  --bias             Q/K/V biases (Qwen2-style)    --tied   no output.weight
  --rope-theta X     RoPE base frequency (10000)
  --rope-scaling S   none, linear:F, llama3:F[:LOW:HIGH:ORIG] (a rope_freqs tensor, as llama.cpp
                     writes Llama 3.x) or yarn:F[:ORIG] (metadata only: such files are refused)

inspect    prints format, architecture, configuration, tensors, token count and digest of a GGUF
           file or a safetensors directory`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) fail('ERR_USAGE', `--${name} must be a non-negative integer, got '${v}'`);
  return n;
}

function ropeTheta(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !(n > 0) || !Number.isFinite(n)) fail('ERR_USAGE', `--rope-theta must be a positive number, got '${v}'`);
  return n;
}

async function inspect(path: string, json: boolean): Promise<number> {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    fail('ERR_IO', `${path}: ${(e as Error).message}`);
  }
  let report: Record<string, unknown>;
  if (st.isFile() && !path.endsWith('.safetensors')) {
    const f = readGguf(path);
    const m = new GgufMetadata(f.metadata, path);
    report = {
      path, format: 'gguf', version: f.version, architecture: m.string('general.architecture') ?? null, name: m.string('general.name') ?? null,
      alignment: f.alignment, config: ggufConfig(f, path),
      tokenizer: m.string('tokenizer.ggml.model') ?? null, tokens: m.stringArray('tokenizer.ggml.tokens')?.length ?? 0,
      metadataKeys: f.metadata.size,
      tensors: f.tensors.map((t) => ({ name: t.name, type: GGML_TYPE_NAMES[t.ggmlType] ?? String(t.ggmlType), shape: t.shape, offset: t.offset, bytes: t.byteLength })),
      digest: (await hashFile(path)).toString('hex'),
    };
  } else {
    const model = await loadModel(path);
    report = {
      path, format: 'safetensors', architecture: model.weights.config.architecture, config: model.weights.config,
      tokens: model.tokenizer.vocabSize,
      tensors: model.weights.names().map((n) => { const w = model.weights.get(n); return { name: n, type: w.format.toUpperCase(), shape: w.shape, bytes: w.bytes.length }; }),
      digest: model.digest,
    };
  }
  if (json) {
    console.log(JSON.stringify(report));
    return 0;
  }
  const { tensors, config, ...head } = report as { tensors: { name: string; type: string; shape: number[] }[]; config: Record<string, unknown> };
  for (const [k, v] of Object.entries(head)) console.log(`${k.padEnd(13)} ${v}`);
  console.log('config');
  for (const [k, v] of Object.entries(config)) console.log(`  ${k.padEnd(18)} ${k === 'ropeScaling' ? describeRopeScaling(v as RopeScaling) : v}`);
  console.log(`tensors       ${tensors.length}`);
  const width = Math.max(...tensors.map((t) => t.name.length));
  for (const t of tensors) console.log(`  ${t.name.padEnd(width)}  ${t.type.padEnd(5)} [${t.shape.join(', ')}]`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    seed: { type: 'string' }, out: { type: 'string' }, layers: { type: 'string' }, dim: { type: 'string' }, heads: { type: 'string' },
    'kv-heads': { type: 'string' }, vocab: { type: 'string' }, ff: { type: 'string' }, context: { type: 'string' }, format: { type: 'string' },
    bias: { type: 'boolean' }, tied: { type: 'boolean' }, json: { type: 'boolean' },
    'rope-theta': { type: 'string' }, 'rope-scaling': { type: 'string' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  switch (positionals[0]) {
    case 'init': {
      if (positionals.length !== 1) fail('ERR_USAGE', 'model init takes no positional arguments (use --out)');
      if (values.seed === undefined || values.out === undefined) fail('ERR_USAGE', 'model init needs --seed and --out');
      const seedText = values.seed;
      if (!/^\d+$/.test(seedText) || BigInt(seedText) >= 1n << 64n) fail('ERR_USAGE', `--seed must be an integer from 0 to 2^64-1, got '${seedText}'`);
      const seed = BigInt(seedText);
      const options = {
        seed, layers: int(values.layers, 'layers'), dim: int(values.dim, 'dim'), heads: int(values.heads, 'heads'), kvHeads: int(values['kv-heads'], 'kv-heads'),
        vocab: int(values.vocab, 'vocab'), ff: int(values.ff, 'ff'), context: int(values.context, 'context'),
        format: values.format as WeightFormat | undefined, bias: values.bias, tied: values.tied,
        ropeTheta: ropeTheta(values['rope-theta']), ropeScaling: values['rope-scaling'],
      };
      try {
        initModel(values.out, options);
      } catch (e) {
        if (typeof (e as NodeJS.ErrnoException).syscall !== 'string') throw e;
        fail('ERR_IO', `cannot write --out ${values.out}: ${(e as Error).message}`);
      }
      const digest = (await hashFile(values.out)).toString('hex');
      if (values.json) console.log(JSON.stringify({ path: values.out, digest }));
      else console.log(`wrote ${values.out}\ndigest ${digest}`);
      return 0;
    }
    case 'inspect':
      if (positionals.length !== 2) fail('ERR_USAGE', 'usage: atoma model inspect PATH [--json]');
      return inspect(positionals[1], values.json === true);
    case undefined:
      console.error(HELP);
      return 2;
    default:
      fail('ERR_USAGE', `unknown model command '${positionals[0]}'${didYouMean(positionals[0], ['init', 'inspect'])}; see \`atoma model --help\``);
  }
}
