import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blake3, configure, hashFile, info } from '../lib/index.js';
import { ISAS, root, runCli } from './helpers.js';

interface Vectors { key: string; context_string: string; cases: { input_len: number; hash: string; keyed_hash: string; derive_key: string }[] }
const vectors = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'blake3-test-vectors.json'), 'utf8')) as Vectors;

const input = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);

describe('BLAKE3 official test vectors', () => {
  for (const isa of ISAS) {
    it(`every case and mode on the ${isa} path`, () => {
      const initial = info();
      configure({ isa });
      try {
        const key = Buffer.from(vectors.key, 'ascii');
        for (const c of vectors.cases) {
          const data = input(c.input_len);
          const len = c.hash.length / 2;
          expect(blake3(data, { length: len }).toString('hex'), `hash ${c.input_len}`).toBe(c.hash);
          expect(blake3(data).toString('hex'), `hash32 ${c.input_len}`).toBe(c.hash.slice(0, 64));
          expect(blake3(data, { key, length: len }).toString('hex'), `keyed ${c.input_len}`).toBe(c.keyed_hash);
          expect(blake3(data, { context: vectors.context_string, length: len }).toString('hex'), `derive ${c.input_len}`).toBe(c.derive_key);
        }
      } finally {
        configure({ isa: initial.isa });
      }
    });
  }

  it('rejects a key that is not 32 bytes, and key with context', () => {
    expect(() => blake3('x', { key: new Uint8Array(31) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => blake3('x', { key: new Uint8Array(32), context: 'c' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});

describe('file hashing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoma-hash-'));
  const sizes = [0, 1, 1024, 1025, 65536 * 3 + 7, 5 * 1024 * 1024 + 13];
  const files = sizes.map((n) => {
    const p = join(dir, `f${n}`);
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
    writeFileSync(p, data);
    return { p, data };
  });

  it('hashFile equals the in-memory hash for every size', async () => {
    for (const { p, data } of files) expect((await hashFile(p)).toString('hex')).toBe(blake3(data).toString('hex'));
  });

  it('a missing file is ERR_IO naming the path', async () => {
    await expect(hashFile(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ERR_IO', message: expect.stringContaining('nope') });
  });

  it('`atoma hash` prints b3sum lines, reads stdin for -, and matches b3sum where installed', () => {
    const r = runCli(['hash', ...files.map((f) => f.p)]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    files.forEach((f, i) => expect(lines[i]).toBe(`${blake3(f.data).toString('hex')}  ${f.p}`));
    const s = runCli(['hash', '-'], {}, files[3].data);
    expect(s.stdout.trim()).toBe(`${blake3(files[3].data).toString('hex')}  -`);
    if (spawnSync('b3sum', ['--version']).status === 0) {
      expect(execFileSync('b3sum', files.map((f) => f.p)).toString()).toBe(r.stdout);
    }
    const bad = runCli(['hash', join(dir, 'missing')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('missing');
  });
});
