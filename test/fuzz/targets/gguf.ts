/**
 * GGUF files: the reader, then what loading does with a file that parses (the Llama
 * configuration and the weights checked against it; the tokenizer, encoding and decoding, the
 * chat template). Seeds are init models (f32; q8_0 with biases, tied embeddings and Llama 3 RoPE
 * scaling; f16 with linear scaling) and a SentencePiece-vocabulary file holding every metadata
 * value type, all written with encodeGguf. Format-aware mutations rewrite one metadata value
 * (boundary numbers, NaN, wrong types, emptied or grown arrays) and write the file again.
 */
import { readGguf } from '../../../lib/model/gguf/reader.js';
import { encodeGguf, ggufValue } from '../../../lib/model/gguf/writer.js';
import { GgufValueType, type GgufEntry } from '../../../lib/model/gguf/types.js';
import { ggufWeights } from '../../../lib/model/gguf/llama.js';
import { ggufTokenizer } from '../../../lib/model/tokenizer/gguf.js';
import { initModelSpec } from '../../../lib/model/init.js';
import type { Rng } from '../prng.js';
import { runStages, type FuzzTarget } from '../target.js';

const TEXT = 'Hello, wörld! <|user|> 12345 \u2581a <s>\n\t  tabs';

/** A SentencePiece ("llama") vocabulary with byte tokens, and one metadata entry of every type. */
function sentencepieceSeed(): Uint8Array {
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`),
    '\u2581', 'a', 'b', 'c', 'l', 'o', 'H', 'e', '\u2581a', 'ab', 'lo', 'He', 'Hel', 'Hello'];
  const types = tokens.map((t, i) => (i === 0 ? 2 : i < 3 ? 3 : t.startsWith('<0x') ? 6 : 1));
  const scores = tokens.map((_, i) => -i);
  return encodeGguf({
    metadata: [
      ['general.architecture', ggufValue.string('tokenizer-only')],
      ['general.alignment', ggufValue.u32(64)],
      ['tokenizer.ggml.model', ggufValue.string('llama')],
      ['tokenizer.ggml.tokens', ggufValue.strings(tokens)],
      ['tokenizer.ggml.scores', ggufValue.f32s(scores)],
      ['tokenizer.ggml.token_type', ggufValue.i32s(types)],
      ['tokenizer.ggml.bos_token_id', ggufValue.u32(1)],
      ['tokenizer.ggml.eos_token_id', ggufValue.u32(2)],
      ['tokenizer.ggml.unknown_token_id', ggufValue.u32(0)],
      ['tokenizer.ggml.add_bos_token', ggufValue.bool(true)],
      ['x.u8', ggufValue.u8(200)],
      ['x.i8', { type: GgufValueType.INT8, value: -5 }],
      ['x.u16', { type: GgufValueType.UINT16, value: 65535 }],
      ['x.i16', { type: GgufValueType.INT16, value: -300 }],
      ['x.i64', { type: GgufValueType.INT64, value: -(1n << 40n) }],
      ['x.u64', ggufValue.u64(1n << 60n)],
      ['x.f64', { type: GgufValueType.FLOAT64, value: Math.PI }],
      ['x.bools', { type: GgufValueType.ARRAY, itemType: GgufValueType.BOOL, value: [true, false, true] }],
      ['x.nested', { type: GgufValueType.ARRAY, itemType: GgufValueType.ARRAY, value: [ggufValue.i32s([1, 2]), ggufValue.strings(['x', 'y'])] }],
    ],
    tensors: [],
  });
}

/** A metadata value of the same type at a boundary (or of another type). */
function hostileEntry(e: GgufEntry, rng: Rng): GgufEntry {
  if (rng.chance(0.15)) return rng.pick([ggufValue.string('llama'), ggufValue.u32(0), ggufValue.f32(NaN), ggufValue.strings([]), ggufValue.u64(1n << 63n), ggufValue.bool(false)]);
  switch (e.type) {
    case GgufValueType.UINT32: case GgufValueType.UINT8: case GgufValueType.UINT16: {
      const mask = e.type === GgufValueType.UINT8 ? 0xff : e.type === GgufValueType.UINT16 ? 0xffff : 0xffffffff;
      const v = rng.pick([0, 1, (e.value as number) + 1, (e.value as number) - 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff]);
      return { type: e.type, value: (v & mask) >>> 0 };
    }
    case GgufValueType.INT32: return { type: e.type, value: rng.pick([0, -1, 0x7fffffff, -0x80000000]) };
    case GgufValueType.FLOAT32: case GgufValueType.FLOAT64: return { type: e.type, value: rng.pick([NaN, Infinity, -Infinity, 0, -0, -1, 1e-45, 3.4e38]) };
    case GgufValueType.UINT64: return { type: e.type, value: rng.pick([0n, (1n << 64n) - 1n, 1n << 53n, 1n << 31n]) };
    case GgufValueType.INT64: return { type: e.type, value: rng.pick([0n, -1n, -(1n << 63n), (1n << 63n) - 1n]) };
    case GgufValueType.BOOL: return { type: e.type, value: !e.value };
    case GgufValueType.STRING: return { type: e.type, value: rng.pick(['', 'llama', 'gpt2', 'qwen2', 'x'.repeat(5000), '\ud800', `${e.value as string}${e.value as string}`, '{{ raise_exception("x") }}', '{% for m in messages %}', 'constructor', '__proto__']) };
    case GgufValueType.ARRAY: {
      const v = e.value as unknown as { length: number; slice(a?: number, b?: number): unknown };
      const cut = rng.below(v.length + 1);
      return { ...e, value: rng.chance(0.5) ? v.slice(0, cut) : v.slice(cut) } as GgufEntry;
    }
  }
  return e;
}

function mutateGguf(input: Uint8Array, rng: Rng): Uint8Array | null {
  let f;
  try {
    f = readGguf(input);
  } catch {
    return null;
  }
  const meta = [...f.metadata];
  if (meta.length === 0) return null;
  const i = rng.below(meta.length);
  if (rng.chance(0.2)) meta.splice(i, 1);
  else meta[i] = [meta[i][0], hostileEntry(meta[i][1], rng)];
  // encodeGguf pads to the alignment: 2^31 would write 2 GiB. Byte mutations reach that value.
  const al = meta.find(([k]) => k === 'general.alignment')?.[1].value;
  if (typeof al === 'number' && al > 1 << 16) return null;
  try {
    return encodeGguf({ metadata: meta, tensors: f.tensors.map((t) => ({ name: t.name, format: t.format, shape: t.shape, data: f.bytes.subarray(t.offset, t.offset + t.byteLength) })) });
  } catch {
    return null;
  }
}

export function ggufTarget(): FuzzTarget {
  return {
    name: 'gguf',
    async seeds() {
      const model = (o: Parameters<typeof initModelSpec>[0]) => encodeGguf(initModelSpec(o));
      return [
        model({ seed: 1, layers: 1, dim: 8, heads: 2, kvHeads: 1, vocab: 300, ff: 16, context: 64 }),
        model({ seed: 2, layers: 1, dim: 32, heads: 4, kvHeads: 2, vocab: 262, ff: 32, context: 64, format: 'q8_0', bias: true, tied: true, ropeScaling: 'llama3:8' }),
        model({ seed: 3, layers: 2, dim: 8, heads: 2, kvHeads: 2, vocab: 270, ff: 8, context: 32, format: 'f16', ropeScaling: 'linear:2' }),
        sentencepieceSeed(),
      ];
    },
    mutate: mutateGguf,
    dictionary: ['GGUF', 'general.architecture', 'llama', 'tokenizer.ggml.model'].map((s) => new TextEncoder().encode(s)),
    async run(input) {
      const f = readGguf(input);
      await runStages([
        () => { if (f.tensors.length > 0) ggufWeights(f, 'fuzz.gguf'); },
        () => {
          if (!f.metadata.has('tokenizer.ggml.model')) return;
          const t = ggufTokenizer(f, 'fuzz.gguf');
          const ids = t.encode(TEXT, { addBos: t.bosId !== null, allowSpecial: true });
          t.decode(ids);
          t.decode(t.encode(TEXT));
          t.applyChatTemplate([{ role: 'system', content: 'be brief' }, { role: 'user', content: TEXT }]);
        },
      ]);
    },
  };
}
