import { CASES, runCase } from '../../engine/conformance.js';
import { fail } from '../../engine/errors.js';
import { parse } from '../args.js';

const OPTIONS = {
  m: { type: 'string' }, k: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' },
  rows: { type: 'string' }, shape: { type: 'string' }, stream: { type: 'string' }, eps: { type: 'string' },
  scale: { type: 'string' }, tokens: { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' },
  dim: { type: 'string' }, theta: { type: 'string' }, rot: { type: 'string' }, start: { type: 'string' },
  vocab: { type: 'string' }, nk: { type: 'boolean' }, bias: { type: 'boolean' }, neox: { type: 'boolean' },
} as const;

function help(): string {
  const ops = Object.entries(CASES).map(([op, c]) => `  ${op.padEnd(10)} ${c.usage}`);
  return [
    'usage: atoma conform OP [options]',
    '',
    'Prints only the 64-hex digest (DETERMINISM.md section 2) of one canonical kernel run on the',
    "spec's seeded inputs: A = seeded([m,k], seed, 0), B = seeded([k,n], seed, 1),",
    'x = seeded(shape, seed, 0), w = seeded([n], seed, 1). Any conforming implementation, on any',
    'ISA path, thread count or device, prints the same digest.',
    '',
    'ops:',
    ...ops,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS);
  if (values.help) {
    console.log(help());
    return 0;
  }
  if (positionals.length !== 1) fail('ERR_USAGE', `conform takes one OP (one of: ${Object.keys(CASES).join(', ')})`);
  const t = await runCase(positionals[0], values);
  console.log(t.digest());
  return 0;
}
