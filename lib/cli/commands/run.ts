import { readFileSync } from 'node:fs';
import { fail } from '../../engine/errors.js';
import { generate, type GenerateRequest, type GenerateResult } from '../../model/generate.js';
import type { Tokenizer } from '../../model/types.js';
import { didYouMean, parse } from '../args.js';
import { newModel, openModel } from './model-source.js';

const HELP = `usage: atoma run [--model FILE] --prompt TEXT [options]
       atoma run [--model FILE] --requests FILE.jsonl --json

  --model FILE        GGUF model (default: a tiny seeded model in ~/.cache/atoma or $ATOMA_CACHE_DIR)
  --prompt TEXT       prompt text ("--chat" wraps it in the model's chat template)
  --max-tokens N      tokens to generate (default 32)
  --seed S            request seed of the sampling draws (default 0)
  --temperature T     0 = greedy (default); --top-k K, --top-p P
  --prefill-chunk N   prompt rows per forward pass (results do not change)
  --json              print {text, tokens, outputDigest, traceRoot, promptTokens,
                      prefillTokensPerSecond, decodeTokensPerSecond} instead of streaming text
  --requests FILE     JSON lines {prompt, maxTokens?, seed?, temperature?, topK?, topP?, chat?}
                      (or the OpenAI spellings max_tokens, top_k, top_p; any other key is an
                      error): run as one continuously batched job; one JSON line per request, in order`;

export const RUN_OPTIONS = {
  model: { type: 'string' }, prompt: { type: 'string' }, 'max-tokens': { type: 'string' }, seed: { type: 'string' },
  temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, chat: { type: 'boolean' },
  json: { type: 'boolean' }, requests: { type: 'string' }, 'prefill-chunk': { type: 'string' },
} as const;

function num(v: unknown, name: string, kind: 'int' | 'float' | 'seed', min = 0): number | bigint | undefined {
  if (v === undefined) return undefined;
  if (kind === 'seed') {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
    if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
    return fail('ERR_USAGE', `--${name} must be a non-negative integer, got '${String(v)}'`);
  }
  const n = Number(v);
  if ((typeof v !== 'string' && typeof v !== 'number') || v === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isSafeInteger(n)))
    fail('ERR_USAGE', `--${name} must be ${kind === 'int' ? 'an integer' : 'a number'}, got '${String(v)}'`);
  if (n < min) fail('ERR_USAGE', `--${name} must be ${kind === 'int' ? 'an integer' : 'a number'} >= ${min}, got '${String(v)}'`);
  return n;
}

/** The keys of a --requests line, each with its OpenAI spelling where it has one. */
const REQUEST_KEYS: Record<string, string> = {
  prompt: 'prompt', chat: 'chat', seed: 'seed', temperature: 'temperature',
  maxTokens: 'maxTokens', max_tokens: 'maxTokens', topK: 'topK', top_k: 'topK', topP: 'topP', top_p: 'topP',
};

/**
 * A --requests line in buildRequest's spelling. An unknown key is an error, not ignored: a
 * misspelt max_tokens would otherwise run with the default length and look like a result.
 */
export function requestLine(o: Record<string, unknown>, what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const given: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    const key = Object.hasOwn(REQUEST_KEYS, k) ? REQUEST_KEYS[k] : undefined;
    if (key === undefined) fail('ERR_USAGE', `${what}: unknown key '${k}'${didYouMean(k, Object.keys(REQUEST_KEYS), '')} (known: ${Object.keys(REQUEST_KEYS).join(', ')})`);
    if (given[key] !== undefined) fail('ERR_USAGE', `${what}: '${given[key]}' and '${k}' give the same setting twice`);
    given[key] = k;
    out[key] = v;
  }
  return out;
}

/** Builds a generation request from prompt text and options (CLI flags or a JSON line). */
export function buildRequest(tok: Tokenizer, o: { prompt?: unknown; chat?: unknown; maxTokens?: unknown; seed?: unknown; temperature?: unknown; topK?: unknown; topP?: unknown }, what: string): GenerateRequest {
  if (typeof o.prompt !== 'string') fail('ERR_USAGE', `${what}: prompt text is required`);
  const prompt = o.chat ? tok.encodeChat([{ role: 'user', content: o.prompt }], { addGenerationPrompt: true, addBos: true }) : tok.encode(o.prompt, { addBos: true });
  if (prompt.length === 0) fail('ERR_USAGE', `${what}: the prompt encodes to no tokens`);
  return {
    prompt,
    maxTokens: (num(o.maxTokens ?? '32', 'max-tokens', 'int', 1) as number),
    seed: num(o.seed ?? '0', 'seed', 'seed') as bigint,
    temperature: num(o.temperature, 'temperature', 'float') as number | undefined,
    topK: num(o.topK, 'top-k', 'int') as number | undefined,
    topP: num(o.topP, 'top-p', 'float') as number | undefined,
    stopTokens: [...tok.stopIds],
  };
}

/** The request the shared generation flags (--prompt, --chat, --max-tokens, --seed, --temperature, --top-k, --top-p) describe. */
export function requestFromFlags(tok: Tokenizer, v: Record<string, unknown>): GenerateRequest {
  return buildRequest(tok, {
    prompt: v.prompt, chat: v.chat, maxTokens: v['max-tokens'], seed: v.seed,
    temperature: v.temperature, topK: v['top-k'], topP: v['top-p'],
  }, 'request');
}

function summary(tok: Tokenizer, r: GenerateResult) {
  const decoded = r.tokens.length;
  return {
    text: tok.decode(r.tokens), tokens: r.tokens, outputDigest: r.outputDigest, traceRoot: r.traceRoot, promptTokens: r.promptTokens,
    prefillTokensPerSecond: r.prefillSeconds > 0 ? r.promptTokens / r.prefillSeconds : null,
    decodeTokensPerSecond: r.decodeSeconds > 0 ? (decoded - 1) / r.decodeSeconds : null,
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, RUN_OPTIONS, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) fail('ERR_USAGE', 'run takes no positional arguments');
  const chunk = num(values['prefill-chunk'], 'prefill-chunk', 'int') as number | undefined;
  if (values.requests !== undefined) {
    if (values.prompt !== undefined) fail('ERR_USAGE', '--prompt and --requests are exclusive');
    if (!values.json) fail('ERR_USAGE', '--requests needs --json');
    const lines = readFileSync(values.requests, 'utf8').split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) fail('ERR_USAGE', `${values.requests}: no requests`);
    const loaded = await openModel(values.model);
    const model = newModel(loaded);
    const reqs = lines.map((line, i) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch (e) {
        return fail('ERR_USAGE', `${values.requests} line ${i + 1}: ${(e as Error).message}`);
      }
      if (o === null || typeof o !== 'object' || Array.isArray(o)) fail('ERR_USAGE', `${values.requests} line ${i + 1}: not a JSON object`);
      const what = `${values.requests} line ${i + 1}`;
      return buildRequest(loaded.tokenizer, requestLine(o, what), what);
    });
    const results = generate(model, reqs, { prefillChunk: chunk });
    for (const r of results) console.log(JSON.stringify(summary(loaded.tokenizer, r)));
    return 0;
  }
  if (values.prompt === undefined) fail('ERR_USAGE', '--prompt (or --requests) is required; see `atoma run --help`');
  const loaded = await openModel(values.model);
  const model = newModel(loaded);
  const req = requestFromFlags(loaded.tokenizer, values);
  // Streaming holds back bytes until they form valid UTF-8.
  let shown = '';
  const ids: number[] = [];
  const [res] = generate(model, [req], {
    prefillChunk: chunk,
    onToken: values.json ? undefined : (_i, t) => {
      ids.push(t);
      const text = loaded.tokenizer.decode(ids);
      const safe = text.endsWith('\uFFFD') ? text.slice(0, text.lastIndexOf('\uFFFD')) : text;
      if (safe.length > shown.length && safe.startsWith(shown)) {
        process.stdout.write(safe.slice(shown.length));
        shown = safe;
      }
    },
  });
  if (values.json) console.log(JSON.stringify(summary(loaded.tokenizer, res)));
  else process.stdout.write(loaded.tokenizer.decode(res.tokens).slice(shown.length) + '\n');
  return 0;
}
