import { fail } from '../../engine/errors.js';
import { serveLedger } from '../../protocol/ledger/service.js';
import { parse } from '../args.js';

const HELP = `usage: atoma ledger serve --db FILE [--port P] [--host 127.0.0.1]

Runs the local ledger service (SQLite, WAL) over JSON/HTTP with a WebSocket event stream at
/stream. Prints {"url": ...} once listening; stops on SIGINT or SIGTERM. --port 0 picks a port.`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { db: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } });
  if (values.help || positionals[0] !== 'serve' || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (!values.db) fail('ERR_USAGE', '--db FILE is required');
  const port = Number(values.port ?? 7070);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('ERR_USAGE', '--port must be in 0..65535');
  const svc = await serveLedger({ db: values.db, port, host: values.host ?? '127.0.0.1' });
  console.log(JSON.stringify({ url: svc.url, port: svc.port, seq: svc.ledger.state.seq }));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await svc.close();
  return 0;
}
