import { info } from '../../engine/config.js';
import { parse } from '../args.js';

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: atoma info [--json]\n\nVersion, the chosen and available CPU paths (ATOMA_ISA), threads (ATOMA_THREADS), the device (ATOMA_DEVICE=cpu|cuda), CUDA.');
    return 0;
  }
  const i = info();
  if (values.json) {
    console.log(JSON.stringify(i));
    return 0;
  }
  console.log(`atoma-node ${i.version} (canonical arithmetic v${i.canonicalArithmetic})`);
  console.log(`isa       ${i.isa} (available: ${i.isas.join(', ')})`);
  console.log(`threads   ${i.threads}`);
  console.log(`device    ${i.device}`);
  console.log(`cuda      ${i.cuda.available ? `available (${i.cuda.device})` : i.cuda.built ? 'built, no device' : 'not built'}`);
  return 0;
}
