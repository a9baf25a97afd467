/** `atoma wasm`: run a WebAssembly function the way a node does (metered, isolated, deterministic). */
import { readFileSync, writeFileSync } from 'node:fs';
import { fail } from '../../engine/errors.js';
import { MAX_TIMER_MS } from '../../engine/timers.js';
import { didYouMean, parse } from '../args.js';
import { runWasm } from '../../wasm/runner.js';
import { assembleWat } from '../../wasm/assemble.js';

const HELP = `usage: atoma wasm run MODULE.wasm|MODULE.wat [--input FILE|-] [--fuel N] [--memory-mb M] [--seed S]
                        [--timestamp NS] [--timeout-ms T] [--json]
       atoma wasm assemble MODULE.wat OUT.wasm

run       runs a WASI command module (stdin from --input, stdout printed); a .wat file is
          assembled first. --json prints {outputDigest, fuelUsed, exitCode, stdout (base64),
          error, resultDigest}. Exit status: the guest's exit code, or 1 on a typed error.
          --timeout-ms: wall-clock limit (default 10000, at most ${MAX_TIMER_MS}).
assemble  WAT to a wasm binary.`;

function integer(v: string | undefined, name: string): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) fail('ERR_USAGE', `--${name} must be a non-negative integer, got '${v}'`);
  return BigInt(v);
}

async function moduleBytes(path: string): Promise<Uint8Array> {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    fail('ERR_IO', `cannot read ${path}: ${(e as Error).message}`);
  }
  return path.endsWith('.wat') ? assembleWat(data.toString('utf8'), path) : data;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    input: { type: 'string' }, fuel: { type: 'string' }, 'memory-mb': { type: 'string' }, seed: { type: 'string' },
    timestamp: { type: 'string' }, 'timeout-ms': { type: 'string' }, json: { type: 'boolean' },
  });
  const [sub, ...rest] = positionals;
  if (values.help || sub === undefined) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (sub === 'assemble') {
    if (rest.length !== 2) fail('ERR_USAGE', 'usage: atoma wasm assemble MODULE.wat OUT.wasm');
    writeFileSync(rest[1], await assembleWat(readFileSync(rest[0], 'utf8'), rest[0]));
    return 0;
  }
  if (sub !== 'run') fail('ERR_USAGE', `unknown wasm command '${sub}'${didYouMean(sub, ['run', 'assemble'])}; see \`atoma wasm --help\``);
  if (rest.length !== 1) fail('ERR_USAGE', 'usage: atoma wasm run MODULE.wasm [options]');
  const timeout = integer(values['timeout-ms'], 'timeout-ms');
  // A Node timer cannot wait longer (a longer delay would fire after 1 ms): engine/timers.ts.
  if (timeout !== undefined && (timeout < 1n || timeout > BigInt(MAX_TIMER_MS))) fail('ERR_USAGE', `--timeout-ms must be from 1 to ${MAX_TIMER_MS}, got ${timeout}`);
  const bytes = await moduleBytes(rest[0]);
  let input: Uint8Array = new Uint8Array(0);
  if (values.input === '-') input = readFileSync(0);
  else if (values.input !== undefined) {
    try {
      input = readFileSync(values.input);
    } catch (e) {
      fail('ERR_IO', `cannot read ${values.input}: ${(e as Error).message}`);
    }
  }
  const memoryMb = integer(values['memory-mb'], 'memory-mb');
  const r = await runWasm(bytes, input, {
    fuel: integer(values.fuel, 'fuel'), seed: integer(values.seed, 'seed'), timestampNs: integer(values.timestamp, 'timestamp'),
    memoryMb: memoryMb === undefined ? undefined : Number(memoryMb), timeoutMs: timeout === undefined ? undefined : Number(timeout),
  });
  if (values.json) {
    console.log(JSON.stringify({
      outputDigest: r.outputDigest, fuelUsed: Number(r.fuelUsed), exitCode: r.exitCode, stdout: Buffer.from(r.stdout).toString('base64'),
      error: r.error, resultDigest: r.resultDigest,
    }));
    process.stderr.write(r.stderr);
  } else {
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    if (r.error) console.error(`atoma: ${r.error.message} [${r.error.code}]`);
  }
  return r.error ? 1 : (r.exitCode ?? 1);
}
