/**
 * The compiled file a worker thread or child process runs. Beside the calling module when that
 * module is itself compiled (dist/); when the caller runs from the TypeScript sources (tests), the
 * same file in dist/, which must have been built.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from './errors.js';
import { packageRoot } from './native.js';

/**
 * @example
 * new Worker(compiledEntry(import.meta.url, 'node/engine-worker.js', 'the engine worker'));
 */
export function compiledEntry(callerUrl: string, distPath: string, what: string): string {
  const sibling = fileURLToPath(new URL(`./${basename(distPath)}`, callerUrl));
  if (existsSync(sibling)) return sibling;
  const built = join(packageRoot, 'dist', distPath);
  if (!existsSync(built)) fail('ERR_IO', `${what} is not built (${built}): run \`npm run build:ts\``);
  return built;
}
