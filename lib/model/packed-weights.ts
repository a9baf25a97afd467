/**
 * A model's q8_0 and f32 matrices in their decode layouts (q8_0x128, f32x16: native/cpu/
 * gemm_weights.h), without a second copy in memory:
 * packed once into a sidecar file in the cache directory and memory-mapped from there
 * (packed-sidecar.ts), so what stays resident is about the sidecar's size and the stored pages
 * of those matrices in the model file are not touched again. The layouts hold the same scales,
 * int8 values and floats, so every product gives the same bytes as on the stored layout (a
 * layout, not an arithmetic change: docs/canonical-arithmetic.md, "Quantized weights").
 *
 * When no sidecar can be used (no cache directory, not writable, disk full, a model without a
 * file identity) the matrices are packed into memory instead, with one warning per process.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { native, type NativeAddon } from '../engine/native.js';
import type { MatrixWeight } from './linear.js';
import { openSidecar, sidecarPlan, writeSidecar, type PackedFormat, type SidecarHeader } from './packed-sidecar.js';
import type { Weight } from './types.js';

/** Version of the packed layouts (a change makes old sidecars unreadable, hence rebuilt). */
export const PACKED_LAYOUT_VERSION = 2;

/** Where a model's weights come from: its identity (digest) and the file its bytes are mapped from. */
export interface PackSource {
  digest: string;
  path: string;
}

export interface PackedMatrices {
  /** Packed matrices by weight name (only the q8_0 and f32 matrices given). */
  matrices: Map<string, MatrixWeight>;
  /** The sidecar the matrices are mapped from, or null when they were packed into memory. */
  file: string | null;
  /** Whether this call wrote the sidecar (false: reused, or packed into memory). */
  built: boolean;
}

export interface PackOptions {
  /** Cache directory (default: ATOMA_CACHE_DIR or ~/.cache/atoma); null: pack into memory. */
  cacheDir?: string | null;
}

type Pack = (w: Uint8Array, n: number, k: number, out?: Uint8Array) => Uint8Array | number;
type PackAddon = NativeAddon & { packQ8_0x128?: Pack; packF32x16?: Pack };
const addon = native as PackAddon;

const Q8_BLOCK = 32, Q8_BYTES = 34;

/** The decode layout of a stored format: its name, panel height, bytes per row, and packer. */
function layoutOf(w: Weight): { format: PackedFormat; panel: number; rowBytes: number; pack: Pack } | null {
  if (w.shape.length !== 2) return null;
  const K = w.shape[1];
  if (w.format === 'q8_0' && K % Q8_BLOCK === 0 && addon.packQ8_0x128) {
    return { format: 'q8_0x128', panel: 128, rowBytes: (K / Q8_BLOCK) * Q8_BYTES, pack: addon.packQ8_0x128.bind(addon) };
  }
  if (w.format === 'f32' && addon.packF32x16) return { format: 'f32x16', panel: 16, rowBytes: 4 * K, pack: addon.packF32x16.bind(addon) };
  return null;
}

/** The default cache directory (the CLI's cacheDir(), restated here: the model layer must not import the CLI). */
export function defaultCacheDir(): string {
  return process.env.ATOMA_CACHE_DIR || join(homedir(), '.cache', 'atoma');
}

/** The sidecar path of a model (by digest) and layout version under `dir`. */
export function sidecarPath(dir: string, digest: string): string {
  return join(dir, 'packed', `${digest}.decode-v${PACKED_LAYOUT_VERSION}.atpk`);
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(message, { code: 'ATOMA_PACKED_WEIGHTS' });
}

/**
 * Reads the stored bytes of the matrices without touching the model file's mapping: read(2) at
 * each weight's offset in the file, so building the sidecar leaves the page cache, not this
 * process, holding the stored layout. Falls back to the mapped view when the weights are not a
 * whole-file mapping of `path` (then those pages do become resident).
 */
function sourceReader(source: PackSource | null, weights: readonly Weight[]): { read(w: Weight): Uint8Array; close(): void } {
  let fd = -1;
  if (source) {
    try {
      fd = openSync(source.path, 'r');
      const st = fstatSync(fd);
      if (!st.isFile() || weights.some((w) => w.bytes.buffer.byteLength !== st.size)) {
        closeSync(fd);
        fd = -1;
      }
    } catch {
      fd = -1;
    }
  }
  let buf = new Uint8Array(0);
  return {
    read(w) {
      if (fd < 0) return w.bytes;
      if (buf.length < w.bytes.length) buf = new Uint8Array(w.bytes.length);
      const view = buf.subarray(0, w.bytes.length);
      for (let done = 0; done < view.length;) {
        const n = readSync(fd, view, done, view.length - done, w.bytes.byteOffset + done);
        if (n === 0) return w.bytes;   // the file shrank under us: the mapping is what we compute with
        done += n;
      }
      return view;
    },
    close() {
      if (fd >= 0) closeSync(fd);
    },
  };
}


/**
 * The decode layout of `weights` (q8_0 matrices, and f32 ones when `source` is given; others
 * are ignored): mapped from the model's
 * sidecar (built on first use) when `source` is given and the cache directory is usable, else
 * packed into memory. Never fails for cache reasons: a corrupt or truncated sidecar is rebuilt,
 * an unusable cache directory means packing in memory (one warning per process).
 *
 * @example
 * const loaded = await loadModel('model-q8_0.gguf');
 * const p = packedMatrices([loaded.weights.get('blk.0.ffn_up.weight')], { digest: loaded.digest, path: loaded.path });
 * p.matrices.get('blk.0.ffn_up.weight');   // { format: 'q8_0x128', bytes: a view of the sidecar }
 */
export function packedMatrices(weights: readonly Weight[], source: PackSource | null, opts: PackOptions = {}): PackedMatrices {
  const seen = new Set<string>();
  const mats = weights.filter((w) => {
    // Without a file to read from, packing copies from the mapping, so both layouts become
    // resident: worth it for q8_0 (decode ~1.45x), not for f32 (whose model is 4x larger).
    const l = layoutOf(w);
    const keep = l !== null && (source !== null || l.format === 'q8_0x128') && !seen.has(w.name);
    seen.add(w.name);
    return keep;
  });
  if (mats.length === 0) return { matrices: new Map(), file: null, built: false };
  const dir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
  if (source && dir !== null) {
    const file = sidecarPath(dir, source.digest);
    const plan = sidecarPlan(source.digest, PACKED_LAYOUT_VERSION, mats.map((w) => {
      const l = layoutOf(w)!;
      return { name: w.name, format: l.format, shape: [w.shape[0], w.shape[1]], bytes: Math.ceil(w.shape[0] / l.panel) * l.panel * l.rowBytes };
    }));
    try {
      const first = openSidecar(file, plan);
      if ('matrices' in first) return { matrices: first.matrices, file, built: false };
      if (first.refused !== 'missing') process.emitWarning(`${file}: ${first.refused}; rebuilding the packed weights`, { code: 'ATOMA_PACKED_WEIGHTS' });
      mkdirSync(join(dir, 'packed'), { recursive: true });
      buildSidecar(file, plan, mats, source);
      const again = openSidecar(file, plan);
      if ('matrices' in again) {
        removeOtherVersions(file, source.digest);
        return { matrices: again.matrices, file, built: true };
      }
      warnOnce(`${file}: the packed weights just written do not check (${again.refused}); packing in memory instead`);
    } catch (e) {
      warnOnce(`cannot use the packed-weights cache in ${join(dir, 'packed')} (${(e as Error).message}); packing in memory instead`);
    }
  }
  return { matrices: packInMemory(mats, source), file: null, built: false };
}

/**
 * Deletes this model's sidecars of other layout versions (left by older builds; never read
 * again). A process still using one keeps its mapping: unlinking only drops the name.
 */
function removeOtherVersions(file: string, digest: string): void {
  const dir = dirname(file), keep = basename(file);
  try {
    for (const n of readdirSync(dir)) {
      if (n !== keep && n.startsWith(`${digest}.`) && n.endsWith('.atpk')) {
        try { unlinkSync(join(dir, n)); } catch { /* gone already, or not ours to delete */ }
      }
    }
  } catch { /* an unreadable directory only means no clean-up */ }
}

function buildSidecar(file: string, plan: SidecarHeader, mats: readonly Weight[], source: PackSource): void {
  const src = sourceReader(source, mats);
  try {
    writeSidecar(file, plan, (i, out) => {
      const w = mats[i];
      layoutOf(w)!.pack(src.read(w), w.shape[0], w.shape[1], out);
    });
  } finally {
    src.close();
  }
}

function packInMemory(mats: readonly Weight[], source: PackSource | null): Map<string, MatrixWeight> {
  const src = sourceReader(source, mats);
  try {
    const out = new Map<string, MatrixWeight>();
    for (const w of mats) {
      const l = layoutOf(w)!;
      const bytes = l.pack(src.read(w), w.shape[0], w.shape[1]) as Uint8Array;
      out.set(w.name, { name: w.name, format: l.format, shape: [w.shape[0], w.shape[1]], bytes });
    }
    return out;
  } finally {
    src.close();
  }
}
