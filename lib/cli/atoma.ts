#!/usr/bin/env node
/** `atoma`: the command line of atoma-node. One file per command under commands/. */
import { readFileSync } from 'node:fs';
import { AtomaError } from '../engine/errors.js';
import { didYouMean } from './args.js';

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
  return `usage: atoma <command> [options]\n       atoma --version\n\ncommands:\n${lines.join('\n')}\n\nRun \`atoma <command> --help\` for a command's options.`;
}

/** package.json's version, read beside the compiled CLI (dist/cli/atoma.js -> package.json). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * One line per failure, `atoma: MESSAGE [CODE]`, and the exit status: 2 for usage errors, 1 for
 * the rest. Errors that are not AtomaErrors are a file system error (ERR_IO) or a bug
 * (ERR_INTERNAL); their stack goes to stderr only with ATOMA_DEBUG set, since an operator needs
 * the message and a developer asks for the rest.
 */
function report(e: unknown): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const sys = err as NodeJS.ErrnoException;
  const code = e instanceof AtomaError ? e.code : typeof sys.syscall === 'string' ? 'ERR_IO' : 'ERR_INTERNAL';
  const hint = code === 'ERR_INTERNAL' && !process.env.ATOMA_DEBUG ? ' (a bug: ATOMA_DEBUG=1 prints the stack)' : '';
  console.error(`atoma: ${err.message} [${code}]${hint}`);
  if (process.env.ATOMA_DEBUG) console.error(err.stack);
  return code === 'ERR_USAGE' ? 2 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(version());
    return 0;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    const what = name.startsWith('-') ? 'option' : 'command';
    console.error(`atoma: unknown ${what} '${name}'${didYouMean(name.replace(/^-+/, ''), [...Object.keys(COMMANDS), 'version'])}; see \`atoma --help\` [ERR_USAGE]`);
    return 2;
  }
  return (await cmd.load()).main(rest);
}

// A failure outside main's promise (an event handler, a stray rejection) ends the process the
// way an uncaught one would, with one line instead of a stack.
process.on('uncaughtException', (e) => process.exit(report(e)));
process.on('unhandledRejection', (e) => process.exit(report(e)));

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = report(e);
  },
);
