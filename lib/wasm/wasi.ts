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
import { philox4x32 } from './philox.js';

/** Philox stream id of random_get ("WASI" as a little-endian u32). */
export const RANDOM_STREAM = 0x49534157;

/**
 * Fuel of host work (docs/wasm.md, "Fuel"): every import call costs HOST_CALL_FUEL before it does
 * anything, fd_read and fd_write IOVEC_FUEL per iovec more, plus their bytes / 64 (per iovec),
 * random_get len / 4. The floor and the per-iovec charge are what bound a guest that makes many
 * calls moving nothing: without them a zero-length write cost no fuel at all.
 */
export const HOST_CALL_FUEL = 64;
export const IOVEC_FUEL = 8;

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
  /** Charges host work to the guest's fuel; throws when it runs out. */
  charge: (fuel: number) => void;
}

/**
 * An output stream in one growing buffer: a chunk object per write would let a guest fill the
 * worker's JS heap with millions of tiny writes long before the byte limit.
 */
class Sink {
  private buf = new Uint8Array(0);
  length = 0;
  constructor(private readonly limit: number) {}
  write(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    if (this.length + n > this.limit) throw new OutputLimit(this.limit);
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.min(this.limit, Math.max(this.length + n, 2 * this.buf.length, 4096)));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(src.subarray(start, end), this.length);
    this.length += n;
  }
  /** A fresh, unpooled copy (its buffer is transferred to the parent). */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class Wasi {
  memory: WebAssembly.Memory | undefined;
  readonly stdout: Sink;
  readonly stderr: Sink;
  private stdinPos = 0;
  /** The next block of the random stream, and how many bytes of the current one are used. */
  private randomBlock = 0;
  private readonly words = new Uint32Array(4);
  /** The words as little-endian bytes. */
  private readonly block = new Uint8Array(16);
  private blockUsed = 16;
  private readonly k0: number;
  private readonly k1: number;

  constructor(private readonly opts: WasiOptions) {
    this.stdout = new Sink(opts.maxOutputBytes);
    this.stderr = new Sink(opts.maxOutputBytes);
    this.k0 = Number(opts.seed & 0xffffffffn);
    this.k1 = Number((opts.seed >> 32n) & 0xffffffffn);
  }

  private view(): DataView {
    if (!this.memory) throw new WebAssembly.RuntimeError('the module exports no memory named "memory"');
    return new DataView(this.memory.buffer);
  }

  private inBounds(ptr: number, len: number): boolean {
    return ptr + len <= this.view().byteLength;
  }

  /**
   * Writes the next n bytes of the request's random stream into `dst` at `at`. The block index
   * is a double: a guest would need 2^57 bytes of fuel-charged random_get to make it inexact.
   */
  randomInto(dst: Uint8Array, at: number, n: number): void {
    for (let filled = 0; filled < n;) {
      if (this.blockUsed === 16) {
        const j = this.randomBlock++;
        philox4x32(j % 2 ** 32, Math.floor(j / 2 ** 32), RANDOM_STREAM, 0, this.k0, this.k1, this.words);
        for (let b = 0; b < 16; b++) this.block[b] = this.words[b >> 2] >>> (8 * (b & 3));
        this.blockUsed = 0;
      }
      const take = Math.min(n - filled, 16 - this.blockUsed);
      dst.set(this.block.subarray(this.blockUsed, this.blockUsed + take), at + filled);
      this.blockUsed += take;
      filled += take;
    }
  }

  /**
   * The import object for `wasi_snapshot_preview1`. Pointers and lengths arrive as signed i32s
   * and are read as u32s (a memory may be 4 GiB). Each call is charged before it does any work,
   * so a guest pays for host work before the host does it.
   */
  imports(): Record<string, (...args: never[]) => number | void> {
    const charge = this.opts.charge;
    /**
     * Checks the iovec array and every buffer it names (nothing is moved when one is out of
     * bounds), charging IOVEC_FUEL per iovec once the array itself is known to be in memory.
     */
    const iovecsOk = (dv: DataView, iovs: number, n: number): boolean => {
      if (!this.inBounds(iovs, n * 8)) return false;
      charge(IOVEC_FUEL * n);
      for (let i = 0; i < n; i++) if (!this.inBounds(dv.getUint32(iovs + i * 8, true), dv.getUint32(iovs + i * 8 + 4, true))) return false;
      return true;
    };
    const putU32 = (ptr: number, v: number): boolean => {
      if (!this.inBounds(ptr >>> 0, 4)) return false;
      this.view().setUint32(ptr >>> 0, v, true);
      return true;
    };
    return {
      fd_write: (fd: number, iovs: number, n: number, nwritten: number): number => {
        charge(HOST_CALL_FUEL);
        if (fd !== 1 && fd !== 2) return ERRNO_BADF;
        const dv = this.view();
        if (!iovecsOk(dv, iovs >>> 0, n >>> 0)) return ERRNO_FAULT;
        const sink = fd === 1 ? this.stdout : this.stderr;
        const mem = new Uint8Array(dv.buffer);
        let total = 0;
        for (let i = 0, at = iovs >>> 0; i < n >>> 0; i++, at += 8) {
          const ptr = dv.getUint32(at, true), len = dv.getUint32(at + 4, true);
          charge(len >>> 6);
          sink.write(mem, ptr, ptr + len);
          total += len;
        }
        return putU32(nwritten, total) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      fd_read: (fd: number, iovs: number, n: number, nread: number): number => {
        charge(HOST_CALL_FUEL);
        if (fd !== 0) return ERRNO_BADF;
        const dv = this.view();
        if (!iovecsOk(dv, iovs >>> 0, n >>> 0)) return ERRNO_FAULT;
        const mem = new Uint8Array(dv.buffer);
        const stdin = this.opts.stdin;
        // The list is read once, as checked: a read may land on the list itself, and entries it
        // overwrote would otherwise reach mem.set unchecked (an out-of-bounds RangeError).
        const list = new DataView(mem.slice(iovs >>> 0, (iovs >>> 0) + (n >>> 0) * 8).buffer);
        let total = 0;
        for (let i = 0, at = 0; i < n >>> 0; i++, at += 8) {
          const ptr = list.getUint32(at, true), len = list.getUint32(at + 4, true);
          const take = Math.min(len, stdin.length - this.stdinPos);
          charge(take >>> 6);
          mem.set(stdin.subarray(this.stdinPos, this.stdinPos + take), ptr);
          this.stdinPos += take;
          total += take;
          if (take < len) break;
        }
        return putU32(nread, total) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      proc_exit: (code: number): void => {
        charge(HOST_CALL_FUEL);
        throw new ProcExit(code >>> 0);
      },
      args_sizes_get: (argc: number, size: number): number => {
        charge(HOST_CALL_FUEL);
        return putU32(argc, 0) && putU32(size, 0) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      args_get: (): number => {
        charge(HOST_CALL_FUEL);
        return ERRNO_SUCCESS;
      },
      environ_sizes_get: (count: number, size: number): number => {
        charge(HOST_CALL_FUEL);
        return putU32(count, 0) && putU32(size, 0) ? ERRNO_SUCCESS : ERRNO_FAULT;
      },
      environ_get: (): number => {
        charge(HOST_CALL_FUEL);
        return ERRNO_SUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, out: number): number => {
        charge(HOST_CALL_FUEL);
        if (id < 0 || id > 3) return ERRNO_INVAL;
        if (!this.inBounds(out >>> 0, 8)) return ERRNO_FAULT;
        this.view().setBigUint64(out >>> 0, this.opts.timestampNs, true);
        return ERRNO_SUCCESS;
      },
      random_get: (buf: number, len: number): number => {
        charge(HOST_CALL_FUEL);
        if (!this.inBounds(buf >>> 0, len >>> 0)) return ERRNO_FAULT;
        charge((len >>> 0) >>> 2);
        this.randomInto(new Uint8Array(this.memory!.buffer), buf >>> 0, len >>> 0);
        return ERRNO_SUCCESS;
      },
    };
  }
}
