/**
 * The package as a consumer sees it: its subpath exports, what each one loads, its public .d.ts
 * files under a strict consumer, its runtime dependencies and its tarball. Everything runs against
 * the built dist/ (`npm run build:ts`), the way `import 'atoma-node/...'` resolves.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; import: string }>;
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const SUBPATHS = ['engine', 'model', 'protocol', 'sui', 'node', 'wasm', 'crypto'] as const;
/** Packages a consumer of the engine alone must not pay for. */
const HEAVY = ['@mysten/sui', '@mysten/bcs', 'graphql', 'better-sqlite3', 'ws', '@huggingface/jinja', 'smol-toml', 'wabt', '@noble/curves', 'valibot'];

interface Loaded {
  exports: Record<string, string[]>;
  /** Every module file the child loaded: ESM through a load hook, CommonJS from require.cache. */
  files: string[];
  /** Names exported by more than one specifier whose values differ (two copies of a module). */
  split: string[];
}

/**
 * Imports `specs` by their package names in a fresh node whose cwd is the package (so the
 * package resolves itself through "exports") and reports what was loaded. The load hook writes
 * each URL synchronously before the module is evaluated, so the log is complete once the import
 * resolves.
 */
function importInChild(specs: string[]): Loaded {
  const dir = mkdtempSync(join(tmpdir(), 'atoma-pkg-'));
  const log = join(dir, 'loaded.txt');
  const hook = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }`;
  const code = `
import { register, createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
const specs = ${JSON.stringify(specs)};
const exports = {}, seen = new Map(), split = new Set();
for (const s of specs) {
  const m = await import(s);
  exports[s] = Object.keys(m);
  for (const [k, v] of Object.entries(m)) {
    if (seen.has(k) && seen.get(k) !== v) split.add(k);
    seen.set(k, v);
  }
}
const esm = existsSync(${JSON.stringify(log)}) ? readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter(Boolean) : [];
const files = [...esm.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u)), ...Object.keys(createRequire(import.meta.url).cache)];
process.stdout.write(JSON.stringify({ exports, files, split: [...split] }));
`;
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`child failed (${r.status} ${r.signal ?? ''}): ${r.stderr}`);
    return JSON.parse(r.stdout) as Loaded;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The npm packages among `files` (their names as in node_modules). */
function packagesOf(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) out.add(m[1]);
  }
  return out;
}

function walk(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p, ext) : e.name.endsWith(ext) ? [p] : [];
  });
}

/**
 * Bare package names a file imports or requires, `createRequire(...)('x')` and `lazyRequire('x')`
 * included (node: builtins and relative paths left out).
 */
function bareImports(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\b(?:require|lazyRequire)\s*\(\s*|\)\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm)) {
    const spec = m[1];
    if (spec.startsWith('.') || spec.startsWith('node:') || spec.startsWith('/')) continue;
    out.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return out;
}

describe('package', () => {
  it('declares types and import for the root and every subpath, pointing at dist/<folder>/index', () => {
    for (const sub of SUBPATHS) {
      const entry = pkg.exports[`./${sub}`];
      expect(entry, sub).toMatchObject({ types: expect.stringMatching(/^\.\/dist\/.*index\.d\.ts$/), import: expect.stringMatching(/^\.\/dist\/.*index\.js$/) });
    }
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
  });

  it('atoma-node/engine loads only engine files: no Sui, GraphQL, SQLite, WebSocket, template or WAT code', () => {
    const { exports, files } = importInChild(['atoma-node/engine']);
    expect(exports['atoma-node/engine']).toEqual(expect.arrayContaining(['Tensor', 'matmul', 'blake3', 'AtomaError', 'configure', 'DeviceTensor']));
    const heavy = [...packagesOf(files)].filter((p) => HEAVY.includes(p) || p.startsWith('@mysten/'));
    expect(heavy).toEqual([]);
    // The layer rule: the engine imports nothing from model/, protocol/, node/, wasm/ or crypto/.
    const ours = files.filter((f) => f.startsWith(join(root, 'dist') + '/')).map((f) => relative(join(root, 'dist'), f));
    expect(ours.length).toBeGreaterThan(3);
    expect(ours.filter((f) => !f.startsWith('engine/'))).toEqual([]);
  });

  it('the root loads Sui, GraphQL, SQLite, WebSocket, TOML and Jinja only when they are used, and exports what it always did', () => {
    const { exports, files } = importInChild(['atoma-node']);
    const loaded = [...packagesOf(files)].filter((p) => HEAVY.includes(p) || p.startsWith('@mysten/'));
    expect(loaded).toEqual([]);
    const before = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'root-exports.json'), 'utf8')) as string[];
    expect(before.filter((name) => !exports['atoma-node'].includes(name))).toEqual([]);
  });

  it('every subpath resolves, exports its surface, and shares module instances with the root', () => {
    const specs = ['atoma-node', ...SUBPATHS.map((s) => `atoma-node/${s}`)];
    const { exports, split } = importInChild(specs);
    const expected: Record<string, string[]> = {
      engine: ['Tensor', 'matmul', 'AtomaError'],
      model: ['loadModel', 'readGguf', 'generate', 'LlamaModel', 'BpeTokenizer'],
      protocol: ['apply', 'Ledger', 'serveLedger', 'signEvent'],
      sui: ['SuiLedgerClient', 'loadSuiKey', 'buildRegisterNode'],
      node: ['AtomaNode', 'loadConfig', 'runDevnet'],
      wasm: ['WasmFunction', 'runWasm', 'assembleWat'],
      crypto: ['seal', 'open', 'NodeKeyring'],
    };
    for (const sub of SUBPATHS) expect(exports[`atoma-node/${sub}`], sub).toEqual(expect.arrayContaining(expected[sub]));
    // One copy of each module: the same class or function whichever entry it came through.
    expect(split).toEqual([]);
  });

  it('the public .d.ts files name only packages a consumer installs, with their types', () => {
    const named = new Set<string>();
    for (const f of walk(join(root, 'dist'), '.d.ts')) for (const p of bareImports(readFileSync(f, 'utf8'))) named.add(p);
    const problems: string[] = [];
    for (const p of named) {
      if (!(p in pkg.dependencies)) {
        problems.push(`${p} is not a dependency`);
        continue;
      }
      // A package whose types come from DefinitelyTyped needs its @types package installed too.
      const typesPkg = `@types/${p.replace(/^@/, '').replace('/', '__')}`;
      if (existsSync(join(root, 'node_modules', typesPkg)) && !(typesPkg in pkg.dependencies)) {
        problems.push(`${p}'s types come from ${typesPkg}, which is not a dependency`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every runtime dependency is used by the built code, the addon build or an install script', () => {
    const used = new Set<string>();
    for (const f of [...walk(join(root, 'dist'), '.js'), ...walk(join(root, 'dist'), '.d.ts')]) for (const p of bareImports(readFileSync(f, 'utf8'))) used.add(p);
    // A @types package is used when the package it types is.
    for (const p of [...used]) used.add(`@types/${p.replace(/^@/, '').replace('/', '__')}`);
    const build = readFileSync(join(root, 'binding.gyp'), 'utf8') + Object.values(pkg.scripts).join('\n');
    const unused = Object.keys(pkg.dependencies).filter((d) => !used.has(d) && !build.includes(d));
    expect(unused).toEqual([]);
  });

  it('a strict consumer (skipLibCheck: false) type-checks against every subpath', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoma-consumer-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(root, join(dir, 'node_modules', 'atoma-node'), 'dir');
      // The Sui SDK's own .d.ts import a path its exports map hides (@mysten/bcs/dist/cjs/types.js),
      // so `atoma-node/sui` (and the root, which re-exports it) cannot pass skipLibCheck: false
      // until the SDK fixes that; every other subpath must.
      const strict = SUBPATHS.filter((s) => s !== 'sui');
      writeFileSync(
        join(dir, 'consumer.ts'),
        strict.map((s) => `import * as ${s} from 'atoma-node/${s}';`).join('\n') +
          `\nimport type { Tensor } from 'atoma-node/engine';\nimport type { LedgerOptions } from 'atoma-node/protocol';\n` +
          `export const surfaces = [${strict.join(', ')}];\nexport type Used = [Tensor<'f32'>, LedgerOptions, node.NodeOptions, model.GenerateRequest];\n`,
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, skipDefaultLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] }, files: ['consumer.ts'] }),
      );
      const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 120_000 });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the tarball carries LICENSE, the built code and no test files', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    expect(files).toContain('LICENSE');
    expect(files).toContain('dist/engine/index.js');
    expect(files.filter((f) => f.startsWith('test/'))).toEqual([]);
    expect(existsSync(join(root, 'LICENSE'))).toBe(true);
  });
});
