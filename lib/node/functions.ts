/**
 * POST /v1/functions/<name>: runs a WebAssembly function of node.toml (lib/wasm) on one input.
 * Body: {input?: base64 stdin bytes, seed?: integer, timestamp_ns?: integer} (integers above 2^53
 * as decimal strings). Calls are bounded by limits.queue_length like generation (429 beyond) but
 * are not recorded in the job database: a call is short and the client can simply send it again.
 * The signature uses the same signed bytes as completions (keys.ts) with model = the module
 * digest, outputDigest = BLAKE3 of stdout and traceRoot = the runner's resultDigest (which covers
 * module, output, fuel, exit code and error code).
 */
import { requestHash, signResponse } from './keys.js';
import type { AtomaNode } from './node.js';
import { ApiError } from './openai.js';
import { QueueFullError } from './queue.js';

const FIELDS = ['input', 'seed', 'timestamp_ns'];

function u64(v: unknown, k: string): bigint {
  if (v === undefined || v === null) return 0n;
  if ((typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'string' && /^\d{1,20}$/.test(v) && BigInt(v) < 2n ** 64n)) return BigInt(v);
  throw new ApiError(400, `'${k}' must be an integer in [0, 2^64) (a decimal string above 2^53)`, 'invalid_request_error', k, 'invalid_value');
}

/** Calls running per node (a WeakMap: several nodes may share a process, e.g. in tests). */
const runningCalls = new WeakMap<AtomaNode, number>();

/** Runs a call; returns the JSON answer. */
export async function callFunction(node: AtomaNode, name: string, raw: Buffer): Promise<Record<string, unknown>> {
  const f = node.functions.get(name);
  if (!f) throw new ApiError(404, `The function '${name}' does not exist on this node`, 'invalid_request_error', null, 'function_not_found');
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object', 'invalid_request_error', null, 'invalid_value');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.includes(k)) throw new ApiError(400, `unknown parameter '${k}'`, 'invalid_request_error', k, 'invalid_value');
  if (o.input !== undefined && (typeof o.input !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.input) || o.input.length % 4 !== 0))
    throw new ApiError(400, "'input' must be base64", 'invalid_request_error', 'input', 'invalid_value');
  const input = Buffer.from((o.input as string | undefined) ?? '', 'base64');
  const seed = u64(o.seed, 'seed');
  const timestampNs = u64(o.timestamp_ns, 'timestamp_ns');
  const running = runningCalls.get(node) ?? 0;
  if (running >= node.config.limits.queueLength) throw new QueueFullError(1);
  runningCalls.set(node, running + 1);
  let r;
  try {
    r = await f.fn.run(input, { fuel: BigInt(f.config.fuel), seed, timestampNs });
  } finally {
    runningCalls.set(node, (runningCalls.get(node) ?? 1) - 1);
  }
  const signed = { model: f.config.digest, requestHash: requestHash(raw), outputDigest: r.outputDigest, traceRoot: r.resultDigest };
  return {
    object: 'function.result', function: name, module: f.config.digest,
    output: Buffer.from(r.stdout).toString('base64'), outputDigest: r.outputDigest, resultDigest: r.resultDigest,
    fuelUsed: r.fuelUsed.toString(), exitCode: r.exitCode, error: r.error,
    atoma: { ...signed, signature: signResponse(node.key, signed), publicKey: node.key.publicKey },
  };
}
