/**
 * Device-resident tensors: f32 data that stays in GPU memory between kernels, so a chain such as
 * matmul -> rmsnorm -> softmax moves no activation across PCIe. The only copies are explicit and
 * asynchronous (toDevice, toHost); digest() and leafHash() hash on the device and return 32
 * bytes, device.sample() returns only the token. The bytes
 * equal the CPU ops' bytes (ops.ts): same canonical kernels, same shape checks, same error codes.
 * Needs a CUDA build of the addon and a usable GPU; otherwise toDevice rejects with ERR_NO_CUDA.
 */
import { fail } from './errors.js';
import { native } from './native.js';
import { attentionShape, int32Array, lastDim as lastDimOf, matmulShape, ropePlan, sameShape } from './shapes.js';
import { Tensor, type Shape } from './tensor.js';
import { checkSampling, type SamplingParams } from './sampling.js';

type F32 = Tensor<'f32'>;

/** @internal a native device tensor handle (device_tensor.cc). */
export interface NativeDeviceTensor {
  dims(): number[];
  toHost(): Promise<Float32Array>;
  digest(): Buffer;
  leafHash(): Buffer;
  free(): void;
  disposed(): boolean;
}
/** @internal the addon's device-tensor surface (present only in CUDA builds: device_tensor.cc). */
export interface DeviceAddon {
  toDevice(data: Float32Array, dims: number[]): Promise<NativeDeviceTensor>;
  dtGemm(a: NativeDeviceTensor, b: NativeDeviceTensor, m: number, n: number, k: number, bIsNK: boolean, bias: NativeDeviceTensor | null, outDims: number[]): NativeDeviceTensor;
  dtBinary(op: number, a: NativeDeviceTensor, b: NativeDeviceTensor): NativeDeviceTensor;
  dtRowsBinary(op: number, a: NativeDeviceTensor, rows: number, n: number, row: NativeDeviceTensor): NativeDeviceTensor;
  dtRmsnorm(x: NativeDeviceTensor, w: NativeDeviceTensor, rows: number, n: number, eps: number): NativeDeviceTensor;
  dtSoftmax(x: NativeDeviceTensor, rows: number, n: number): NativeDeviceTensor;
  dtUnary(op: number, x: NativeDeviceTensor): NativeDeviceTensor;
  // devPositions / devDivisors: the same values already on the device (int32 bits for positions),
  // used instead of uploading them; the host arrays are what the binding checks.
  dtRope(x: NativeDeviceTensor, tokens: number, heads: number, headDim: number, rotDims: number, positions: Int32Array, theta: number, neox: boolean, freqDivisors: Float32Array | null,
    devPositions?: NativeDeviceTensor | null, devDivisors?: NativeDeviceTensor | null): NativeDeviceTensor;
  dtAttention(q: NativeDeviceTensor, nQ: number, nHeads: number, k: NativeDeviceTensor, v: NativeDeviceTensor, nKv: number, nKvHeads: number, headDim: number, positions: Int32Array,
    devPositions?: NativeDeviceTensor | null, devOffset?: number): NativeDeviceTensor;
  dtArgmax(x: NativeDeviceTensor, rows: number, n: number): Int32Array;
  dtSample(x: NativeDeviceTensor, n: number, temperature: number, topK: number, topP: number, seed: bigint, step: number, row?: number): number;
  // The building blocks of the device-resident forward pass (lib/model/device-llama.ts).
  dtZeros(dims: number[]): NativeDeviceTensor;
  dtUploadSync(data: Float32Array, dims: number[]): NativeDeviceTensor;
  dtUploadWeight(w: Uint8Array, format: string, n: number, k: number): NativeDeviceTensor;
  dtWriteRows(dst: NativeDeviceTensor, dstRow: number, src: NativeDeviceTensor, srcRow: number, rows: number, width: number): void;
  dtLeafHashRowsInto(x: NativeDeviceTensor, firstRow: number, rows: number, width: number, out: NativeDeviceTensor, slot: number): void;
  dtReadSync(x: NativeDeviceTensor): Buffer;
}

const addon = native as unknown as Partial<DeviceAddon>;

/** @internal the device-tensor bindings, or ERR_NO_CUDA saying why they cannot run here. */
export function gpu(): DeviceAddon {
  if (typeof addon.toDevice !== 'function')
    fail('ERR_NO_CUDA', 'device tensors: this addon was built without CUDA (build it with `npm run build:cuda`)');
  return addon as DeviceAddon;
}

/** Whether this addon has device tensors at all (a CUDA build); a GPU may still be missing. */
export function deviceTensorsBuilt(): boolean {
  return typeof addon.toDevice === 'function';
}

/** An f32 tensor in GPU memory. Free it with dispose() (GC frees it too, but later). */
export class DeviceTensor {
  readonly dtype = 'f32' as const;
  readonly shape: Shape;
  readonly #handle: NativeDeviceTensor;

  /** @internal wraps a native handle; use toDevice() or the ops of `device`. */
  constructor(handle: NativeDeviceTensor) {
    this.#handle = handle;
    this.shape = Object.freeze(handle.dims());
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.#handle.disposed();
  }

  /** @internal the native handle; throws ERR_DISPOSED after dispose(). */
  get handle(): NativeDeviceTensor {
    if (this.#handle.disposed()) fail('ERR_DISPOSED', 'this DeviceTensor was disposed');
    return this.#handle;
  }

  /** Copies the data back once every op queued before has run. */
  async toHost(): Promise<F32> {
    return new Tensor('f32', this.shape, await this.handle.toHost());
  }

  /** The spec tensor digest (as Tensor.digest()), computed on the device: 64 hex digits. */
  digest(): string {
    return this.handle.digest().toString('hex');
  }

  /**
   * The trace leaf hash BLAKE3(0x00 || encoding), as lib/model/trace.ts leafHash /
   * merkleLeaf(Tensor.encode()) give it, computed on the device: 32 bytes come back, the
   * activation stays on the GPU.
   */
  leafHash(): Buffer {
    return this.handle.leafHash();
  }

  /** Frees the GPU memory now; any later use raises ERR_DISPOSED. */
  dispose(): void {
    this.#handle.free();
  }
}

/**
 * Copies an f32 tensor to the GPU, asynchronously. Rejects with ERR_NO_CUDA when the addon has no
 * CUDA or no GPU is usable.
 *
 * @example
 * const x = await toDevice(seeded([4, 64], 1n));
 * const y = device.softmax(device.rmsnorm(x, await toDevice(seeded([64], 2n))));
 * console.log(y.digest() === (await y.toHost()).digest()); // true
 */
export async function toDevice(t: F32): Promise<DeviceTensor> {
  if (!(t instanceof Tensor)) fail('ERR_TYPE', 'toDevice: t must be a Tensor');
  if (t.dtype !== 'f32') fail('ERR_DTYPE', `toDevice: t must be an f32 tensor, got ${t.dtype}`);
  return new DeviceTensor(await gpu().toDevice(t.data as Float32Array, [...t.shape]));
}

function dev(t: unknown, name: string): DeviceTensor {
  if (!(t instanceof DeviceTensor)) fail('ERR_TYPE', `${name} must be a DeviceTensor`);
  return t;
}

function lastDim(t: DeviceTensor, name: string): { rows: number; n: number } {
  return lastDimOf(t.shape, name);
}

const UNARY = { exp: 0, log: 1, tanh: 2, sin: 3, cos: 4, silu: 5, gelu: 6 } as const;
export type DeviceUnaryOp = keyof typeof UNARY;

/** Sampling parameters plus the draw's (seed, step): see lib/model/sampler.ts sample(). */
export interface DeviceSamplingOptions extends SamplingParams {
  /** The request's seed (default 0n). */
  seed?: bigint;
  /** Index of the token being generated (default 0). */
  step?: number;
}

export interface DeviceMatmulOptions {
  /** B is stored [N, K] (a weight matrix): computes A x B^T. */
  transposeB?: boolean;
  /** Added to every row after the product: bias[N]. */
  bias?: DeviceTensor;
}

function binary(op: number, a: DeviceTensor, b: DeviceTensor, name: string): DeviceTensor {
  dev(a, 'a');
  dev(b, 'b');
  if (sameShape(a.shape, b.shape)) return new DeviceTensor(gpu().dtBinary(op, a.handle, b.handle));
  const { rows, n } = lastDim(a, 'a');
  if (b.rank === 1 && b.size === n) return new DeviceTensor(gpu().dtRowsBinary(op, a.handle, rows, n, b.handle));
  fail('ERR_SHAPE', `${name}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] are neither equal nor a row broadcast`);
}

/**
 * The canonical ops on device tensors: each queues its kernel and returns a new DeviceTensor at
 * once (no host copy, no wait); shapes are checked on the host first, as in ops.ts.
 */
export const device = {
  /** A x B (or A x B^T), [..., K] x [K, N] -> [..., N]. */
  matmul(a: DeviceTensor, b: DeviceTensor, opts: DeviceMatmulOptions = {}): DeviceTensor {
    dev(a, 'a');
    dev(b, 'b');
    const nk = opts.transposeB === true;
    if (opts.bias !== undefined) dev(opts.bias, 'bias');
    const { M, N, K, out: shape } = matmulShape(a.shape, b.shape, nk, opts.bias?.shape);
    return new DeviceTensor(gpu().dtGemm(a.handle, b.handle, M, N, K, nk, opts.bias?.handle ?? null, shape));
  },
  /** Elementwise a + b; b may also be one row [n] broadcast over a [..., n]. */
  add: (a: DeviceTensor, b: DeviceTensor): DeviceTensor => binary(0, a, b, 'add'),
  /** Elementwise a * b; b may also be one row [n] broadcast over a [..., n]. */
  mul: (a: DeviceTensor, b: DeviceTensor): DeviceTensor => binary(1, a, b, 'mul'),
  /** RMSNorm over the last dimension. */
  rmsnorm(x: DeviceTensor, weight: DeviceTensor, eps = 1e-5): DeviceTensor {
    const { rows, n } = lastDim(dev(x, 'x'), 'x');
    dev(weight, 'weight');
    if (weight.rank !== 1 || weight.size !== n) fail('ERR_SHAPE', `rmsnorm: weight must have shape [${n}], got [${weight.shape.join(', ')}]`);
    if (!Number.isFinite(eps) || eps < 0) fail('ERR_RANGE', 'rmsnorm: eps must be a finite non-negative number');
    return new DeviceTensor(gpu().dtRmsnorm(x.handle, weight.handle, rows, n, eps));
  },
  /** Softmax over the last dimension. */
  softmax(x: DeviceTensor): DeviceTensor {
    const { rows, n } = lastDim(dev(x, 'x'), 'x');
    return new DeviceTensor(gpu().dtSoftmax(x.handle, rows, n));
  },
  /** A canonical elementwise function (exp, log, tanh, sin, cos, silu, gelu). */
  unary(op: DeviceUnaryOp, x: DeviceTensor): DeviceTensor {
    if (!(op in UNARY)) fail('ERR_RANGE', `unknown elementwise op '${String(op)}'`);
    return new DeviceTensor(gpu().dtUnary(UNARY[op], dev(x, 'x').handle));
  },
  /** Rotary position embedding of x [tokens, heads, headDim]; positions stay on the host and are checked there. */
  rope(x: DeviceTensor, positions: Int32Array | readonly number[], opts: { theta?: number; rotDims?: number; neox?: boolean; freqDivisors?: Float32Array | readonly number[] | null } = {}): DeviceTensor {
    dev(x, 'x');
    const { tokens, heads, headDim, rot, theta, pos, div } = ropePlan(x.shape, positions, opts);
    return new DeviceTensor(gpu().dtRope(x.handle, tokens, heads, headDim, rot, pos, theta, opts.neox === true, div));
  },
  /** Causal grouped-query attention: q [T, H, D], k and v [S, G, D], as ops.attention. */
  attention(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, positions: Int32Array | readonly number[]): DeviceTensor {
    for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) dev(t, name);
    const { nQ, nHeads, headDim, nKv, nKvHeads, pos } = attentionShape(q.shape, k.shape, v.shape, positions);
    return new DeviceTensor(gpu().dtAttention(q.handle, nQ, nHeads, k.handle, v.handle, nKv, nKvHeads, headDim, pos));
  },
  /** Index of the maximum over the last dimension, copied to the host (small: one i32 per row). */
  argmax(x: DeviceTensor): Tensor<'i32'> {
    const { rows, n } = lastDim(dev(x, 'x'), 'x');
    if (n === 0) fail('ERR_SHAPE', 'argmax: rows are empty');
    return new Tensor('i32', x.shape.slice(0, -1), gpu().dtArgmax(x.handle, rows, n));
  },
  /**
   * The canonical next token of one row of logits ([V] or [1, V]) on the device, the same token
   * as sample(await logits.toHost() ..., params, seed, step): only the token is copied back.
   *
   * @example
   * const tok = device.sample(logits, { temperature: 0.8, topK: 40, topP: 0.95, seed: 42n, step: 0 });
   */
  sample(logits: DeviceTensor, opts: DeviceSamplingOptions = {}): number {
    const { rows, n } = lastDim(dev(logits, 'logits'), 'logits');
    if (rows !== 1) fail('ERR_SHAPE', `sample: logits must be one row ([V] or [1, V]), got [${logits.shape.join(', ')}]`);
    const { temperature, topK, topP } = checkSampling(opts);
    const seed = opts.seed ?? 0n, step = opts.step ?? 0;
    if (typeof seed !== 'bigint' || seed < 0n || seed >= 1n << 64n) fail('ERR_ARGUMENT', `seed must be a bigint in [0, 2^64), got ${String(opts.seed)}`);
    if (!Number.isSafeInteger(step) || step < 0) fail('ERR_ARGUMENT', `step must be an integer >= 0, got ${String(opts.step)}`);
    return gpu().dtSample(logits.handle, n, temperature, topK, topP, seed, step);
  },
};
