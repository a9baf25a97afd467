// Module hooks that let a plain `node` child process import the TypeScript sources the way
// vitest does: a relative or absolute `x.js` that does not exist resolves to `./x.ts`, and `.ts` files are
// stripped of their types with vite's oxc transform (vitest's own, ~1 ms a file; tsc's
// transpileModule costs ~100 ms a file, too slow for a child per fuzz target).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

let transform;

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (context.parentURL && specifier.endsWith('.js') && /^(\.\.?\/|\/|file:)/.test(specifier)) {
      const url = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
      if (existsSync(fileURLToPath(url))) return { url: url.href, format: 'module', shortCircuit: true };
    }
    throw e;
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  transform ??= (await import('vite')).transformWithOxc;
  const path = fileURLToPath(url);
  const out = await transform(await readFile(path, 'utf8'), path, { sourcemap: true });
  const map = Buffer.from(JSON.stringify(out.map)).toString('base64');
  return { format: 'module', source: `${out.code}\n//# sourceMappingURL=data:application/json;base64,${map}\n`, shortCircuit: true };
}
