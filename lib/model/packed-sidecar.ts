/**
 * The sidecar file of a model's decode layout: its q8_0 and f32 matrices repacked (q8_0x128,
 * f32x16, see native/cpu/gemm_weights.h) and kept on disk, so a process maps them (page cache, shared
 * between processes, no anonymous copy) instead of repacking into memory at every start.
 *
 * File layout (all integers little-endian):
 *
 *   0   8  magic "ATMPACK\0"
 *   8   4  u32 file format version (SIDECAR_VERSION)
 *   12  4  u32 L, bytes of the header JSON
 *   16  32 BLAKE3 of the header JSON
 *   48  L  header JSON: { layout, layoutVersion, model (the model digest), payloadOffset,
 *          payloadBytes, payloadBlake3, tensors: [{ name, format, shape: [N, K], offset, bytes }] }
 *   ... zeros up to payloadOffset (a multiple of 4096: every matrix is page- then 64-aligned)
 *   payloadOffset: payloadBytes of packed matrices, tensor offsets relative to payloadOffset
 *
 * A reader trusts nothing it has not checked: the header hash, the model digest, the tensor
 * table against the one the model implies, the exact file size, and the BLAKE3 of the whole
 * payload. Any mismatch (a flipped byte, a truncated or half-written file, another model) makes
 * openSidecar return null and the caller rebuild it. Writers write a private temp file and
 * rename it over the final name (atomic on POSIX), so concurrent processes never see a partial
 * file; the last rename wins and both files are valid. No fsync: a file cut short by a crash
 * fails the payload hash and is rebuilt.
 */
import { closeSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { blake3, createHasher } from '../engine/hash.js';
import { mapFile } from '../engine/files.js';
import type { MatrixWeight } from './linear.js';

const MAGIC = 'ATMPACK\0';
/** Version of the file format above (a change makes old sidecars unreadable, hence rebuilt). */
export const SIDECAR_VERSION = 1;
const PREAMBLE = 48;
const PAGE = 4096;
const ALIGN = 64;

/** One matrix of the sidecar: where its packed bytes lie, relative to the payload. */
/** The packed layouts a sidecar holds. */
export type PackedFormat = 'q8_0x128' | 'f32x16';

export interface SidecarTensor {
  name: string;
  format: PackedFormat;
  shape: [number, number];
  offset: number;
  bytes: number;
}

export interface SidecarHeader {
  layout: 'decode';
  layoutVersion: number;
  model: string;
  payloadOffset: number;
  payloadBytes: number;
  payloadBlake3: string;
  tensors: SidecarTensor[];
}

/** The tensor table and sizes a sidecar of these matrices has (the one layout a reader accepts). */
export function sidecarPlan(model: string, layoutVersion: number, mats: readonly { name: string; format: PackedFormat; shape: [number, number]; bytes: number }[]): SidecarHeader {
  let at = 0;
  const tensors = mats.map((m) => {
    at = Math.ceil(at / ALIGN) * ALIGN;
    const t: SidecarTensor = { name: m.name, format: m.format, shape: [m.shape[0], m.shape[1]], offset: at, bytes: m.bytes };
    at += m.bytes;
    return t;
  });
  const header: SidecarHeader = { layout: 'decode', layoutVersion, model, payloadOffset: 0, payloadBytes: at, payloadBlake3: '0'.repeat(64), tensors };
  // The offset depends on the JSON's length, which does not depend on the offset's own digits
  // beyond a page: iterate to the fixed point (at most twice).
  for (;;) {
    const need = Math.ceil((PREAMBLE + Buffer.byteLength(JSON.stringify(header))) / PAGE) * PAGE;
    if (need === header.payloadOffset) return header;
    header.payloadOffset = need;
  }
}

function preamble(json: Buffer): Buffer {
  const p = Buffer.alloc(PREAMBLE);
  p.write(MAGIC, 0, 'latin1');
  p.writeUInt32LE(SIDECAR_VERSION, 8);
  p.writeUInt32LE(json.length, 12);
  blake3(json).copy(p, 16);
  return p;
}

/**
 * Writes the sidecar `file` for `plan`: `fill(i, out)` puts tensor i's packed bytes in
 * out[0 .. bytes) (out is reused). Written to a temp file beside `file`, then renamed over it.
 */
export function writeSidecar(file: string, plan: SidecarHeader, fill: (i: number, out: Uint8Array) => void): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o644);
  let ok = false;
  try {
    const hasher = createHasher();
    const biggest = plan.tensors.reduce((a, t) => Math.max(a, t.bytes), 0);
    const out = new Uint8Array(biggest);
    let at = 0;
    plan.tensors.forEach((t, i) => {
      if (t.offset > at) {
        const pad = new Uint8Array(t.offset - at);
        writeAll(fd, pad, plan.payloadOffset + at);
        hasher.update(pad);
      }
      const view = out.subarray(0, t.bytes);
      fill(i, view);
      writeAll(fd, view, plan.payloadOffset + t.offset);
      hasher.update(view);
      at = t.offset + t.bytes;
    });
    const header: SidecarHeader = { ...plan, payloadBlake3: hasher.digest().toString('hex') };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const head = Buffer.alloc(plan.payloadOffset);
    preamble(json).copy(head, 0);
    json.copy(head, PREAMBLE);
    writeAll(fd, head, 0);
    closeSync(fd);
    renameSync(tmp, file);
    ok = true;
  } finally {
    if (!ok) {
      try { closeSync(fd); } catch { /* already closed */ }
      try { unlinkSync(tmp); } catch { /* never created or already gone */ }
    }
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Why a sidecar was refused (for the rebuild warning), or its mapped matrices. */
export type SidecarOpen = { matrices: Map<string, MatrixWeight> } | { refused: string };

/**
 * Maps `file` and checks it against `plan` (sidecarPlan of the same matrices); on success the
 * packed matrices are views of the mapping. A missing file is { refused: 'missing' }.
 */
export function openSidecar(file: string, plan: SidecarHeader): SidecarOpen {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { refused: 'missing' };
  }
  if (size < PREAMBLE) return { refused: `truncated (${size} bytes)` };
  // The preamble and header are read with read(2), so a refused file never gets mapped.
  const head = Buffer.alloc(Math.min(size, plan.payloadOffset));
  const fd = openSync(file, 'r');
  try {
    for (let done = 0; done < head.length;) {
      const n = readSync(fd, head, done, head.length - done, done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1', 0, 8) !== MAGIC) return { refused: 'bad magic' };
  if (head.readUInt32LE(8) !== SIDECAR_VERSION) return { refused: `file format version ${head.readUInt32LE(8)}` };
  const L = head.readUInt32LE(12);
  if (PREAMBLE + L > head.length) return { refused: 'header longer than expected' };
  const json = head.subarray(PREAMBLE, PREAMBLE + L);
  if (!blake3(json).equals(head.subarray(16, 48))) return { refused: 'header hash mismatch' };
  let h: SidecarHeader;
  try {
    h = JSON.parse(json.toString('utf8')) as SidecarHeader;
  } catch {
    return { refused: 'header is not JSON' };
  }
  const same = h.layout === plan.layout && h.layoutVersion === plan.layoutVersion && h.model === plan.model &&
    h.payloadOffset === plan.payloadOffset && h.payloadBytes === plan.payloadBytes &&
    JSON.stringify(h.tensors) === JSON.stringify(plan.tensors) && typeof h.payloadBlake3 === 'string';
  if (!same) return { refused: 'header does not match the model' };
  if (size !== plan.payloadOffset + plan.payloadBytes) return { refused: `size ${size}, expected ${plan.payloadOffset + plan.payloadBytes}` };
  const map = mapFile(file);
  if (map.byteLength !== size) return { refused: 'changed while opened' };
  const payload = new Uint8Array(map, plan.payloadOffset, plan.payloadBytes);
  if (blake3(payload).toString('hex') !== h.payloadBlake3) return { refused: 'payload hash mismatch' };
  const matrices = new Map<string, MatrixWeight>();
  for (const t of plan.tensors) {
    matrices.set(t.name, { name: t.name, format: t.format, shape: [t.shape[0], t.shape[1]], bytes: new Uint8Array(map, plan.payloadOffset + t.offset, t.bytes) });
  }
  return { matrices };
}
