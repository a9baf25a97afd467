#!/usr/bin/env node
/** `atoma`: the command line of atoma-node. One file per command under commands/. */
import { AtomaError } from '../engine/errors.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main(argv: string[]): Promise<number> }> }> = {
  info: { summary: 'version, ISA paths, threads, CUDA', load: () => import('./commands/info.js') },
  conform: { summary: 'digest of one canonical kernel on seeded inputs', load: () => import('./commands/conform.js') },
  hash: { summary: 'BLAKE3 of files, like b3sum', load: () => import('./commands/hash.js') },
  bench: { summary: 'GEMM, GEMV, hash and copy throughput', load: () => import('./commands/bench.js') },
  wasm: { summary: 'run a WebAssembly function (metered, isolated)', load: () => import('./commands/wasm.js') },
  ledger: { summary: 'local ledger service (SQLite) over HTTP + WebSocket', load: () => import('./commands/ledger.js') },
  devnet: { summary: 'run a local network of nodes (or --simulate the rules): disputes, slashes, p^n', load: () => import('./commands/devnet.js') },
  model: { summary: 'create (init) or inspect GGUF / safetensors models', load: () => import('./commands/model.js') },
  run: { summary: 'generate text with a model (deterministic; --json for digests)', load: () => import('./commands/run.js') },
  node: { summary: 'serve tasks over an OpenAI-compatible HTTP API (--config node.toml)', load: () => import('./commands/node.js') },
  request: { summary: 'send an inference request through a ledger and wait for it to settle', load: () => import('./commands/request.js') },
  trace: { summary: 'trace leaves of a generation for dispute bisection', load: () => import('./commands/trace.js') },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`);
  return `usage: atoma <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`atoma <command> --help\` for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`atoma: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await cmd.load()).main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof AtomaError) {
      console.error(`atoma: ${e.message} [${e.code}]`);
      process.exitCode = e.code === 'ERR_USAGE' ? 2 : 1;
    } else {
      console.error(`atoma: ${(e as Error)?.stack ?? String(e)}`);
      process.exitCode = 1;
    }
  },
);
