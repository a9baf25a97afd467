import { fail } from '../../engine/errors.js';
import { simulate, type Behavior } from '../../protocol/simulate.js';
import { parse } from '../args.js';

const HELP = `usage: atoma devnet --simulate --nodes N --sample n --byzantine B --requests R
                    [--behavior tamper|copy|silent|mixed] [--seed S] [--json]

Runs the protocol rules in memory with simulated nodes (no inference): B of the N nodes are
byzantine. Reports settled requests, disputes, slashes, payments and the rate at which a
tampered result settled, against p^n (p = B/N) and the exact hypergeometric value.`;

function int(v: string | undefined, name: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (v === undefined || !Number.isSafeInteger(n) || n < 0) fail('ERR_USAGE', `--${name} must be a non-negative integer`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    simulate: { type: 'boolean' }, nodes: { type: 'string' }, sample: { type: 'string' }, byzantine: { type: 'string' },
    requests: { type: 'string' }, behavior: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.simulate) fail('ERR_USAGE', 'only `atoma devnet --simulate` is available here (a devnet of real nodes is not part of this command yet)');
  const behavior = (values.behavior ?? 'tamper') as Behavior;
  if (!['tamper', 'copy', 'silent', 'mixed'].includes(behavior)) fail('ERR_USAGE', '--behavior must be tamper, copy, silent or mixed');
  const r = simulate({
    nodes: int(values.nodes, 'nodes', 100), sample: int(values.sample, 'sample', 10), byzantine: int(values.byzantine, 'byzantine', 0),
    requests: int(values.requests, 'requests', 100_000), behavior, seed: int(values.seed, 'seed', 1),
  });
  if (values.json) console.log(JSON.stringify(r));
  else for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(20)} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(6) : v}`);
  return 0;
}
