import { hashFile, hashStream } from '../../engine/hash.js';
import { AtomaError } from '../../engine/errors.js';
import { parse } from '../args.js';

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values.help) {
    console.log('usage: atoma hash FILE... \n\nPrints `<BLAKE3 hex>  <name>` per file, like b3sum. `-` reads standard input.\nFiles of any size are memory-mapped; ATOMA_THREADS sets the threads used.');
    return 0;
  }
  const files = positionals.length ? positionals : ['-'];
  let status = 0;
  for (const f of files) {
    try {
      const digest = f === '-' ? await hashStream(process.stdin) : await hashFile(f);
      console.log(`${digest.toString('hex')}  ${f}`);
    } catch (e) {
      if (!(e instanceof AtomaError)) throw e;
      console.error(`atoma hash: ${e.message} [${e.code}]`);
      status = 1;
    }
  }
  return status;
}
