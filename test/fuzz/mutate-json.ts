/**
 * Structure-aware mutations of JSON documents: a random node of the parsed tree is given a wrong
 * type, a boundary number (2^31, 2^53 + 2, 1e308, -1), a NaN-like or hostile string ("NaN",
 * "__proto__", a lone surrogate, 100k characters), deep nesting or a long array; keys are
 * dropped, added or duplicated across objects; nodes are copied from other seeds. The result is
 * serialised again, so the document stays JSON and reaches the validator behind the parser.
 */
import type { Rng } from './prng.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

type Slot = { get(): Json; set(v: Json): void; remove?(): void; parent: Json };

/** Every node of the tree as a slot that can be read, replaced and (in a container) removed. */
function slots(root: { v: Json }): Slot[] {
  const out: Slot[] = [{ get: () => root.v, set: (v) => { root.v = v; }, parent: null }];
  const walk = (v: Json) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ get: () => v[i], set: (y) => { v[i] = y; }, remove: () => { v.splice(i, 1); }, parent: v });
        walk(x);
      });
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        out.push({ get: () => v[k], set: (y) => { own(v, k, y); }, remove: () => { delete v[k]; }, parent: v });
        walk(v[k]);
      }
    }
  };
  walk(root.v);
  return out;
}

/** Sets an own enumerable key, even "__proto__" (a plain assignment would set the prototype). */
function own(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * A node reached by descending from the root, stopping at each level below the root with probability 1/4: the
 * few structural keys of a document are hit as often as the thousands of vocabulary entries.
 */
function walk(all: Slot[], rng: Rng): Slot {
  let at = all[0];
  for (;;) {
    const v = at.get();
    const children = all.filter((s) => s.parent === v && s.parent !== null);
    if (children.length === 0 || rng.chance(at === all[0] ? 0.05 : 0.25)) return at;
    at = rng.pick(children);
  }
}

function nested(depth: number, leaf: Json, asArray: boolean): Json {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { a: v };
  return v;
}

/** A placeholder for a nest deeper than JSON.stringify can write; `serialise` writes it as text. */
const DEEP_MARK = '\u0001deep:';
const DEEP = /"\\u0001deep:(\d+):([01]):([012])"/g;

function serialise(v: Json): string {
  return JSON.stringify(v).replace(DEEP, (_, d: string, arr: string, leaf: string) => {
    const n = Number(d);
    return arr === '1' ? `${'['.repeat(n)}${['0', '"x"', 'null'][Number(leaf)]}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}${['0', '"x"', 'null'][Number(leaf)]}${'}'.repeat(n)}`;
  });
}

const NUMBERS = [0, -1, 1, 0.5, -0.5, 1e308, -1e308, 5e-324, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 50, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, -(2 ** 53)];
const STRINGS = ['', 'NaN', 'Infinity', '-Infinity', '-1', '0x10', '1e999', '00', ' 1', '\u0000', '\ud800', '\uffff', '__proto__', 'constructor', 'toString', 'null', 'true', '%s%n', '../../etc/passwd'];
const KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'x', '', 'type', 'id', 'length'];

function hostile(rng: Rng): Json {
  switch (rng.below(8)) {
    case 0: return rng.pick(NUMBERS);
    case 1: return rng.pick(STRINGS);
    case 2: return rng.pick([null, true, false, [], {}]);
    case 3: return 'A'.repeat(rng.pick([64, 1000, 100_000]));
    case 4: {
      const depth = rng.pick([8, 100, 1000, 3000, 10_000]);
      const leaf = rng.below(3);
      const asArray = rng.chance(0.5);
      // Too deep for JSON.stringify (and for String(), which a parser may call on it): written as
      // text when the document is serialised (DEEP).
      return depth > 3000 ? `${DEEP_MARK}${depth}:${asArray ? 1 : 0}:${leaf}` : nested(depth, [0, 'x', null][leaf] as Json, asArray);
    }
    case 5: return new Array(rng.pick([2, 100, 5000, 20_000])).fill(rng.pick([0, 'x', null, 2 ** 53]));
    case 6: return rng.u32() - 2 ** 31;
    default: return String.fromCharCode(...Array.from({ length: rng.range(1, 8) }, () => rng.below(0x10000)));
  }
}

/** A variation of a value that keeps its type (numbers off by one or scaled, strings edited). */
function tweak(v: Json, rng: Rng): Json {
  if (typeof v === 'number') return rng.pick([v + 1, v - 1, -v, v * 2 ** rng.range(1, 64), v + 0.5, Math.floor(v / 2)]);
  if (typeof v === 'string') {
    switch (rng.below(6)) {
      case 0: return v.slice(0, rng.below(v.length + 1));
      case 1: return v + v.slice(0, rng.range(1, 4));
      case 2: return rng.pick(['0', 'A', 'f']).repeat(v.length);   // same length, degenerate (zero key, zero hex)
      case 3: return v.toUpperCase();
      case 4: {
        const i = rng.below(v.length + 1);
        return v.slice(0, i) + String.fromCharCode(rng.below(0x80)) + v.slice(i + 1);
      }
      default: return Number.isFinite(Number(v)) && v !== '' ? Number(v) : v.split('').reverse().join('');
    }
  }
  if (typeof v === 'boolean') return rng.pick([!v, v ? 1 : 0, String(v)]);
  if (Array.isArray(v)) return v.length ? rng.pick([v.slice(1), [...v, v[v.length - 1]], v.slice().reverse(), [v]]) : [null];
  if (v !== null && typeof v === 'object') return rng.chance(0.5) ? [v] : Object.values(v);
  return 0;
}

const clone = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;

/** One to three structural mutations of a JSON document; null when the input is not JSON. */
export function mutateJson(text: string, rng: Rng, others: readonly Json[]): string | null {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    return null;
  }
  const root = { v: doc };
  for (let n = rng.count(3); n > 0; n--) {
    const all = slots(root);
    const s = rng.chance(0.5) ? rng.pick(all) : walk(all, rng);
    switch (rng.below(6)) {
      case 0: s.set(hostile(rng)); break;
      case 1: s.set(tweak(s.get(), rng)); break;
      case 2: if (s.remove) s.remove(); else s.set(hostile(rng)); break;
      case 3: {
        // A key from another object of this or another document, or a hostile key.
        const target = s.get();
        if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
          const donor = rng.pick(slots({ v: others.length && rng.chance(0.5) ? clone(rng.pick(others)) : clone(root.v) }));
          const key = donor.parent && typeof donor.parent === 'object' && !Array.isArray(donor.parent) && rng.chance(0.6)
            ? rng.pick(Object.keys(donor.parent)) : rng.pick(KEYS);
          own(target, key, rng.chance(0.5) ? donor.get() : hostile(rng));
        } else {
          s.set(hostile(rng));
        }
        break;
      }
      case 4: {
        // A node copied from elsewhere (this document or another seed).
        const src = others.length && rng.chance(0.5) ? clone(rng.pick(others)) : clone(root.v);
        s.set(rng.pick(slots({ v: src })).get());
        break;
      }
      default: {
        // Same value, other type.
        const v = s.get();
        s.set(typeof v === 'string' ? (rng.chance(0.5) ? [v] : { v }) : typeof v === 'number' ? String(v) : rng.pick([String(v), [v] as Json]));
      }
    }
  }
  return serialise(root.v);
}

/** Raw tokens for byte-level mutation of JSON text (what JSON.stringify never writes). */
export const JSON_TOKENS = ['NaN', '-0', '1e999', '-1', '18446744073709551616', 'null', '[', ']', '{', '}', '"', ',', ':', '\\u0000', '\\ud800', 'true', '"__proto__":1,', '0.0000001', '9'.repeat(400)]
  .map((t) => new TextEncoder().encode(t));
