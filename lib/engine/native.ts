/** Loads the addon (a prebuild when one matches, else the local build) and types its surface. */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { AtomaError } from './errors.js';

type F32 = Float32Array;
type I32 = Int32Array;
type Bytes = ArrayBufferView;

export interface NativeAddon {
  setErrorClass(ctor: typeof AtomaError): void;
  info(): { isa: string; isas: string[]; threads: number; device: string; cudaBuilt: boolean; cudaAvailable: boolean; cudaDevice: string | null };
  setIsa(name: string): void;
  setDevice(name: string): void;
  setThreads(n: number): void;
  /** Work handed to the thread pool so far: parallel calls and their tasks (native/cpu/thread_pool.h). */
  poolStats(): { parallelCalls: number; tasks: number };
  seededFill(out: F32, seed: bigint | number, stream: number, first: bigint | number): void;
  philox(counter: Uint32Array, key: Uint32Array): Uint32Array;
  /** The canonical sampler (native/canon/sample.h); on the GPU when the active device is cuda. */
  sample(logits: Float32Array, temperature: number, topK: number, topP: number, seed: bigint, step: number): number;
  copyBandwidth(mib: number): number;
  gemm(a: F32, b: F32, c: F32, m: number, n: number, k: number, bIsNK: boolean, bias: F32 | null, async: false): void;
  gemm(a: F32, b: F32, c: F32, m: number, n: number, k: number, bIsNK: boolean, bias: F32 | null, async: true): Promise<void>;
  binary(op: number, a: F32, b: F32, y: F32): void;
  rowsBinary(op: number, a: F32, rows: number, n: number, row: F32, y: F32): void;
  rowSums(x: F32, rows: number, n: number, out: F32): void;
  rmsnorm(x: F32, w: F32, y: F32, rows: number, n: number, eps: number): void;
  softmax(x: F32, y: F32, rows: number, n: number): void;
  unary(op: number, x: F32, y: F32): void;
  rope(x: F32, tokens: number, heads: number, headDim: number, rotDims: number, positions: I32, theta: number, neox: boolean, freqDivisors?: F32 | null): void;
  ropeInvFreqs(rotDims: number, theta: number, freqDivisors: F32 | null, out: F32): void;
  attention(q: F32, nQ: number, nHeads: number, k: F32, v: F32, nKv: number, nKvHeads: number, headDim: number, positions: I32, out: F32, async: false): void;
  attention(q: F32, nQ: number, nHeads: number, k: F32, v: F32, nKv: number, nKvHeads: number, headDim: number, positions: I32, out: F32, async: true): Promise<void>;
  embedding(table: F32, vocab: number, dim: number, ids: I32, out: F32): void;
  argmax(x: F32, rows: number, n: number, out: I32): void;
  tensorDigest(dtype: number, dims: number[], data: Bytes): Buffer;
  blake3(data: Bytes, mode: number, keyOrContext: Bytes | string | null, outLength: number): Buffer;
  hashFile(path: string, async: false): Buffer;
  hashFile(path: string, async: true): Promise<Buffer>;
  merkleLeaf(data: Bytes): Buffer;
  merkleRoot(leafHashes: Bytes): Buffer;
  mapFile(path: string): ArrayBuffer;
  Hasher: new (mode?: number, keyOrContext?: Bytes | string) => NativeHasher;
}

export interface NativeHasher {
  update(data: Bytes): NativeHasher;
  digest(outLength?: number): Buffer;
}

/** The package root: dist/engine/native.js and lib/engine/native.ts both sit two levels below. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
    const addon = nodeGypBuild(packageRoot);
    addon.setErrorClass(AtomaError);
    return addon;
  } catch (e) {
    if (e instanceof AtomaError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new AtomaError(`cannot load the atoma native addon (run \`npm install\` or \`npm run build:native\`): ${why}`, 'ERR_NATIVE_LOAD');
  }
}

export const native: NativeAddon = load();
