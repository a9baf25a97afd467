/**
 * Fuel metering, NaN canonicalisation, a memory cap and a call-depth limit, written into the
 * module itself so that every node counts the same fuel and sees the same bits whatever its CPU
 * or V8 tier. One linear pass over the binary (docs/wasm.md has the cost model):
 *
 * - fuel: a mutable i64 global, exported as `__atoma_fuel`, that each function keeps in an i64
 *   local while it runs (see rewriteCode). Each straight-line run of code (a "segment", split
 *   after every branch, branch target and `unreachable`) is charged its instruction count at its
 *   start; bulk memory ops are charged len/64 more and memory.grow 1024 per page. When fuel goes
 *   below zero the guest stores it to the global and executes `unreachable`.
 * - NaN: any float whose bits become observable (stored to memory, reinterpreted as an integer,
 *   or used as copysign's sign source) is replaced by the canonical quiet NaN when it is a NaN.
 *   No other wasm instruction can tell NaN payloads apart, so results are bit-identical.
 * - memory: the maximum of the (single) memory is clamped to the cap; a failed memory.grow sets
 *   bit 0 of the `__atoma_flags` global so a later trap is reported as out of memory.
 * - calls: a depth counter traps at MAX_CALL_DEPTH (flag bit 1), before V8's own stack limit,
 *   whose depth depends on frame sizes and would differ between tiers.
 * - tables: all tables together hold at most MAX_TABLE_ENTRIES entries (a table lives on the
 *   worker's JS heap, and an allocation past the heap limit aborts the whole process, not just
 *   the worker). Declared minima above it are refused at load; each maximum is clamped to it;
 *   table.grow is charged 1 per entry asked and fails (-1, flag bit 2) where the total would
 *   pass the cap, counted in a global.
 */
import { fail } from '../engine/errors.js';
import { Reader, Writer } from './binary.js';
import { checkImport, checkValtype, isValtype, MAX_TABLE_ENTRIES, refuseOpcode } from './policy.js';

export const FUEL_EXPORT = '__atoma_fuel';
export const FLAGS_EXPORT = '__atoma_flags';
export const START_EXPORT = '__atoma_start';
export const FLAG_GROW_FAILED = 1;
export const FLAG_CALL_DEPTH = 2;
export const FLAG_TABLE_GROW_FAILED = 4;
export const MAX_CALL_DEPTH = 4096;
/** Pages of 64 KiB. */
export const PAGE = 65536;

export interface InstrumentOptions {
  /** Memory cap in MiB (the guest's memory can never grow past it). */
  memoryMb: number;
}

export interface InstrumentedModule {
  bytes: Uint8Array;
  /** Whether the module defined a start function (now exported as START_EXPORT, called after fuel is set). */
  hasStart: boolean;
  /** Initial memory in bytes, after the cap was checked. */
  initialMemory: number;
}

interface FuncType {
  params: number[];
  results: number[];
}

const OP = {
  unreachable: 0x00, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, brTable: 0x0e,
  return: 0x0f, localGet: 0x20, localSet: 0x21, localTee: 0x22, globalGet: 0x23, globalSet: 0x24,
  i32Const: 0x41, i64Const: 0x42, f32Const: 0x43, f64Const: 0x44,
} as const;

/** Section order of the binary format (custom sections aside), to know where new ones go. */
const ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

function readValtypes(r: Reader, where: string): number[] {
  const n = r.u32();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.byte();
    checkValtype(t, where);
    out.push(t);
  }
  return out;
}

/**
 * Rewrites a validated module. Throws AtomaError ERR_WASM_INVALID (refused feature),
 * ERR_WASM_FORBIDDEN_IMPORT or ERR_WASM_OUT_OF_MEMORY (initial memory over the cap).
 */
export function instrument(bytes: Uint8Array, opts: InstrumentOptions): InstrumentedModule {
  const capPages = Math.floor((opts.memoryMb * 1024 * 1024) / PAGE);
  const sections: { id: number; start: number; end: number }[] = [];
  const r = new Reader(bytes, 8);
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, start: r.pos, end: r.pos + size });
    r.skip(size);
  }
  const body = (id: number) => sections.find((s) => s.id === id);
  if (body(13)) refuseOpcode(0x08);

  // Types.
  const types: FuncType[] = [];
  const typeSec = body(1);
  if (typeSec) {
    const t = new Reader(bytes, typeSec.start, typeSec.end);
    const n = t.u32();
    for (let i = 0; i < n; i++) {
      const form = t.byte();
      if (form !== 0x60) fail('ERR_WASM_INVALID', `unsupported type form 0x${form.toString(16)} (GC types are refused)`);
      types.push({ params: readValtypes(t, `type ${i}`), results: readValtypes(t, `type ${i}`) });
    }
  }
  // Imports: only the WASI subset, checked with the signatures.
  let importedFuncs = 0;
  const importSec = body(2);
  if (importSec) {
    const t = new Reader(bytes, importSec.start, importSec.end);
    const n = t.u32();
    for (let i = 0; i < n; i++) {
      const mod = t.name();
      const field = t.name();
      const kind = t.byte();
      const typeIdx = kind === 0 ? t.u32() : -1;
      checkImport(mod, field, kind, types[typeIdx]);
      importedFuncs++;
    }
  }
  const funcTypes: number[] = [];
  const funcSec = body(3);
  if (funcSec) {
    const t = new Reader(bytes, funcSec.start, funcSec.end);
    const n = t.u32();
    for (let i = 0; i < n; i++) funcTypes.push(t.u32());
  }
  let nGlobals = 0;
  const globalSec = body(6);
  if (globalSec) nGlobals = new Reader(bytes, globalSec.start, globalSec.end).u32();
  const G_FUEL = nGlobals;
  const G_FLAGS = nGlobals + 1;
  const G_DEPTH = nGlobals + 2;
  const G_TABLES = nGlobals + 3;

  // Tables: checked against the cap before anything is instantiated.
  let tableEntries = 0;
  const tableSec = body(4);
  if (tableSec) {
    const t = new Reader(bytes, tableSec.start, tableSec.end);
    const n = t.u32();
    for (let i = 0; i < n; i++) {
      if (t.byte() === 0x40) fail('ERR_WASM_INVALID', 'unsupported feature: tables with an initialiser expression are refused');
      const flags = t.byte();
      if (flags & ~0x01) fail('ERR_WASM_INVALID', 'unsupported feature: shared or 64-bit tables are refused');
      tableEntries += t.u32();
      if (flags & 1) t.u32();
    }
    if (tableEntries > MAX_TABLE_ENTRIES) {
      fail('ERR_WASM_OUT_OF_MEMORY', `out of memory: the module declares tables of ${tableEntries} entries in all, over the cap of ${MAX_TABLE_ENTRIES}`);
    }
  }
  const elemSec = body(9);
  if (elemSec) {
    const entries = elementEntries(bytes, elemSec.start, elemSec.end);
    if (entries > MAX_TABLE_ENTRIES) {
      fail('ERR_WASM_OUT_OF_MEMORY', `out of memory: the module's element segments hold ${entries} entries in all, over the cap of ${MAX_TABLE_ENTRIES}`);
    }
  }

  // Block types for the per-function wrapper: [] -> results; several results need a new type.
  const extraTypes: FuncType[] = [];
  const wrapperType = new Map<string, number>();
  for (const ti of funcTypes) {
    const res = types[ti].results;
    if (res.length > 1 && !wrapperType.has(res.join(','))) {
      wrapperType.set(res.join(','), types.length + extraTypes.length);
      extraTypes.push({ params: [], results: res });
    }
  }

  let hasStart = false;
  let startFunc = 0;
  let initialPages = 0;
  const out = new Writer(2 * bytes.length + 1024);
  out.bytes(bytes, 0, 8);
  let emittedGlobals = false;
  let emittedExports = false;
  const startSec = body(8);
  if (startSec) {
    hasStart = true;
    startFunc = new Reader(bytes, startSec.start, startSec.end).u32();
  }

  const newGlobals = (w: Writer) => {
    w.byte(0x7e).byte(1).byte(OP.i64Const).byte(0).byte(OP.end); // fuel
    w.byte(0x7f).byte(1).byte(OP.i32Const).byte(0).byte(OP.end); // flags
    w.byte(0x7f).byte(1).byte(OP.i32Const).byte(0).byte(OP.end); // depth
    w.byte(0x7f).byte(1).byte(OP.i32Const).sPositive(tableEntries).byte(OP.end); // table entries
  };
  const emitGlobals = () => {
    const w = new Writer(64);
    w.u32(4);
    newGlobals(w);
    out.section(6, w);
    emittedGlobals = true;
  };
  const newExports = (w: Writer) => {
    w.name(FUEL_EXPORT).byte(3).u32(G_FUEL);
    w.name(FLAGS_EXPORT).byte(3).u32(G_FLAGS);
    if (hasStart) w.name(START_EXPORT).byte(0).u32(startFunc);
  };
  const emitExports = () => {
    const w = new Writer(64);
    w.u32(hasStart ? 3 : 2);
    newExports(w);
    out.section(7, w);
    emittedExports = true;
  };

  for (const s of sections) {
    const rank = ORDER[s.id] ?? 0;
    if (rank > ORDER[6] && !emittedGlobals && s.id !== 6) emitGlobals();
    if (rank > ORDER[7] && !emittedExports && s.id !== 7) emitExports();
    switch (s.id) {
      case 1: {
        const t = new Reader(bytes, s.start, s.end);
        const n = t.u32();
        const w = new Writer(s.end - s.start + 16);
        w.u32(n + extraTypes.length).bytes(bytes, t.pos, s.end);
        for (const et of extraTypes) {
          w.byte(0x60).u32(0).u32(et.results.length);
          for (const v of et.results) w.byte(v);
        }
        out.section(1, w);
        break;
      }
      case 4: {
        // Each maximum clamped to the cap (already checked above; the element type is copied).
        const t = new Reader(bytes, s.start, s.end);
        const n = t.u32();
        const w = new Writer(s.end - s.start + 16);
        w.u32(n);
        for (let i = 0; i < n; i++) {
          w.byte(t.byte());
          const flags = t.byte();
          const min = t.u32();
          const max = flags & 1 ? Math.min(t.u32(), MAX_TABLE_ENTRIES) : MAX_TABLE_ENTRIES;
          w.byte(1).u32(min).u32(max);
        }
        out.section(4, w);
        break;
      }
      case 5: {
        const t = new Reader(bytes, s.start, s.end);
        const n = t.u32();
        if (n > 1) fail('ERR_WASM_INVALID', 'unsupported feature: multiple memories are refused');
        const w = new Writer(16);
        w.u32(n);
        if (n === 1) {
          const flags = t.byte();
          if (flags & 0x02) fail('ERR_WASM_INVALID', 'unsupported feature: shared memory is refused (a guest runs single-threaded)');
          if (flags & ~0x01) fail('ERR_WASM_INVALID', 'unsupported feature: 64-bit memory is refused');
          const min = t.u32();
          const max = flags & 1 ? t.u32() : capPages;
          if (min > capPages) fail('ERR_WASM_OUT_OF_MEMORY', `out of memory: the module asks for ${min * 64} KiB of initial memory, over the ${opts.memoryMb} MiB cap`);
          initialPages = min;
          w.byte(1).u32(min).u32(Math.min(max, capPages));
        }
        out.section(5, w);
        break;
      }
      case 6: {
        const t = new Reader(bytes, s.start, s.end);
        const n = t.u32();
        const w = new Writer(s.end - s.start + 32);
        w.u32(n + 4).bytes(bytes, t.pos, s.end);
        newGlobals(w);
        out.section(6, w);
        emittedGlobals = true;
        break;
      }
      case 7: {
        const t = new Reader(bytes, s.start, s.end);
        const n = t.u32();
        const start = t.pos;
        for (let i = 0; i < n; i++) {
          const name = t.name();
          if (name.startsWith('__atoma_')) fail('ERR_WASM_INVALID', `export name ${name} is reserved for the host`);
          t.byte();
          t.u32();
        }
        const w = new Writer(s.end - s.start + 64);
        w.u32(n + (hasStart ? 3 : 2)).bytes(bytes, start, s.end);
        newExports(w);
        out.section(7, w);
        emittedExports = true;
        break;
      }
      case 8:
        break; // removed: the host calls the start function after setting the fuel
      case 10: {
        // Written straight into the output, its size patched in after (a 5-byte LEB128).
        out.byte(10);
        const sizeAt = out.length;
        out.u32(0).byte(0).byte(0).byte(0).byte(0);
        rewriteCode(bytes, s.start, s.end, { types, funcTypes, importedFuncs, wrapperType, G_FUEL, G_FLAGS, G_DEPTH, G_TABLES }, out);
        patchU32(out.buf, sizeAt, out.length - sizeAt - 5);
        break;
      }
      default:
        out.byte(s.id).u32(s.end - s.start).bytes(bytes, s.start, s.end);
    }
  }
  if (!emittedGlobals) emitGlobals();
  if (!emittedExports) emitExports();
  return { bytes: out.buf.subarray(0, out.length), hasStart, initialMemory: initialPages * PAGE };
}

/**
 * Entries of all element segments together. V8 turns a segment into a heap array of function
 * references when the guest first uses it (table.init), in one runtime call that neither fuel
 * nor the worker's termination interrupts: 60 segments of 10^6 entries held a worker for tens of
 * seconds. So segments share the tables' cap.
 */
function elementEntries(bytes: Uint8Array, start: number, end: number): number {
  const r = new Reader(bytes, start, end);
  const constExpr = () => {
    for (;;) {
      const op = r.byte();
      if (op === OP.end) return;
      if (op === OP.i32Const) r.skipSleb(32);
      else if (op === OP.i64Const) r.skipSleb(64);
      else if (op === OP.f32Const) r.skip(4);
      else if (op === OP.f64Const) r.skip(8);
      else if (op === OP.globalGet || op === 0xd2) r.u32();
      else if (op === 0xd0) r.byte();
      else fail('ERR_WASM_INVALID', `unsupported instruction 0x${op.toString(16)} in an element segment's constant expression`);
    }
  };
  let total = 0;
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    if (flags > 7) fail('ERR_WASM_INVALID', `invalid module: element segment flags ${flags}`);
    if (flags & 2 && !(flags & 1)) r.u32(); // a table index (active, explicit table)
    if (!(flags & 1)) constExpr(); // the offset of an active segment
    if (flags & 3) r.byte(); // elemkind or reftype
    const count = r.u32();
    total += count;
    if (flags & 4) for (let k = 0; k < count; k++) constExpr();
    else for (let k = 0; k < count; k++) r.u32();
  }
  return total;
}

interface CodeContext {
  types: FuncType[];
  funcTypes: number[];
  importedFuncs: number;
  wrapperType: Map<string, number>;
  G_FUEL: number;
  G_FLAGS: number;
  G_DEPTH: number;
  G_TABLES: number;
}

/** Writes v as a 5-byte (padded) unsigned LEB128 at `at`: sizes patched in after the body is written. */
function patchU32(buf: Uint8Array, at: number, v: number): void {
  for (let i = 0; i < 4; i++) {
    buf[at + i] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at + 4] = v;
}

/**
 * The code section, rewritten. Fuel lives in a local of each function (LF), copied from the
 * global at entry and after every call, and back to it before every call, `return` and the
 * function's end, so the check on the hot path is local arithmetic that V8 keeps in a register:
 * `LF -= cost; br_if $oof (LF < 0)`. The out-of-fuel path, outside the body, stores LF (< 0)
 * to the global and traps. Each function becomes:
 *
 *   depth check; LF = fuel
 *   block $oof
 *     block $body (result ...)   ;; the original body: its branches to the function label land here
 *     end
 *     fuel = LF; depth--; return
 *   end
 *   fuel = LF; unreachable
 *
 * Speed: unchanged bytes are copied from the input in runs (never instruction by instruction),
 * into one output buffer; a segment's charge, known only at the segment's end, is written in
 * front of it then (the segment is shifted only when something was already inserted into it).
 */
function rewriteCode(bytes: Uint8Array, start: number, end: number, ctx: CodeContext, out: Writer): void {
  const r = new Reader(bytes, start, end);
  const n = r.u32();
  if (n !== ctx.funcTypes.length) fail('ERR_WASM_INVALID', 'invalid module: function and code section counts differ');
  out.u32(n);
  const hdr = new Writer(64);
  const F = ctx.G_FUEL, FL = ctx.G_FLAGS, D = ctx.G_DEPTH;
  // What is the same in every function is assembled once and copied (fewer calls per function).
  const w = new Writer(64);
  w.byte(OP.globalGet).u32(D).byte(OP.i32Const).sPositive(MAX_CALL_DEPTH).byte(0x4f)
    .byte(OP.if).byte(0x40).byte(OP.globalGet).u32(FL).byte(OP.i32Const).byte(FLAG_CALL_DEPTH).byte(0x72).byte(OP.globalSet).u32(FL)
    .byte(OP.unreachable).byte(OP.end)
    .byte(OP.globalGet).u32(D).byte(OP.i32Const).byte(1).byte(0x6a).byte(OP.globalSet).u32(D)
    .byte(OP.globalGet).u32(F).byte(OP.localSet);
  const prologue = w.result(); // the call-depth limit, then `local.set` of the fuel (LF follows)
  w.length = 0;
  w.byte(OP.globalGet).u32(D).byte(OP.i32Const).byte(1).byte(0x6b).byte(OP.globalSet).u32(D);
  const decDepthBytes = w.result();
  w.length = 0;
  w.byte(OP.globalSet).u32(F);
  const setFuel = w.result();
  const scratchDecls = new Uint8Array([1, 0x7e, 2, 0x7f, 1, 0x7d, 1, 0x7c]); // i64 fuel, 2 x i32, f32, f64
  // Per-function state, and the helpers that use it: created once per module, not per function
  // (the rewriter mostly runs unoptimised, where closures and calls are what costs).
  let LF = 0, L32 = 0, L32B = 0, LF32 = 0, LF64 = 0; // the scratch locals: i64 fuel, i32, i32, f32, f64
  let pending = 0; // input bytes [pending, r.pos) are still to be copied verbatim
  let segOut = 0; // where the current segment's output starts
  let segCost = 0;
  let depth = 0; // user labels open
  let segDepth = 0; // ... at the current segment's start
  const syncOut = (w: Writer) => w.byte(OP.localGet).u32(LF).bytes(setFuel);
  const syncIn = (w: Writer) => w.byte(OP.globalGet).u32(F).byte(OP.localSet).u32(LF);
  /** `LF <- LF - (top of stack); br_if $oof (LF < 0)`, inside `labels` user labels. */
  const check = (w: Writer, labels: number) => {
    w.byte(0x7d).byte(OP.localTee).u32(LF).byte(OP.i64Const).byte(0).byte(0x53).byte(OP.brIf).u32(labels + 1);
  };
  const decDepth = (w: Writer) => w.bytes(decDepthBytes);

  /** Copies the pending input bytes up to `to`. */
  const copy = (to: number) => {
    if (to > pending) out.bytes(bytes, pending, to);
    pending = to;
  };
  /** Ends the segment at input offset `to`: its charge goes in front of it. */
  const flush = (to: number) => {
    if (segCost > 0 && out.length === segOut) {
      out.byte(OP.localGet).u32(LF).byte(OP.i64Const).sPositive(segCost);
      check(out, segDepth);
    } else if (segCost > 0) {
      // Something was inserted into the segment already: move it after the charge.
      hdr.length = 0;
      hdr.byte(OP.localGet).u32(LF).byte(OP.i64Const).sPositive(segCost);
      check(hdr, segDepth);
      const len = out.length - segOut;
      out.reserve(hdr.length);
      out.buf.copyWithin(segOut + hdr.length, segOut, segOut + len);
      out.buf.set(hdr.buf.subarray(0, hdr.length), segOut);
      out.length += hdr.length;
    }
    copy(to);
    segOut = out.length;
    segCost = 0;
    segDepth = depth;
  };
  /** Charges (n >> 6), (n << 10) or n (shift 0) fuel for the i32 length n on top of the stack, keeping it in L32 too. */
  const dynamicCharge = (at: number, shiftOp: number, shift: number) => {
    copy(at);
    out.byte(OP.localTee).u32(L32).byte(OP.localGet).u32(LF).byte(OP.localGet).u32(L32).byte(0xad);
    if (shift !== 0) out.byte(OP.i64Const).byte(shift).byte(shiftOp);
    check(out, depth);
  };
  for (let f = 0; f < n; f++) {
    const size = r.u32();
    const fEnd = r.pos + size;
    const type = ctx.types[ctx.funcTypes[f]];
    const sizeAt = out.length;
    out.u32(0).byte(0).byte(0).byte(0).byte(0); // 5 bytes, patched below
    const bodyStart = out.length;
    // Locals: the originals (copied as they are), then five scratch locals (i64 fuel, i32, i32, f32, f64).
    const nDecls = r.u32();
    out.u32(nDecls + 4);
    let nLocals = type.params.length;
    const declStart = r.pos;
    for (let i = 0; i < nDecls; i++) {
      nLocals += r.u32();
      checkValtype(r.byte(), `function ${f + ctx.importedFuncs} locals`);
    }
    out.bytes(bytes, declStart, r.pos);
    LF = nLocals; L32 = nLocals + 1; L32B = nLocals + 2; LF32 = nLocals + 3; LF64 = nLocals + 4;
    out.bytes(scratchDecls);

    // Prologue: the deterministic call-depth limit, fuel into its local, the two wrapper blocks.
    out.bytes(prologue).u32(LF);
    out.byte(OP.block).byte(0x40).byte(OP.block);
    const res = type.results;
    if (res.length === 0) out.byte(0x40);
    else if (res.length === 1) out.byte(res[0]);
    else out.u32(ctx.wrapperType.get(res.join(','))!);

    pending = r.pos;
    segOut = out.length;
    segCost = 0;
    depth = 0;
    segDepth = 0;
    let finished = false;
    while (r.pos < fEnd) {
      r.pos = skipPlain(bytes, r.pos, fEnd);
      segCost += plainCount;
      if (r.pos >= fEnd) break;
      const at = r.pos;
      const op = bytes[r.pos++];
      let cost = 1;
      let boundary = false;
      switch (op) {
        case OP.unreachable: boundary = true; break;
        case OP.br: case OP.brIf: boundary = true; r.u32(); break;
        case OP.brTable: {
          boundary = true;
          const k = r.u32();
          for (let i = 0; i <= k; i++) r.u32();
          break;
        }
        case OP.return:
          boundary = true;
          copy(at);
          syncOut(out);
          decDepth(out);
          break;
        case OP.block: case OP.loop: case OP.if: {
          depth++;
          if (op !== OP.if) cost = 0;
          boundary = op !== OP.block;
          const b = bytes[r.pos];
          if (b === 0x40 || isValtype(b)) r.pos++;
          else if (b === 0x7b) checkValtype(b, 'a block type');
          else r.skipSleb(33);
          break;
        }
        case OP.else: cost = 0; boundary = true; break;
        case OP.end:
          cost = 0;
          boundary = true;
          if (depth === 0) {
            // The function's own end: close $body, leave, then the out-of-fuel path.
            flush(at);
            out.byte(OP.end);
            syncOut(out);
            decDepth(out);
            out.byte(OP.return).byte(OP.end);
            syncOut(out);
            out.byte(OP.unreachable).byte(OP.end);
            finished = true;
            if (r.pos !== fEnd) fail('ERR_WASM_INVALID', 'invalid module: code after the end of a function');
          } else depth--;
          break;
        case 0x01: cost = 0; break;
        case 0x10: case 0x11:
          // A call: the callee charges the global, so hand it the fuel and take it back after.
          copy(at);
          syncOut(out);
          r.u32();
          if (op === 0x11) r.u32();
          copy(r.pos);
          syncIn(out);
          break;
        case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2: r.u32(); break;
        case 0x1a: case 0x1b: case 0xd1: break;
        case 0x1c: {
          const k = r.u32();
          for (let i = 0; i < k; i++) checkValtype(r.byte(), 'select');
          break;
        }
        case 0x3f:
          if (r.byte() !== 0) refuseOpcode(0x3f, 1);
          break;
        case 0x40:
          // memory.grow: charge 1024 per page before, remember a failure after (so that the trap
          // that usually follows reads as out of memory).
          dynamicCharge(at, 0x86, 10);
          if (r.byte() !== 0) refuseOpcode(0x3f, 1);
          copy(r.pos);
          out.byte(OP.localTee).u32(L32).byte(OP.localGet).u32(L32).byte(OP.i32Const).byte(0x7f).byte(0x46)
            .byte(OP.if).byte(0x40).byte(OP.globalGet).u32(FL).byte(OP.i32Const).byte(FLAG_GROW_FAILED).byte(0x72)
            .byte(OP.globalSet).u32(FL).byte(OP.end);
          break;
        case OP.i32Const: r.skipSleb(32); break;
        case OP.i64Const: r.skipSleb(64); break;
        case OP.f32Const: r.skip(4); break;
        case OP.f64Const: r.skip(8); break;
        case 0xd0: r.byte(); break;
        case 0xfc: {
          const sub = r.u32();
          if (sub <= 7) break; // saturating truncations
          if (sub === 9 || sub === 13 || sub === 16) { r.u32(); break; }
          if (sub === 15) {
            // table.grow: 1 fuel per entry asked; a request that would take all tables past the
            // cap becomes a request for 2^32-1 entries, which V8 refuses (-1) without allocating.
            dynamicCharge(at, 0, 0);
            out.byte(OP.i32Const).byte(0x7f)
              .byte(OP.globalGet).u32(ctx.G_TABLES).byte(0xad).byte(OP.localGet).u32(L32).byte(0xad).byte(0x7c)
              .byte(OP.i64Const).sPositive(MAX_TABLE_ENTRIES).byte(0x58).byte(0x1b);
            r.u32();
            copy(r.pos);
            out.byte(OP.localTee).u32(L32B).byte(OP.i32Const).byte(0x7f).byte(0x46)
              .byte(OP.if).byte(0x40).byte(OP.globalGet).u32(FL).byte(OP.i32Const).byte(FLAG_TABLE_GROW_FAILED).byte(0x72).byte(OP.globalSet).u32(FL)
              .byte(OP.else).byte(OP.globalGet).u32(ctx.G_TABLES).byte(OP.localGet).u32(L32).byte(0x6a).byte(OP.globalSet).u32(ctx.G_TABLES)
              .byte(OP.end).byte(OP.localGet).u32(L32B);
            break;
          }
          // Bulk memory and table ops: len/64 more fuel, charged before (len is on top of the stack).
          if (sub === 8) { r.u32(); if (r.byte() !== 0) refuseOpcode(op, sub); }
          else if (sub === 10) { if (r.byte() !== 0 || r.byte() !== 0) refuseOpcode(op, sub); }
          else if (sub === 11) { if (r.byte() !== 0) refuseOpcode(op, sub); }
          else if (sub === 12 || sub === 14) { r.u32(); r.u32(); }
          else if (sub === 17) r.u32();
          else refuseOpcode(op, sub);
          dynamicCharge(at, 0x88, 6);
          break;
        }
        default:
          if (op >= 0x28 && op <= 0x3e) {
            // Loads and stores; a float store canonicalises its NaN first.
            if (op === 0x38) { copy(at); canon32(out, LF32); }
            else if (op === 0x39) { copy(at); canon64(out, LF64); }
            const align = r.u32();
            if (align & 0x40) fail('ERR_WASM_INVALID', 'unsupported feature: multiple memories are refused');
            r.u32();
          } else if (op >= 0x45 && op <= 0xc4) {
            // Numeric ops; reinterpretations and copysign's sign source make NaN bits observable.
            if (op === 0xbc || op === 0x98) { copy(at); canon32(out, LF32); }
            else if (op === 0xbd || op === 0xa6) { copy(at); canon64(out, LF64); }
          } else refuseOpcode(op);
      }
      if (finished) break;
      segCost += cost;
      if (boundary) flush(r.pos);
    }
    if (!finished) fail('ERR_WASM_INVALID', 'invalid module: a function body has no end');
    if (r.pos > fEnd) fail('ERR_WASM_INVALID', `invalid module: unexpected end at byte ${fEnd}`);
    patchU32(out.buf, sizeAt, out.length - bodyStart);
  }
}

/** How many instructions the last skipPlain call passed over (a second result, without allocating). */
let plainCount = 0;

/**
 * Skips, from p, the instructions that cost 1 and need nothing written around them (numeric ops
 * but the NaN-observing ones, variable access, constants, loads and integer stores, drop,
 * select) and returns where the first other one starts. Most of a body is such instructions, and
 * a module is rewritten once, so this loop runs mostly before V8 has optimised anything: it is
 * kept small (V8 optimises a small loop in a few ms, the whole rewriter in ~60) and call-free.
 * The module passed WebAssembly.validate, so its LEB128s are well formed.
 */
function skipPlain(bytes: Uint8Array, p: number, end: number): number {
  let n = 0;
  while (p < end) {
    const op = bytes[p];
    if (op >= 0x45 && op <= 0xc4) {
      if (op === 0x98 || op === 0xa6 || op === 0xbc || op === 0xbd) break;
      p++;
    } else if ((op >= 0x20 && op <= 0x24) || op === 0x41 || op === 0x42) {
      p++;
      while (bytes[p++] & 0x80);
    } else if (((op >= 0x28 && op <= 0x37) || (op >= 0x3a && op <= 0x3e)) && (bytes[p + 1] & 0x40) === 0) {
      p++;
      while (bytes[p++] & 0x80); // align
      while (bytes[p++] & 0x80); // offset
    } else if (op === 0x43) p += 5;
    else if (op === 0x44) p += 9;
    else if (op === 0x1a || op === 0x1b) p++;
    else break;
    n++;
  }
  plainCount = n;
  return p;
}

function canon32(w: Writer, l: number): void {
  w.byte(OP.localTee).u32(l).byte(OP.f32Const).bytes(CANON_F32).byte(OP.localGet).u32(l).byte(OP.localGet).u32(l).byte(0x5b).byte(0x1b);
}

function canon64(w: Writer, l: number): void {
  w.byte(OP.localTee).u32(l).byte(OP.f64Const).bytes(CANON_F64).byte(OP.localGet).u32(l).byte(OP.localGet).u32(l).byte(0x61).byte(0x1b);
}

const CANON_F32 = new Uint8Array([0x00, 0x00, 0xc0, 0x7f]);
const CANON_F64 = new Uint8Array([0, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
