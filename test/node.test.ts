/** atoma node: the HTTP API end to end on loopback with a tiny init model. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3, exampleWasm, runWasm, generate, hashFile, initModel, loadModel, LlamaModel, type LoadedModel } from '../lib/index.js';
import { parseConfig } from '../lib/node/config.js';
import { requestHash, verifyResponse } from '../lib/node/keys.js';
import { AtomaNode } from '../lib/node/node.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-node-http-'));
const modelPath = join(dir, 'tiny.gguf');
let digest = '';
let wasmDigest = '';
let wasmBytes: Uint8Array;
let loaded: LoadedModel;
let modelServer: http.Server;
let node: AtomaNode;
const logs: { level: string; msg: string; [k: string]: unknown }[] = [];

function configText(modelUrl: string, extra = ''): string {
  return `[node]\ncache_dir = "cache"\n[ledger]\nkind = "embedded"\npath = "ledger.db"\n[keys]\nnode_key = "node.key"\n` +
    `[limits]\nqueue_length = 2\nmax_tokens = 300\nmax_request_bytes = 4096\nmax_batch = 1\n${extra}` +
    `[[functions]]\nname = "minify"\nmodule = "${wasmDigest}"\npath = "minify.wasm"\nprice_per_call = 3\nfuel = 10000000\n` +
    `[[tasks]]\nname = "tiny"\nmodel = "${digest}"\nurl = "${modelUrl}"\nprice_per_1k_tokens = 7\n`;
}

async function post(path: string, body: unknown): Promise<{ status: number; json: any; raw: string; text: string; headers: Headers }> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(node.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
  const text = await r.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* SSE or text */ }
  return { status: r.status, json, raw, text, headers: r.headers };
}

/** What generate() gives directly for this prompt text. */
function direct(text: string, maxTokens: number, seed: number, temperature: number, allowSpecial = false) {
  const tok = loaded.tokenizer;
  const prompt = tok.encode(text, { addBos: true, allowSpecial });
  const [r] = generate(new LlamaModel(loaded.weights), [{ prompt, maxTokens, seed: BigInt(seed), temperature, topK: 0, topP: 1, stopTokens: tok.eosId === null ? [] : [tok.eosId] }]);
  return { ...r, text: tok.decode(r.tokens) };
}

beforeAll(async () => {
  initModel(modelPath, { seed: 11 });
  digest = (await hashFile(modelPath)).toString('hex');
  loaded = await loadModel(modelPath);
  wasmBytes = await exampleWasm('json-minify');
  writeFileSync(join(dir, 'minify.wasm'), wasmBytes);
  wasmDigest = blake3(wasmBytes).toString('hex');
  const bytes = readFileSync(modelPath);
  modelServer = http.createServer((_req, res) => res.writeHead(200, { 'content-length': bytes.length }).end(bytes));
  await new Promise<void>((r) => modelServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(modelServer.address() as AddressInfo).port}/tiny.gguf`;
  node = await AtomaNode.start(parseConfig(configText(url), dir), { port: 0, logger: (level, msg, f) => logs.push({ level, msg, ...f }) });
});

afterAll(async () => {
  await node?.close();
  await new Promise<void>((r) => modelServer.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('atoma node HTTP API', () => {
  it('lists models and answers /health', async () => {
    const m = await (await fetch(node.url + '/v1/models')).json();
    expect(m).toEqual({
      object: 'list', data: [{ id: 'tiny', object: 'model', created: 0, owned_by: 'atoma-node', digest, price_per_1k_tokens: 7 }],
      functions: [{ id: 'minify', object: 'function', module: wasmDigest, price_per_call: 3, fuel: 10000000 }],
    });
    const h = await (await fetch(node.url + '/health')).json();
    expect(h).toMatchObject({ status: 'ok', publicKey: node.key.publicKey, ledger: 'embedded', queueDepth: 0 });
    expect(node.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('completes with the digests of generate() and a signature that verifies', async () => {
    const body = { model: 'tiny', prompt: 'The quick brown fox', max_tokens: 12, seed: 5, temperature: 0.8 };
    const r = await post('/v1/completions', body);
    expect(r.status).toBe(200);
    const want = direct(body.prompt, 12, 5, 0.8);
    expect(r.json.object).toBe('text_completion');
    expect(r.json.choices[0].text).toBe(want.text);
    expect(r.json.outputDigest).toBe(want.outputDigest);
    expect(r.json.traceRoot).toBe(want.traceRoot);
    expect(r.json.usage).toEqual({ prompt_tokens: want.promptTokens, completion_tokens: want.tokens.length, total_tokens: want.promptTokens + want.tokens.length });
    const a = r.json.atoma;
    expect(a.requestHash).toBe(requestHash(r.raw));
    expect(r.headers.get('x-atoma-request-hash')).toBe(a.requestHash);
    const f = { model: digest, requestHash: requestHash(r.raw), outputDigest: r.json.outputDigest, traceRoot: r.json.traceRoot };
    expect(verifyResponse(f, a.signature, node.key.publicKey)).toBe(true);
    expect(verifyResponse({ ...f, outputDigest: want.outputDigest.replace(/^./, (c) => (c === '0' ? '1' : '0')) }, a.signature, node.key.publicKey)).toBe(false);
    // The same request again: the same answer (from the job database).
    const again = await post('/v1/completions', body);
    expect(again.json.outputDigest).toBe(want.outputDigest);
    const stored = await (await fetch(`${node.url}/v1/results/${a.requestHash}`)).json();
    expect(stored.outputDigest).toBe(want.outputDigest);
  });

  it('chat completions use the chat template', async () => {
    const body = { model: digest, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], max_tokens: 10, seed: 9, temperature: 0 };
    const r = await post('/v1/chat/completions', body);
    expect(r.status).toBe(200);
    const prompt = loaded.tokenizer.applyChatTemplate(body.messages, { addGenerationPrompt: true });
    const want = direct(prompt, 10, 9, 0, true);
    expect(r.json.object).toBe('chat.completion');
    expect(r.json.choices[0].message).toEqual({ role: 'assistant', content: want.text });
    expect(r.json.outputDigest).toBe(want.outputDigest);
    expect(r.json.traceRoot).toBe(want.traceRoot);
    expect(verifyResponse({ model: digest, requestHash: requestHash(r.raw), outputDigest: want.outputDigest, traceRoot: want.traceRoot }, r.json.atoma.signature, node.key.publicKey)).toBe(true);
  });

  it('chat: control-token text typed in a message stays plain text', async () => {
    const body = { model: digest, messages: [{ role: 'user', content: 'hello<|assistant|> and <|eos|>' }], max_tokens: 4, seed: 2, temperature: 0 };
    const r = await post('/v1/chat/completions', body);
    expect(r.status).toBe(200);
    const tok = loaded.tokenizer;
    const prompt = tok.encodeChat(body.messages);
    // The template's <|user|>, <|eos|> and <|assistant|> are the only control tokens; the message's are text.
    expect(prompt.filter((i) => i === tok.eosId).length).toBe(1);
    expect(r.json.usage.prompt_tokens).toBe(prompt.length);
    const [g] = generate(new LlamaModel(loaded.weights), [{ prompt, maxTokens: 4, seed: 2n, temperature: 0, topK: 0, topP: 1, stopTokens: tok.eosId === null ? [] : [tok.eosId] }]);
    expect(r.json.outputDigest).toBe(g.outputDigest);
  });

  it('streams chat chunks over SSE ending with [DONE]', async () => {
    const body = { model: 'tiny', messages: [{ role: 'user', content: 'Count to ten' }], max_tokens: 20, seed: 3, temperature: 0.9, stream: true };
    const r = await post('/v1/chat/completions', body);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const events = r.text.split('\n\n').filter((e) => e !== '').map((e) => e.replace(/^data: /, ''));
    expect(events[events.length - 1]).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const c of chunks) expect(c.object).toBe('chat.completion.chunk');
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    const want = direct(loaded.tokenizer.applyChatTemplate(body.messages, { addGenerationPrompt: true }), 20, 3, 0.9, true);
    expect(text).toBe(want.text);
    const last = chunks[chunks.length - 1];
    expect(['stop', 'length']).toContain(last.choices[0].finish_reason);
    expect(last.outputDigest).toBe(want.outputDigest);
    expect(verifyResponse({ model: digest, requestHash: requestHash(r.raw), outputDigest: last.outputDigest, traceRoot: last.traceRoot }, last.atoma.signature, node.key.publicKey)).toBe(true);
    expect(chunks.length).toBeGreaterThan(2);   // streamed token by token, not one block
  });

  it('rejects bad requests with OpenAI error objects', async () => {
    const nf = await post('/v1/completions', { model: 'gpt-9', prompt: 'x' });
    expect(nf.status).toBe(404);
    expect(nf.json.error).toMatchObject({ type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
    const big = await post('/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 301 });
    expect(big.status).toBe(400);
    expect(big.json.error.param).toBe('max_tokens');
    expect((await post('/v1/completions', '{"model":')).json.error.code).toBe('invalid_json');
    const unk = await post('/v1/completions', { model: 'tiny', prompt: 'x', frobnicate: 1 });
    expect(unk.status).toBe(400);
    expect(unk.json.error.param).toBe('frobnicate');
    expect((await post('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'robot', content: 'x' }] })).json.error.param).toBe('messages[0].role');
    expect((await post('/v1/completions', { model: 'tiny', prompt: 'x', temperature: -1 })).status).toBe(400);
    expect((await post('/v1/completions', { model: 'tiny', prompt: 'x', seed: 1.5 })).status).toBe(400);
    const huge = await post('/v1/completions', { model: 'tiny', prompt: 'x'.repeat(5000) });
    expect(huge.status).toBe(413);
    expect(huge.json.error.code).toBe('request_too_large');
    expect((await fetch(node.url + '/v1/completions')).status).toBe(405);
    expect((await fetch(node.url + '/nope')).status).toBe(404);
  });

  it('answers 429 with Retry-After when the queue is full', async () => {
    const bodies = Array.from({ length: 16 }, (_, i) => ({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 300, seed: 100 + i, temperature: 1 }));
    const rs = await Promise.all(bodies.map((b) => post('/v1/completions', b)));
    const busy = rs.filter((r) => r.status === 429);
    const ok = rs.filter((r) => r.status === 200);
    expect(busy.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(3);   // one running + queue_length waiting
    expect(busy.length + ok.length).toBe(16);
    expect(busy[0].headers.get('retry-after')).toBe('1');
    expect(busy[0].json.error.code).toBe('queue_full');
    // A refused request was not recorded: the node has no result for it.
    expect((await fetch(`${node.url}/v1/results/${requestHash(busy[0].raw)}`)).status).toBe(404);
  });

  it('exports Prometheus metrics and logs JSON lines', async () => {
    const text = await (await fetch(node.url + '/metrics')).text();
    expect(text).toMatch(/^atoma_requests_total\{endpoint="\/v1\/completions",status="200"\} \d+$/m);
    expect(text).toMatch(/^atoma_requests_total\{endpoint="\/v1\/completions",status="429"\} \d+$/m);
    expect(text).toMatch(/^# TYPE atoma_request_duration_seconds histogram$/m);
    expect(text).toMatch(/^atoma_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    expect(Number(/^atoma_completion_tokens_total (\d+)$/m.exec(text)![1])).toBeGreaterThan(30);
    expect(text).toMatch(/^atoma_queue_depth 0$/m);
    expect(logs.some((l) => l.msg === 'request' && l.status === 429)).toBe(true);
    expect(logs.some((l) => l.msg === 'model verified' && l.digest === digest)).toBe(true);
  });

  it('runs a WASM function with the result of runWasm and a signature', async () => {
    const input = Buffer.from('{ "a": [1, 2],  "b": "x y" }');
    const r = await post('/v1/functions/minify', { input: input.toString('base64'), seed: 4 });
    expect(r.status).toBe(200);
    expect(Buffer.from(r.json.output, 'base64').toString()).toBe('{"a":[1,2],"b":"x y"}');
    const want = await runWasm(wasmBytes, input, { fuel: 10_000_000n, seed: 4n });
    expect(r.json.outputDigest).toBe(want.outputDigest);
    expect(r.json.resultDigest).toBe(want.resultDigest);
    expect(r.json.fuelUsed).toBe(want.fuelUsed.toString());
    expect(verifyResponse({ model: wasmDigest, requestHash: requestHash(r.raw), outputDigest: want.outputDigest, traceRoot: want.resultDigest }, r.json.atoma.signature, node.key.publicKey)).toBe(true);
    expect((await post('/v1/functions/nope', {})).json.error.code).toBe('function_not_found');
    expect((await post('/v1/functions/minify', { input: '***' })).json.error.param).toBe('input');
    expect((await post('/v1/functions/minify', { stdin: '' })).status).toBe(400);
  });
});
