/**
 * Option parsing shared by the commands: strict, with typed errors for the CLI to print.
 *
 * Three things node:util's parseArgs does not do for us:
 *  - `--help` / `-h` anywhere wins over everything else: a command's help never depends on its
 *    other flags being present or valid;
 *  - a negative number after a string option (`--max-tokens -1`) is that option's value, so it
 *    reaches the command's own range check instead of parseArgs' "ambiguous" message;
 *  - an unknown option names the closest known one ("did you mean --max-tokens?").
 */
import { parseArgs } from 'node:util';
import { fail } from '../engine/errors.js';

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type Values<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean };

/** Edit distance with adjacent transpositions (optimal string alignment), for typo suggestions. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word`, when it is close enough to be the likely intent. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  // A third of the length (at least 1, at most 3) tells a typo from a different word.
  return best !== undefined && bestD <= Math.min(3, Math.max(1, Math.floor(best.length / 3))) ? best : undefined;
}

/** " (did you mean X?)" for the closest candidate, or '' when none is close. */
export function didYouMean(word: string, candidates: Iterable<string>, prefix = ''): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean ${prefix}${c}?)`;
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

export function parse<O extends OptionSpec>(argv: string[], options: O, allowPositionals = true): { values: Values<O>; positionals: string[] } {
  const end = argv.indexOf('--');
  const flags = end < 0 ? argv : argv.slice(0, end);
  if (flags.includes('--help') || flags.includes('-h')) {
    return { values: { help: true } as Values<O>, positionals: flags.filter((a) => !a.startsWith('-')) };
  }
  const shorts = new Map(Object.entries(options).filter(([, o]) => o.short).map(([name, o]) => [o.short!, name]));
  const args: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const a = flags[i];
    if (a.startsWith('--')) {
      const name = a.slice(2).split('=', 1)[0];
      const spec = options[name];
      if (!spec) fail('ERR_USAGE', `unknown option --${name}${didYouMean(name, [...Object.keys(options), 'help'], '--')}`);
      if (spec.type === 'string' && !a.includes('=') && i + 1 < flags.length && NEGATIVE_NUMBER.test(flags[i + 1])) {
        args.push(`${a}=${flags[++i]}`);
        continue;
      }
    } else if (a.startsWith('-') && a.length > 1 && !NEGATIVE_NUMBER.test(a)) {
      const name = shorts.get(a[1]);
      if (name === undefined) fail('ERR_USAGE', `unknown option ${a}`);
      if (options[name].type === 'string' && a.length === 2 && i + 1 < flags.length && NEGATIVE_NUMBER.test(flags[i + 1])) {
        args.push(`--${name}=${flags[++i]}`);
        continue;
      }
    }
    args.push(a);
  }
  if (end >= 0) args.push(...argv.slice(end));
  try {
    const r = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    const opt = /Option '(-[^' ]+)/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && opt && /argument missing/.test(err.message)) fail('ERR_USAGE', `${opt} needs a value`);
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && opt && /does not take an argument/.test(err.message)) fail('ERR_USAGE', `${opt} takes no value`);
    fail('ERR_USAGE', err.message.split('\n')[0]);
  }
}
