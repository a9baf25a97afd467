import { fail } from '../../engine/errors.js';
import { AtomaNode } from '../../node/node.js';
import { parse } from '../args.js';

const HELP = `usage: atoma node --config node.toml [--port N]

Serves the tasks of node.toml over an OpenAI-compatible HTTP API (docs/node.md): fetches and
verifies the models into the cache, re-runs requests a previous run left unfinished, signs every
answer with the node key. With ledger tasks (ledger_task in [[tasks]]) it also registers and
subscribes on the ledger and executes, commits and reveals its assignments (docs/node.md, "On a
ledger"). Logs are JSON lines on stderr. SIGTERM/SIGINT: graceful stop (in-flight assignments
are finished and revealed first).

  --config FILE   the node configuration (TOML)
  --port N        listen on this port instead of node.listen's (0: any free port)`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' }, port: { type: 'string' } }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) fail('ERR_USAGE', 'node takes no positional arguments');
  if (values.config === undefined) fail('ERR_USAGE', '--config node.toml is required; see `atoma node --help`');
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d{1,5}$/.test(values.port) || port > 65535) fail('ERR_USAGE', `--port must be 0..65535, got '${values.port}'`);
  }
  const node = await AtomaNode.start(values.config, { port });
  // The URL on stdout lets a parent process (or a script) find a node started with --port 0.
  console.log(JSON.stringify({ url: node.url, publicKey: node.key.publicKey }));
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void node.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}
