/** Shared test helpers: the ISA paths this CPU has, and a way to run the built CLI. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { info, configure, type Isa } from '../lib/index.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'dist', 'cli', 'atoma.js');

export const ISAS: Isa[] = info().isas;
export const THREADS = [1, 2, 3];

/** Every (isa, threads) configuration this machine can run. */
export function configurations(): { isa: Isa; threads: number }[] {
  return ISAS.flatMap((isa) => THREADS.map((threads) => ({ isa, threads })));
}

/** Runs fn under every configuration and returns the distinct results (one means deterministic). */
export async function acrossConfigurations<T>(fn: () => T | Promise<T>): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  const initial = info();
  try {
    for (const c of configurations()) {
      configure(c);
      const r = JSON.stringify(await fn());
      seen.set(r, [...(seen.get(r) ?? []), `${c.isa}/${c.threads}`]);
    }
  } finally {
    configure({ isa: initial.isa, threads: initial.threads });
  }
  return seen;
}

export function runCli(args: string[], env: Record<string, string> = {}, input?: Buffer) {
  const r = spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, input, encoding: 'buffer', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Polls `fn` until it returns something truthy; throws naming `what` after `ms`. */
export async function until<T>(what: string, fn: () => T | undefined | false, ms = 40_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
