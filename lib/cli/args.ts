/** Option parsing shared by the commands: strict, with typed errors for the CLI to print. */
import { parseArgs } from 'node:util';
import { fail } from '../engine/errors.js';

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type Values<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean };

export function parse<O extends OptionSpec>(argv: string[], options: O, allowPositionals = true): { values: Values<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    fail('ERR_USAGE', (e as Error).message);
  }
}
