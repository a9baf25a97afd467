/** The known-answer digests published in docs/canonical-arithmetic.md: any change is a protocol change. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCase, type CaseArgs } from '../lib/engine/conformance.js';
import { root } from './helpers.js';

function parse(command: string): [string, CaseArgs] {
  const [op, ...rest] = command.split(/\s+/);
  const args: CaseArgs = {};
  for (let i = 0; i < rest.length; i++) {
    const key = rest[i].replace(/^--/, '');
    if (i + 1 < rest.length && !rest[i + 1].startsWith('--')) args[key] = rest[++i];
    else args[key] = true;
  }
  return [op, args];
}

const doc = readFileSync(join(root, 'docs', 'canonical-arithmetic.md'), 'utf8');
const rows = [...doc.matchAll(/^\| `([a-z0-9][^`]*)` \| `([0-9a-f]{64})` \|$/gm)].map((m) => [m[1], m[2]] as const);

describe('known-answer digests of docs/canonical-arithmetic.md', () => {
  it('the table is there', () => expect(rows.length).toBeGreaterThanOrEqual(20));
  it.each(rows)('atoma conform %s', async (command, digest) => {
    const [op, args] = parse(command);
    expect((await runCase(op, args)).digest()).toBe(digest);
  });
});
