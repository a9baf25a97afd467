/**
 * The WASI preview 1 subset a guest sees: stdin, stdout, stderr, empty args and environment, a
 * clock frozen at the request's timestamp and randomness drawn from Philox keyed by the request
 * seed. Nothing here reaches a disk or the network, and every answer is a function of the
 * request, so every node's guest sees the same world.
 *
 * random_get bytes: the byte stream of the run is block 0, block 1, ... where block j is the 16
 * bytes (four u32 words, little-endian) of Philox4x32-10 with counter (lo32(j), hi32(j),
 * RANDOM_STREAM, 0) and key (lo32(seed), hi32(seed)), the engine's generator (DETERMINISM.md
 * section 1). Successive random_get calls consume the stream in order.
 */
import { createRequire } from 'node:module';

/** Philox stream id of random_get ("WASI" as a little-endian u32). */
export const RANDOM_STREAM = 0x49534157;

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_FAULT = 21;
const ERRNO_INVAL = 28;

/** Thrown through the guest by proc_exit, caught by the worker. */
export class ProcExit {
  constructor(readonly code: number) {}
}

/** Thrown through the guest when it writes more than the output limit. */
export class OutputLimit {
  constructor(readonly limit: number) {}
}

export interface WasiOptions {
  stdin: Uint8Array;
  seed: bigint;
  /** Nanoseconds since the Unix epoch, returned by every clock. */
  timestampNs: bigint;
  /** Bytes of stdout and of stderr, each, before the run fails with an output-limit error. */
  maxOutputBytes: number;
  /** Loads Philox (the engine addon); injected so the worker can load the addon lazily. */
  philox: (counter: Uint32Array, key: Uint32Array) => Uint32Array;
  /** Charges host work (bytes moved / 64) to the guest's fuel; throws when it runs out. */
  charge: (fuel: number) => void;
}

class Sink {
  chunks: Uint8Array[] = [];
  length = 0;
  constructor(private readonly limit: number) {}
  write(b: Uint8Array): void {
    if (this.length + b.length > this.limit) throw new OutputLimit(this.limit);
    this.chunks.push(b.slice());
    this.length += b.length;
  }
  /** A fresh, unpooled copy (its buffer is transferred to the parent). */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export class Wasi {
  memory: WebAssembly.Memory | undefined;
  readonly stdout: Sink;
  readonly stderr: Sink;
  private stdinPos = 0;
  private randomBlock = 0n;
  private randomLeft = new Uint8Array(0);
  private readonly key: Uint32Array;

  constructor(private readonly opts: WasiOptions) {
    this.stdout = new Sink(opts.maxOutputBytes);
    this.stderr = new Sink(opts.maxOutputBytes);
    this.key = new Uint32Array([Number(opts.seed & 0xffffffffn), Number((opts.seed >> 32n) & 0xffffffffn)]);
  }

  private view(): DataView {
    if (!this.memory) throw new WebAssembly.RuntimeError('the module exports no memory named "memory"');
    return new DataView(this.memory.buffer);
  }

  private inBounds(ptr: number, len: number): boolean {
    return ptr >= 0 && len >= 0 && ptr + len <= this.view().byteLength;
  }

  /** The next n bytes of the request's random stream. */
  randomBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.randomLeft.length === 0) {
        const j = this.randomBlock++;
        const counter = new Uint32Array([Number(j & 0xffffffffn), Number(j >> 32n), RANDOM_STREAM, 0]);
        const words = this.opts.philox(counter, this.key);
        const block = new Uint8Array(16);
        const dv = new DataView(block.buffer);
        for (let w = 0; w < 4; w++) dv.setUint32(w * 4, words[w], true);
        this.randomLeft = block;
      }
      const take = Math.min(n - filled, this.randomLeft.length);
      out.set(this.randomLeft.subarray(0, take), filled);
      this.randomLeft = this.randomLeft.subarray(take);
      filled += take;
    }
    return out;
  }

  /** The import object for `wasi_snapshot_preview1`. */
  imports(): Record<string, (...args: never[]) => number | void> {
    const iovecs = (iovs: number, n: number): [number, number][] | null => {
      const dv = this.view();
      if (!this.inBounds(iovs, n * 8)) return null;
      const out: [number, number][] = [];
      for (let i = 0; i < n; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        if (!this.inBounds(ptr, len)) return null;
        out.push([ptr, len]);
      }
      return out;
    };
    const putU32 = (ptr: number, v: number): boolean => {
      if (!this.inBounds(ptr, 4)) return false;
      this.view().setUint32(ptr, v, true);
      return true;
    };
    return {
      fd_write: (fd: number, iovs: number, n: number, nwritten: number): number => {
        if (fd !== 1 && fd !== 2) return ERRNO_BADF;
        const vecs = iovecs(iovs, n);
        if (!vecs) return ERRNO_FAULT;
        const sink = fd === 1 ? this.stdout : this.stderr;
        const mem = new Uint8Array(this.memory!.buffer);
        let total = 0;
        for (const [ptr, len] of vecs) {
          this.opts.charge(len >>> 6);
          sink.write(mem.subarray(ptr, ptr + len));
          total += len;
        }
        return putU32(nwritten, total) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      fd_read: (fd: number, iovs: number, n: number, nread: number): number => {
        if (fd !== 0) return ERRNO_BADF;
        const vecs = iovecs(iovs, n);
        if (!vecs) return ERRNO_FAULT;
        const mem = new Uint8Array(this.memory!.buffer);
        let total = 0;
        for (const [ptr, len] of vecs) {
          const take = Math.min(len, this.opts.stdin.length - this.stdinPos);
          this.opts.charge(take >>> 6);
          mem.set(this.opts.stdin.subarray(this.stdinPos, this.stdinPos + take), ptr);
          this.stdinPos += take;
          total += take;
          if (take < len) break;
        }
        return putU32(nread, total) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      proc_exit: (code: number): void => {
        throw new ProcExit(code >>> 0);
      },
      args_sizes_get: (argc: number, size: number): number => (putU32(argc, 0) && putU32(size, 0) ? ERRNO_SUCCESS : ERRNO_FAULT),
      args_get: (): number => ERRNO_SUCCESS,
      environ_sizes_get: (count: number, size: number): number => (putU32(count, 0) && putU32(size, 0) ? ERRNO_SUCCESS : ERRNO_FAULT),
      environ_get: (): number => ERRNO_SUCCESS,
      clock_time_get: (id: number, _precision: bigint, out: number): number => {
        if (id < 0 || id > 3) return ERRNO_INVAL;
        if (!this.inBounds(out, 8)) return ERRNO_FAULT;
        this.view().setBigUint64(out, this.opts.timestampNs, true);
        return ERRNO_SUCCESS;
      },
      random_get: (buf: number, len: number): number => {
        if (!this.inBounds(buf, len)) return ERRNO_FAULT;
        this.opts.charge(len >>> 2);
        new Uint8Array(this.memory!.buffer).set(this.randomBytes(len), buf);
        return ERRNO_SUCCESS;
      },
    };
  }
}

/** Philox from the engine addon, loaded synchronously on first use (workers rarely need it). */
export function lazyPhilox(packageRoot: string): (counter: Uint32Array, key: Uint32Array) => Uint32Array {
  let fn: ((c: Uint32Array, k: Uint32Array) => Uint32Array) | undefined;
  return (c, k) => {
    if (!fn) {
      const require = createRequire(import.meta.url);
      const addon = (require('node-gyp-build') as (dir: string) => { philox: typeof fn })(packageRoot);
      fn = addon.philox!;
    }
    return fn(c, k);
  };
}
