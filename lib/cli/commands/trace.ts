import { fail } from '../../engine/errors.js';
import { generate } from '../../model/generate.js';
import { selectLeaves } from '../../model/trace.js';
import { parse } from '../args.js';
import { newModel, openModel } from './model-source.js';
import { requestFromFlags } from './run.js';

const HELP = `usage: atoma trace [--model FILE] --prompt TEXT [--max-tokens N] [--seed S] [--steps A:B] [--layers C:D] [--json]

--max-tokens (default 32), --seed (default 0) and the other sampling options as in \`atoma run\`:
the same flags give the same request, hence the same traceRoot. Runs the request and prints the trace leaves of steps [A, B) x layers [C, D): index, step, layer
and the leaf hash (step 0 = the prompt, step s = decode step s).
Two nodes whose traceRoots differ bisect with narrower ranges down to the first differing leaf.`;

function range(v: string | undefined, name: string): [number, number] {
  if (v === undefined) return [0, Number.MAX_SAFE_INTEGER];
  const m = /^(\d*):(\d*)$/.exec(v);
  if (!m) fail('ERR_USAGE', `--${name} must look like A:B (either side may be empty), got '${v}'`);
  return [m[1] === '' ? 0 : Number(m[1]), m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2])];
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' }, prompt: { type: 'string' }, 'max-tokens': { type: 'string' }, seed: { type: 'string' },
    temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, chat: { type: 'boolean' },
    steps: { type: 'string' }, layers: { type: 'string' }, json: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) fail('ERR_USAGE', 'trace takes no positional arguments');
  if (values.prompt === undefined) fail('ERR_USAGE', '--prompt is required; see `atoma trace --help`');
  const steps = range(values.steps, 'steps'), layers = range(values.layers, 'layers');
  const loaded = await openModel(values.model);
  const model = newModel(loaded);
  const req = requestFromFlags(loaded.tokenizer, values);
  const [res] = generate(model, [req]);
  const leaves = selectLeaves(res.leaves, model.config.blockCount, steps, layers);
  if (values.json) {
    console.log(JSON.stringify({ traceRoot: res.traceRoot, outputDigest: res.outputDigest, layers: model.config.blockCount, leaves }));
  } else {
    console.log(`traceRoot ${res.traceRoot}`);
    for (const l of leaves) console.log(`${l.index}\t${l.step}\t${l.layer}\t${l.hex}`);
  }
  return 0;
}
