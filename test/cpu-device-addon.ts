/**
 * The device-tensor bindings (lib/engine/device-tensor.ts DeviceAddon) answered by the CPU
 * engine, for machines without a GPU: the device-resident generation path (device-llama.ts and
 * generate.ts's device runner: slots, row copies, cache writes, chunked-prompt buffers, frees)
 * then runs in CI and must give the host path's bytes. The kernels' own CUDA equality is
 * scripts/gpu-check.sh's job; this checks the orchestration around them. Each binding checks
 * what the CUDA binding checks (sizes, row ranges, use after free) and that the device copies of
 * positions it is handed equal the host ones.
 */
import { merkleLeaf } from '../lib/engine/hash.js';
import { native } from '../lib/engine/native.js';
import { Tensor } from '../lib/engine/tensor.js';
import { widenRows } from '../lib/model/linear.js';
import { sample } from '../lib/model/sampler.js';
import type { DeviceAddon, NativeDeviceTensor } from '../lib/engine/device-tensor.js';
import type { WeightFormat } from '../lib/model/types.js';

class CpuDeviceTensor implements NativeDeviceTensor {
  #data: Float32Array | null;
  constructor(data: Float32Array, readonly shape: number[], readonly owner: CpuDeviceAddon) {
    this.#data = data;
    owner.live.add(this);
  }
  get data(): Float32Array {
    if (!this.#data) throw new Error('use of a freed device tensor');
    return this.#data;
  }
  dims(): number[] {
    return [...this.shape];
  }
  async toHost(): Promise<Float32Array> {
    return this.data.slice();
  }
  digest(): Buffer {
    return Buffer.from(new Tensor('f32', this.shape, this.data).digest(), 'hex');
  }
  leafHash(): Buffer {
    return merkleLeaf(new Tensor('f32', this.shape, this.data).encode());
  }
  free(): void {
    if (!this.#data) throw new Error('a device tensor freed twice');
    this.#data = null;
    this.owner.live.delete(this);
  }
  disposed(): boolean {
    return this.#data === null;
  }
}

type H = NativeDeviceTensor;
const d = (t: H): Float32Array => (t as CpuDeviceTensor).data;
const rowsOf = (t: H, first: number, rows: number, width: number): Float32Array => {
  const x = d(t);
  if (first < 0 || rows < 0 || (first + rows) * width > x.length) throw new Error(`rows ${first}..${first + rows} x ${width} outside ${x.length}`);
  return x.subarray(first * width, (first + rows) * width);
};
const samePositions = (dev: H | null | undefined, offset: number, host: Int32Array): void => {
  if (!dev) return;
  const got = new Int32Array(d(dev).buffer, d(dev).byteOffset, d(dev).length).subarray(offset, offset + host.length);
  if (!got.every((p, i) => p === host[i])) throw new Error('device positions differ from the host positions');
};

export class CpuDeviceAddon implements DeviceAddon {
  /** Tensors not freed yet. */
  readonly live = new Set<CpuDeviceTensor>();

  #make(data: Float32Array, dims: number[]): H {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`shape [${dims}] does not hold ${data.length} values`);
    return new CpuDeviceTensor(data, dims, this);
  }
  async toDevice(data: Float32Array, dims: number[]): Promise<H> {
    return this.#make(data.slice(), dims);
  }
  dtZeros(dims: number[]): H {
    return this.#make(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  dtUploadSync(data: Float32Array, dims: number[]): H {
    return this.#make(data.slice(), dims);
  }
  dtUploadWeight(w: Uint8Array, format: string, n: number, k: number): H {
    return this.#make(widenRows({ name: 'w', format: format as WeightFormat, shape: [n, k], bytes: w }, 0, n), [n, k]);
  }
  dtWriteRows(dst: H, dstRow: number, src: H, srcRow: number, rows: number, width: number): void {
    rowsOf(dst, dstRow, rows, width).set(rowsOf(src, srcRow, rows, width));
  }
  dtLeafHashRowsInto(x: H, firstRow: number, rows: number, width: number, out: H, slot: number): void {
    const leaf = merkleLeaf(new Tensor('f32', [rows, width], rowsOf(x, firstRow, rows, width).slice()).encode());
    new Uint8Array(rowsOf(out, slot, 1, 8).buffer, rowsOf(out, slot, 1, 8).byteOffset, 32).set(leaf);
  }
  dtReadSync(x: H): Buffer {
    return Buffer.from(d(x).slice().buffer);
  }
  dtGemm(a: H, b: H, m: number, n: number, k: number, bIsNK: boolean, bias: H | null, outDims: number[]): H {
    const c = new Float32Array(m * n);
    native.gemm(rowsOf(a, 0, m, k), d(b), c, m, n, k, bIsNK, bias ? d(bias) : null, false);
    return this.#make(c, outDims);
  }
  dtBinary(op: number, a: H, b: H): H {
    const y = new Float32Array(d(a).length);
    native.binary(op, d(a), d(b), y);
    return this.#make(y, (a as CpuDeviceTensor).dims());
  }
  dtRowsBinary(): H {
    throw new Error('dtRowsBinary is not used by the forward pass');
  }
  dtRmsnorm(x: H, w: H, rows: number, n: number, eps: number): H {
    const y = new Float32Array(rows * n);
    native.rmsnorm(d(x), d(w), y, rows, n, eps);
    return this.#make(y, (x as CpuDeviceTensor).dims());
  }
  dtSoftmax(): H {
    throw new Error('dtSoftmax is not used by the forward pass');
  }
  dtUnary(op: number, x: H): H {
    const y = new Float32Array(d(x).length);
    native.unary(op, d(x), y);
    return this.#make(y, (x as CpuDeviceTensor).dims());
  }
  dtRope(x: H, tokens: number, heads: number, headDim: number, rotDims: number, positions: Int32Array, theta: number, neox: boolean,
    freqDivisors: Float32Array | null, devPositions?: H | null, devDivisors?: H | null): H {
    samePositions(devPositions, 0, positions);
    if (devDivisors && (!freqDivisors || !d(devDivisors).every((v, i) => Object.is(v, freqDivisors[i])))) throw new Error('device divisors differ');
    const y = d(x).slice();
    native.rope(y, tokens, heads, headDim, rotDims, positions, theta, neox, freqDivisors);
    return this.#make(y, (x as CpuDeviceTensor).dims());
  }
  dtAttention(q: H, nQ: number, nHeads: number, k: H, v: H, nKv: number, nKvHeads: number, headDim: number, positions: Int32Array,
    devPositions?: H | null, devOffset = 0): H {
    samePositions(devPositions, devOffset, positions);
    const out = new Float32Array(nQ * nHeads * headDim);
    const kv = nKvHeads * headDim;
    native.attention(d(q), nQ, nHeads, rowsOf(k, 0, nKv, kv), rowsOf(v, 0, nKv, kv), nKv, nKvHeads, headDim, positions, out, false);
    return this.#make(out, (q as CpuDeviceTensor).dims());
  }
  dtArgmax(): Int32Array {
    throw new Error('dtArgmax is not used by the forward pass');
  }
  dtSample(x: H, n: number, temperature: number, topK: number, topP: number, seed: bigint, step: number, row = 0): number {
    return sample(rowsOf(x, row, 1, n), { temperature, topK, topP }, seed, step);
  }
}

/** The one instance the mocked device-tensor module hands out (device-generation.test.ts). */
export const cpuDevice = new CpuDeviceAddon();
