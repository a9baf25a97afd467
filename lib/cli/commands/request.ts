import { homedir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../../engine/errors.js';
import { loadModel } from '../../model/load.js';
import { signEvent } from '../../protocol/signing.js';
import type { Assignment } from '../../node/executor.js';
import { loadOrCreateNodeKey, type NodeKey } from '../../node/keys.js';
import { wasmAssignment, type WasmAssignment } from '../../node/wasm-assignment.js';
import { readFileSync } from 'node:fs';
import { ServicePort } from '../../node/ledger-port.js';
import { submitRequest } from '../../node/requester.js';
import { MAX_TIMER_MS } from '../../engine/timers.js';
import { parse } from '../args.js';

const HELP = `usage: atoma request --ledger URL --task ID (--tokens 1,2,3 | --prompt TEXT --model FILE)
                     --max-tokens N --seed S [--temperature T] [--top-k K] [--max-price P]
                     [--min-nodes N] [--key FILE] [--faucet AMOUNT] [--timeout SECONDS] [--json]
       atoma request --ledger URL --task ID --input FILE|- [--seed S] [--timestamp NS]
                     [--fuel N] [--memory-mb M] [--max-price P] ...          (a \`wasm\` task)

Sends one request to the nodes subscribed to a ledger task (docs/node.md, "On a ledger"): stores
the input (the canonical JSON of the assignment) on the ledger, signs and submits the request,
waits until it settles or fails. Prints the outcome, the output digest the paid nodes agreed on
(for a WASM task: BLAKE3 of the guest's stdout, as \`atoma wasm run\`), the trace root, the nodes
and the amount charged; a request the nodes refused (refusal: an error code) settles too. Exit
status 1 when it failed.

  --ledger URL      \`atoma ledger serve\` (http://127.0.0.1:PORT)
  --task ID         the ledger task (64 hex digits)
  --tokens LIST     prompt token ids, comma-separated
  --prompt TEXT     prompt text, tokenized with --model's tokenizer (its digest must be the task's)
  --max-tokens N    tokens to generate
  --seed S          sampling seed (a safe integer)
  --temperature T   default 0 (greedy)
  --input FILE      a \`wasm\` task: the guest's stdin (- for this process's stdin)
  --fuel N          a \`wasm\` task: fuel budget (default 1e9; at most the nodes' [[functions]] fuel)
  --memory-mb M     a \`wasm\` task: memory cap in MiB (default 64)
  --timestamp NS    a \`wasm\` task: what the guest's clocks return (default 0)
  --max-price P     highest price per node (default 1000)
  --min-nodes N     nodes that must agree (default 1)
  --timeout SECONDS give up waiting after this long (default 120, at most ${Math.floor(MAX_TIMER_MS / 1000)})
  --key FILE        the client key (Ed25519 PEM; created when absent; default ~/.atoma/client.key)
  --faucet AMOUNT   deposit AMOUNT into the client's account first (local ledgers only)
  --json            one JSON object`;

function integer(v: string | undefined, name: string, min: number, def?: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) {
    if (def === undefined) fail('ERR_USAGE', `--${name} is required; see \`atoma request --help\``);
    return def;
  }
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max)
    fail('ERR_USAGE', `--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got '${v}'`);
  return n;
}

/** The longest --timeout a timer can wait (engine/timers.ts). */
const TIMEOUT_MAX_S = Math.floor(MAX_TIMER_MS / 1000);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ledger: { type: 'string' }, task: { type: 'string' }, tokens: { type: 'string' }, prompt: { type: 'string' }, model: { type: 'string' },
    'max-tokens': { type: 'string' }, seed: { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
    'max-price': { type: 'string' }, 'min-nodes': { type: 'string' }, key: { type: 'string' }, faucet: { type: 'string' },
    timeout: { type: 'string' }, json: { type: 'boolean' }, input: { type: 'string' }, fuel: { type: 'string' }, 'memory-mb': { type: 'string' },
    timestamp: { type: 'string' },
  }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) fail('ERR_USAGE', 'request takes no positional arguments');
  if (!values.ledger) fail('ERR_USAGE', '--ledger URL is required');
  if (!values.task || !/^[0-9a-f]{64}$/.test(values.task)) fail('ERR_USAGE', '--task must be the ledger task id (64 lowercase hex digits)');
  // Checked before anything is deposited or sent.
  integer(values.timeout, 'timeout', 1, 120, TIMEOUT_MAX_S);
  const forms = [values.tokens, values.prompt, values.input].filter((v) => v !== undefined).length;
  if (forms !== 1) fail('ERR_USAGE', 'give exactly one of --tokens, --prompt (inference) and --input (wasm)');
  const port = new ServicePort(values.ledger);
  try {
    const key = () => loadOrCreateNodeKey(values.key ?? join(homedir(), '.atoma', 'client.key'));
    if (values.input !== undefined) {
      const input = values.input === '-' ? readFileSync(0) : readFileSync(values.input);
      const wasm = wasmAssignment(input, {
        seed: integer(values.seed, 'seed', 0, 0), timestampNs: integer(values.timestamp, 'timestamp', 0, 0),
        fuel: integer(values.fuel, 'fuel', 1, 1_000_000_000), memoryMb: integer(values['memory-mb'], 'memory-mb', 1, 64),
      });
      return await send(port, key(), values, { wasm });
    }
    let prompt: number[];
    if (values.tokens !== undefined) {
      prompt = values.tokens.split(',').map((t) => integer(t.trim(), 'tokens', 0));
    } else {
      if (!values.model) fail('ERR_USAGE', '--prompt needs --model FILE (the task\'s model, for its tokenizer)');
      const task = await port.get('tasks', values.task);
      if (!task) fail('ERR_NOT_FOUND', `the ledger has no task ${values.task}`);
      const m = await loadModel(values.model);
      if (m.digest !== task.digest) fail('ERR_DIGEST_MISMATCH', `${values.model} has digest ${m.digest}; task ${values.task} runs ${String(task.digest)}`);
      prompt = m.tokenizer.encode(values.prompt!, { addBos: true });
    }
    const assignment: Assignment = { prompt, maxTokens: integer(values['max-tokens'], 'max-tokens', 1), seed: integer(values.seed, 'seed', 0) };
    if (values.temperature !== undefined) {
      const t = Number(values.temperature);
      if (!Number.isFinite(t) || t < 0) fail('ERR_USAGE', `--temperature must be a number >= 0, got '${values.temperature}'`);
      assignment.temperature = t;
    }
    if (values['top-k'] !== undefined) assignment.topK = integer(values['top-k'], 'top-k', 0);
    return await send(port, key(), values, { assignment });
  } finally {
    port.close();
  }
}

/** Deposits (--faucet), submits, waits and prints the outcome. */
async function send(port: ServicePort, key: NodeKey, values: Record<string, string | boolean | undefined>, work: { assignment?: Assignment; wasm?: WasmAssignment }): Promise<number> {
  const opt = (k: string) => values[k] as string | undefined;
  if (opt('faucet') !== undefined) await port.submit(signEvent({ type: 'deposit', account: key.publicKey, amount: integer(opt('faucet'), 'faucet', 1) }, key));
  const r = await submitRequest(port, key, {
    task: opt('task')!, ...work, maxPrice: integer(opt('max-price'), 'max-price', 0, 1000),
    minNodes: integer(opt('min-nodes'), 'min-nodes', 1, 1), timeoutMs: integer(opt('timeout'), 'timeout', 1, 120, TIMEOUT_MAX_S) * 1000,
  });
  if (values.json) console.log(JSON.stringify({ ...r, client: key.publicKey }));
  else if (r.outcome === 'settled') console.log(`settled  request ${r.request}${r.refusal ? ` (refused: ${r.refusal})` : ''}\n  outputDigest ${r.outputDigest}\n  traceRoot    ${r.traceRoot}\n  nodes        ${r.nodes.length} paid\n  charged      ${r.charged}`);
  else console.log(`failed   request ${r.request}: ${r.reason} (refunded ${r.refunded})`);
  return r.outcome === 'settled' ? 0 : 1;
}
