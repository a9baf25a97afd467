import { fail } from '../../engine/errors.js';
import { isHex32 } from '../../protocol/ids.js';
import { serveLedger } from '../../protocol/ledger/service.js';
import { parse } from '../args.js';

const HELP = `usage: atoma ledger serve --db FILE [--port P] [--host 127.0.0.1] [--referee KEYHEX]... [--no-faucet]

Runs the local ledger service (SQLite, WAL) over JSON/HTTP with a WebSocket event stream at
/stream. Prints {"url": ...} once listening; stops on SIGINT or SIGTERM. --port 0 picks a port.

Events must be signed by their actor (Ed25519; ids are public keys). --referee names a referee
key in the genesis of a new database (repeatable; ignored for an existing one): only a referee may
post \`reexecuted\`. The faucet (any client may \`deposit\`) is on unless --no-faucet.`;

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

export async function main(argv: string[]): Promise<number> {
  const { rest, keys } = referees(argv);
  const { values, positionals } = parse(rest, { db: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'no-faucet': { type: 'boolean' } });
  if (values.help || positionals[0] !== 'serve' || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (!values.db) fail('ERR_USAGE', '--db FILE is required');
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
