import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mapFile } from '../lib/index.js';

describe('mapFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoma-map-'));
  it('maps a file read-only with its exact bytes', () => {
    const p = join(dir, 'a.bin');
    const data = Buffer.from(Array.from({ length: 100000 }, (_, i) => (i * 31) & 0xff));
    writeFileSync(p, data);
    const buf = mapFile(p);
    expect(buf.byteLength).toBe(data.length);
    expect(Buffer.from(buf).equals(data)).toBe(true);
    expect(new Float32Array(buf, 0, 4).length).toBe(4);
  });
  it('an empty file maps to an empty buffer', () => {
    const p = join(dir, 'empty');
    writeFileSync(p, '');
    expect(mapFile(p).byteLength).toBe(0);
  });
  it('a missing file or a directory is ERR_IO naming the path', () => {
    expect(() => mapFile(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ERR_IO', message: expect.stringContaining('missing') }));
    expect(() => mapFile(dir)).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
  });
});
