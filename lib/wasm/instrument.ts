/**
 * Fuel metering, NaN canonicalisation, a memory cap and a call-depth limit, written into the
 * module itself so that every node counts the same fuel and sees the same bits whatever its CPU
 * or V8 tier. One linear pass over the binary (docs/wasm.md has the cost model):
 *
 * - fuel: a mutable i64 global, exported as `__atoma_fuel`. Each straight-line run of code (a
 *   "segment", split after every branch, branch target and `unreachable`) is charged its
 *   instruction count at its start; bulk memory ops are charged len/64 more and memory.grow
 *   1024 per page. When fuel goes below zero the guest executes `unreachable`.
 * - NaN: any float whose bits become observable (stored to memory, reinterpreted as an integer,
 *   or used as copysign's sign source) is replaced by the canonical quiet NaN when it is a NaN.
 *   No other wasm instruction can tell NaN payloads apart, so results are bit-identical.
 * - memory: the maximum of the (single) memory is clamped to the cap; a failed memory.grow sets
 *   bit 0 of the `__atoma_flags` global so a later trap is reported as out of memory.
 * - calls: a depth counter traps at MAX_CALL_DEPTH (flag bit 1), before V8's own stack limit,
 *   whose depth depends on frame sizes and would differ between tiers.
 */
import { fail } from '../engine/errors.js';
import { Reader, Writer } from './binary.js';
import { checkImport, checkValtype, isValtype, refuseOpcode } from './policy.js';

export const FUEL_EXPORT = '__atoma_fuel';
export const FLAGS_EXPORT = '__atoma_flags';
export const START_EXPORT = '__atoma_start';
export const FLAG_GROW_FAILED = 1;
export const FLAG_CALL_DEPTH = 2;
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
  const out = new Writer(bytes.length + (bytes.length >> 1) + 256);
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
  };
  const emitGlobals = () => {
    const w = new Writer(64);
    w.u32(3);
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
        w.u32(n + 3).bytes(bytes, t.pos, s.end);
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
      case 10:
        out.section(10, rewriteCode(bytes, s.start, s.end, { types, funcTypes, importedFuncs, wrapperType, G_FUEL, G_FLAGS, G_DEPTH }));
        break;
      default:
        out.byte(s.id).u32(s.end - s.start).bytes(bytes, s.start, s.end);
    }
  }
  if (!emittedGlobals) emitGlobals();
  if (!emittedExports) emitExports();
  return { bytes: out.result(), hasStart, initialMemory: initialPages * PAGE };
}

interface CodeContext {
  types: FuncType[];
  funcTypes: number[];
  importedFuncs: number;
  wrapperType: Map<string, number>;
  G_FUEL: number;
  G_FLAGS: number;
  G_DEPTH: number;
}

function rewriteCode(bytes: Uint8Array, start: number, end: number, ctx: CodeContext): Writer {
  const r = new Reader(bytes, start, end);
  const n = r.u32();
  if (n !== ctx.funcTypes.length) fail('ERR_WASM_INVALID', 'invalid module: function and code section counts differ');
  const out = new Writer(end - start + (end - start) + 64);
  out.u32(n);
  const fn = new Writer(4096);
  const seg = new Writer(1024);
  for (let f = 0; f < n; f++) {
    const size = r.u32();
    const fEnd = r.pos + size;
    const type = ctx.types[ctx.funcTypes[f]];
    fn.length = 0;
    // Locals: the originals, then four scratch locals (i64, i32, f32, f64).
    const nDecls = r.u32();
    let nLocals = type.params.length;
    fn.u32(nDecls + 4);
    for (let i = 0; i < nDecls; i++) {
      const count = r.u32();
      const t = r.byte();
      checkValtype(t, `function ${f + ctx.importedFuncs} locals`);
      nLocals += count;
      fn.u32(count).byte(t);
    }
    const L64 = nLocals, L32 = nLocals + 1, LF32 = nLocals + 2, LF64 = nLocals + 3;
    fn.u32(1).byte(0x7e).u32(1).byte(0x7f).u32(1).byte(0x7d).u32(1).byte(0x7c);

    const F = ctx.G_FUEL, FL = ctx.G_FLAGS, D = ctx.G_DEPTH;
    const checkFuel = (w: Writer) => {
      w.byte(OP.localTee).u32(L64).byte(OP.globalSet).u32(F).byte(OP.localGet).u32(L64)
        .byte(OP.i64Const).byte(0).byte(0x53).byte(OP.if).byte(0x40).byte(OP.unreachable).byte(OP.end);
    };
    const charge = (cost: number) => {
      fn.byte(OP.globalGet).u32(F).byte(OP.i64Const).sPositive(cost).byte(0x7d);
      checkFuel(fn);
    };
    /** Charges (n >> 6) or (n << 10) fuel for the i32 length n on top of the stack, keeping it. */
    const dynamicCharge = (shiftOp: number, shift: number) => {
      seg.byte(OP.localTee).u32(L32).byte(OP.globalGet).u32(F).byte(OP.localGet).u32(L32).byte(0xad)
        .byte(OP.i64Const).byte(shift).byte(shiftOp).byte(0x7d);
      checkFuel(seg);
    };
    const canon32 = () => {
      seg.byte(OP.localTee).u32(LF32).byte(OP.f32Const).bytes(CANON_F32).byte(OP.localGet).u32(LF32).byte(OP.localGet).u32(LF32).byte(0x5b).byte(0x1b);
    };
    const canon64 = () => {
      seg.byte(OP.localTee).u32(LF64).byte(OP.f64Const).bytes(CANON_F64).byte(OP.localGet).u32(LF64).byte(OP.localGet).u32(LF64).byte(0x61).byte(0x1b);
    };
    const decDepth = (w: Writer) => {
      w.byte(OP.globalGet).u32(D).byte(OP.i32Const).byte(1).byte(0x6b).byte(OP.globalSet).u32(D);
    };

    // Prologue: the deterministic call-depth limit, then the wrapper block.
    fn.byte(OP.globalGet).u32(D).byte(OP.i32Const).sPositive(MAX_CALL_DEPTH).byte(0x4f)
      .byte(OP.if).byte(0x40).byte(OP.globalGet).u32(FL).byte(OP.i32Const).byte(FLAG_CALL_DEPTH).byte(0x72).byte(OP.globalSet).u32(FL)
      .byte(OP.unreachable).byte(OP.end)
      .byte(OP.globalGet).u32(D).byte(OP.i32Const).byte(1).byte(0x6a).byte(OP.globalSet).u32(D);
    const res = type.results;
    fn.byte(OP.block);
    if (res.length === 0) fn.byte(0x40);
    else if (res.length === 1) fn.byte(res[0]);
    else fn.u32(ctx.wrapperType.get(res.join(','))!);

    seg.length = 0;
    let segCost = 0;
    const flush = () => {
      if (segCost > 0) charge(segCost);
      fn.bytes(seg.buf, 0, seg.length);
      seg.length = 0;
      segCost = 0;
    };
    let depth = 0;
    let finished = false;
    while (r.pos < fEnd) {
      const at = r.pos;
      const op = r.byte();
      let cost = 1;
      let boundary = false;
      switch (op) {
        case OP.unreachable: case OP.return: case OP.br: case OP.brIf: case OP.brTable: boundary = true; break;
        case OP.block: case OP.loop: case OP.if: depth++; cost = op === OP.if ? 1 : 0; boundary = op !== OP.block; break;
        case OP.else: cost = 0; boundary = true; break;
        case OP.end: cost = 0; boundary = true; break;
        case 0x01: cost = 0; break;
      }
      // Immediates.
      switch (op) {
        case OP.block: case OP.loop: case OP.if: {
          const b = bytes[r.pos];
          if (b === 0x40 || isValtype(b)) r.pos++;
          else if (b === 0x7b) checkValtype(b, 'a block type');
          else r.skipSleb(33);
          break;
        }
        case OP.br: case OP.brIf: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2:
          r.u32();
          break;
        case OP.brTable: {
          const k = r.u32();
          for (let i = 0; i <= k; i++) r.u32();
          break;
        }
        case 0x11: r.u32(); r.u32(); break;
        case 0x1c: {
          const k = r.u32();
          for (let i = 0; i < k; i++) checkValtype(r.byte(), 'select');
          break;
        }
        case 0x3f: case 0x40:
          if (r.byte() !== 0) refuseOpcode(0x3f, 1);
          break;
        case OP.i32Const: r.skipSleb(32); break;
        case OP.i64Const: r.skipSleb(64); break;
        case OP.f32Const: r.skip(4); break;
        case OP.f64Const: r.skip(8); break;
        case 0xd0: r.byte(); break;
        case 0xfc: {
          const sub = r.u32();
          if (sub <= 7 || sub === 9 || sub === 13 || sub === 15 || sub === 16) { if (sub > 7) r.u32(); }
          else if (sub === 8) { r.u32(); if (r.byte() !== 0) refuseOpcode(op, sub); dynamicCharge(0x88, 6); }
          else if (sub === 10) { if (r.byte() !== 0 || r.byte() !== 0) refuseOpcode(op, sub); dynamicCharge(0x88, 6); }
          else if (sub === 11) { if (r.byte() !== 0) refuseOpcode(op, sub); dynamicCharge(0x88, 6); }
          else if (sub === 12 || sub === 14) { r.u32(); r.u32(); dynamicCharge(0x88, 6); }
          else if (sub === 17) { r.u32(); dynamicCharge(0x88, 6); }
          else refuseOpcode(op, sub);
          break;
        }
        default:
          if (op >= 0x28 && op <= 0x3e) {
            const align = r.u32();
            if (align & 0x40) fail('ERR_WASM_INVALID', 'unsupported feature: multiple memories are refused');
            r.u32();
          } else if (!(op <= 0x01 || op === OP.else || op === OP.end || op === OP.return || op === 0x1a || op === 0x1b ||
            (op >= 0x45 && op <= 0xc4) || op === 0xd1)) {
            refuseOpcode(op);
          }
      }
      // Insertions before the instruction (the operand concerned is on top of the stack).
      if (op === 0x38 || op === 0xbc || op === 0x98) canon32();
      else if (op === 0x39 || op === 0xbd || op === 0xa6) canon64();
      else if (op === 0x40) dynamicCharge(0x86, 10);
      else if (op === OP.return) decDepth(seg);
      if (op === OP.end && depth === 0) {
        // The function's own end: close the wrapper block, leave the call depth, end.
        flush();
        fn.byte(OP.end);
        decDepth(fn);
        fn.byte(OP.end);
        finished = true;
        if (r.pos !== fEnd) fail('ERR_WASM_INVALID', 'invalid module: code after the end of a function');
        break;
      }
      if (op === OP.end) depth--;
      seg.bytes(bytes, at, r.pos);
      segCost += cost;
      if (op === 0x40) {
        // After memory.grow: remember a failure, so that the trap that usually follows reads as OOM.
        seg.byte(OP.localTee).u32(L32).byte(OP.localGet).u32(L32).byte(OP.i32Const).byte(0x7f).byte(0x46)
          .byte(OP.if).byte(0x40).byte(OP.globalGet).u32(FL).byte(OP.i32Const).byte(FLAG_GROW_FAILED).byte(0x72)
          .byte(OP.globalSet).u32(FL).byte(OP.end);
      }
      if (boundary) flush();
    }
    if (!finished) fail('ERR_WASM_INVALID', 'invalid module: a function body has no end');
    out.u32(fn.length).bytes(fn.buf, 0, fn.length);
  }
  return out;
}

const CANON_F32 = new Uint8Array([0x00, 0x00, 0xc0, 0x7f]);
const CANON_F64 = new Uint8Array([0, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
