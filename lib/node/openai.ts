/**
 * The OpenAI-compatible request schema and response shapes. Requests are validated field by
 * field (unknown fields too: a misspelled parameter must not be silently ignored); a bad request
 * gets an OpenAI-style error object {error: {message, type, param, code}}.
 */
import { brief } from '../engine/brief.js';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ParsedRequest {
  kind: 'completion' | 'chat';
  model: string;
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: string;
  stream: boolean;
}

const COMMON = ['model', 'max_tokens', 'temperature', 'top_p', 'top_k', 'seed', 'stream', 'n', 'user'];
const FIELDS = { completion: [...COMMON, 'prompt'], chat: [...COMMON, 'messages', 'max_completion_tokens'] };

function bad(message: string, param: string | null): never {
  throw new ApiError(400, message, 'invalid_request_error', param, 'invalid_value');
}

function number(o: Record<string, unknown>, k: string, def: number, ok: (n: number) => boolean, what: string): number {
  const v = o[k];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(`'${k}' must be ${what}, got ${brief(v)}`, k);
  return v;
}

/** Validates a parsed JSON body against the schema of /v1/completions or /v1/chat/completions. */
export function parseRequest(body: unknown, kind: 'completion' | 'chat', maxTokensLimit: number): ParsedRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) bad('the request body must be a JSON object', null);
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS[kind].includes(k)) bad(`unknown parameter '${k}'`, k);
  if (typeof o.model !== 'string' || o.model === '') bad("'model' must be a non-empty string", 'model');
  const n = number(o, 'n', 1, (x) => x === 1, '1 (one choice per request)');
  void n;
  const maxKey = o.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = number(o, maxKey, Math.min(16, maxTokensLimit), (x) => Number.isSafeInteger(x) && x >= 1, 'a positive integer');
  if (maxTokens > maxTokensLimit) bad(`'${maxKey}' is ${maxTokens}; this node allows at most ${maxTokensLimit}`, maxKey);
  const temperature = number(o, 'temperature', 1, (x) => x >= 0 && x <= 2, 'a number from 0 to 2');
  const topP = number(o, 'top_p', 1, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  const topK = number(o, 'top_k', 0, (x) => Number.isSafeInteger(x) && x >= 0, 'an integer >= 0');
  let seed = '0';
  if (o.seed !== undefined && o.seed !== null) {
    // Integers above 2^53 may be sent as decimal strings.
    const s = o.seed;
    if (!((typeof s === 'number' && Number.isSafeInteger(s) && s >= 0) || (typeof s === 'string' && /^\d{1,20}$/.test(s) && BigInt(s) < 2n ** 64n)))
      bad("'seed' must be an integer in [0, 2^64) (a decimal string above 2^53)", 'seed');
    seed = BigInt(s).toString();
  }
  if (o.stream !== undefined && o.stream !== null && typeof o.stream !== 'boolean') bad("'stream' must be a boolean", 'stream');
  if (o.user !== undefined && typeof o.user !== 'string') bad("'user' must be a string", 'user');
  const out: ParsedRequest = { kind, model: o.model, maxTokens, temperature, topP, topK, seed, stream: o.stream === true };
  if (kind === 'completion') {
    if (typeof o.prompt !== 'string' || o.prompt === '') bad("'prompt' must be a non-empty string", 'prompt');
    out.prompt = o.prompt;
  } else {
    if (!Array.isArray(o.messages) || o.messages.length === 0) bad("'messages' must be a non-empty array", 'messages');
    out.messages = o.messages.map((m: unknown, i: number) => {
      const p = `messages[${i}]`;
      if (m === null || typeof m !== 'object' || Array.isArray(m)) bad(`'${p}' must be an object`, p);
      const r = m as Record<string, unknown>;
      for (const k of Object.keys(r)) if (k !== 'role' && k !== 'content' && k !== 'name') bad(`unknown parameter '${p}.${k}'`, `${p}.${k}`);
      if (r.role !== 'system' && r.role !== 'user' && r.role !== 'assistant') bad(`'${p}.role' must be system, user or assistant`, `${p}.role`);
      if (typeof r.content !== 'string') bad(`'${p}.content' must be a string`, `${p}.content`);
      return { role: r.role, content: r.content };
    });
  }
  return out;
}

/** The fields every answer of this node adds to the OpenAI shape. */
export interface AtomaFields {
  model: string;
  requestHash: string;
  outputDigest: string;
  traceRoot: string;
  signature: string;
  publicKey: string;
}

export function completionBody(kind: 'completion' | 'chat', id: string, created: number, model: string, text: string,
  finish: 'stop' | 'length', usage: { prompt: number; completion: number }, atoma: AtomaFields): Record<string, unknown> {
  const choice = kind === 'chat'
    ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: finish, logprobs: null }
    : { index: 0, text, finish_reason: finish, logprobs: null };
  return {
    id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created, model, choices: [choice],
    usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
    outputDigest: atoma.outputDigest, traceRoot: atoma.traceRoot, atoma,
  };
}

export function chunkBody(kind: 'completion' | 'chat', id: string, created: number, model: string, text: string | null,
  finish: 'stop' | 'length' | null, first: boolean): Record<string, unknown> {
  if (kind === 'chat') {
    const delta: Record<string, string> = {};
    if (first) delta.role = 'assistant';
    if (text !== null) delta.content = text;
    return { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] };
  }
  return { id, object: 'text_completion', created, model, choices: [{ index: 0, text: text ?? '', finish_reason: finish, logprobs: null }] };
}
