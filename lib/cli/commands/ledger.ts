import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fail } from '../../engine/errors.js';
import { blake3, hashFile } from '../../engine/hash.js';
import { isHex32 } from '../../protocol/ids.js';
import { LedgerClient } from '../../protocol/ledger/client.js';
import { serveLedger } from '../../protocol/ledger/service.js';
import { signEvent } from '../../protocol/signing.js';
import { loadOrCreateNodeKey } from '../../node/keys.js';
import { didYouMean, parse } from '../args.js';

const HELP = `usage: atoma ledger serve --db FILE [--port P] [--host 127.0.0.1] [--referee KEYHEX]... [--no-faucet]
       atoma ledger task --ledger URL (--model FILE | --wasm FILE | --kind K --digest HEX)
                         [--sample N | --no-sampling] [--min-reputation R] [--key FILE] [--json]

Runs the local ledger service (SQLite, WAL) over JSON/HTTP with a WebSocket event stream at
/stream. Prints {"url": ...} once listening; stops on SIGINT or SIGTERM. --port 0 picks a port.

Events must be signed by their actor (Ed25519; ids are public keys). --referee names a referee
key in the genesis of a new database (repeatable; ignored for an existing one): only a referee may
post \`reexecuted\`. The faucet (any client may \`deposit\`) is on unless --no-faucet.

\`ledger task\` creates a task on a running ledger, signed by the creator's key (--key, default
~/.atoma/client.key, created when absent): kind inference for --model (its BLAKE3 digest pins
the task), wasm for --wasm, sampling consensus with N nodes (--sample, default 3) or none
(--no-sampling). Prints the new task id, which node.toml entries name as ledger_task.`;

/** Takes every `--referee KEY` / `--referee=KEY` out of argv (the option repeats). */
function referees(argv: string[]): { rest: string[]; keys: string[] } {
  const rest: string[] = [];
  const keys: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--referee') {
      if (i + 1 >= argv.length) fail('ERR_USAGE', '--referee needs a key (64 lowercase hex digits)');
      keys.push(argv[++i]);
    } else if (a.startsWith('--referee=')) keys.push(a.slice('--referee='.length));
    else rest.push(a);
  }
  for (const k of keys) if (!isHex32(k)) fail('ERR_USAGE', `--referee ${String(k).slice(0, 80)}: a referee key is a raw Ed25519 public key, 64 lowercase hex digits`);
  if (new Set(keys).size !== keys.length) fail('ERR_USAGE', '--referee: the same key is given twice');
  return { rest, keys };
}

/** `atoma ledger task`: one signed createTask event; the id is fresh (BLAKE3 of creator, digest, nonce). */
async function createTask(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    ledger: { type: 'string' }, model: { type: 'string' }, wasm: { type: 'string' }, kind: { type: 'string' }, digest: { type: 'string' },
    sample: { type: 'string' }, 'no-sampling': { type: 'boolean' }, 'min-reputation': { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.ledger) fail('ERR_USAGE', '--ledger URL is required; see `atoma ledger --help`');
  const sources = [values.model, values.wasm, values.digest].filter((v) => v !== undefined).length;
  if (sources !== 1) fail('ERR_USAGE', 'give exactly one of --model FILE, --wasm FILE or --kind K --digest HEX');
  let kind: string, digest: string;
  if (values.model !== undefined) [kind, digest] = ['inference', (await hashFile(values.model)).toString('hex')];
  else if (values.wasm !== undefined) [kind, digest] = ['wasm', (await hashFile(values.wasm)).toString('hex')];
  else {
    kind = values.kind ?? '';
    digest = values.digest!;
    if (kind !== 'inference' && kind !== 'wasm') fail('ERR_USAGE', `--kind must be inference or wasm, got '${kind}'`);
    if (!isHex32(digest)) fail('ERR_USAGE', '--digest must be 64 lowercase hex digits (the BLAKE3 of the model or module)');
  }
  if (values['no-sampling'] && values.sample !== undefined) fail('ERR_USAGE', '--sample and --no-sampling exclude each other');
  const count = (v: string | undefined, name: string, def: number, min: number) => {
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) fail('ERR_USAGE', `--${name} must be an integer >= ${min}, got '${v}'`);
    return Number(v);
  };
  const security = values['no-sampling'] ? { mode: 'none' } : { mode: 'sampling', n: count(values.sample, 'sample', 3, 1) };
  const key = loadOrCreateNodeKey(values.key ?? join(homedir(), '.atoma', 'client.key'));
  const task = blake3(`atoma-task/${key.publicKey}/${digest}/${randomBytes(16).toString('hex')}`).toString('hex');
  const client = new LedgerClient(values.ledger);
  try {
    const r = await client.submit(signEvent({ type: 'createTask', task, creator: key.publicKey, kind, digest, security,
      minReputation: count(values['min-reputation'], 'min-reputation', 0, 0) }, key));
    const out = { task, kind, digest, security, creator: key.publicKey, seq: r.seq };
    console.log(values.json ? JSON.stringify(out) : `task ${task}\n  kind ${kind}, digest ${digest}, ${security.mode === 'none' ? 'no sampling' : `sampling ${(security as { n: number }).n} nodes`}`);
    return 0;
  } finally {
    client.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'task') return createTask(argv.slice(1));
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const { rest, keys } = referees(argv);
  const { values, positionals } = parse(rest, { db: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'no-faucet': { type: 'boolean' } });
  if (positionals.length === 0) {
    console.log(HELP);
    return 2;
  }
  if (positionals[0] !== 'serve') fail('ERR_USAGE', `unknown ledger command '${positionals[0]}'${didYouMean(positionals[0], ['serve', 'task'])}; see \`atoma ledger --help\``);
  if (positionals.length !== 1) fail('ERR_USAGE', 'ledger serve takes no other positional arguments');
  if (!values.db) fail('ERR_USAGE', '--db FILE is required; see `atoma ledger --help`');
  const port = Number(values.port ?? 7070);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('ERR_USAGE', '--port must be in 0..65535');
  const svc = await serveLedger({ db: values.db, port, host: values.host ?? '127.0.0.1', referees: keys, faucet: !values['no-faucet'] });
  console.log(JSON.stringify({ url: svc.url, port: svc.port, seq: svc.ledger.state.seq, referees: svc.ledger.state.referees, faucet: svc.ledger.faucet }));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await svc.close();
  return 0;
}
