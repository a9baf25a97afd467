/**
 * GGUF vocabulary: the value types of metadata, the GGML tensor types this package reads, and the
 * shapes of a parsed file. Numbers follow the GGUF specification (ggml/docs/gguf.md), version 3.
 */
import type { WeightFormat } from '../types.js';
import { BLOCK_TYPES, isBlockFormat } from './blocks.js';

/** Metadata value types, as stored on disk (u32). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Typed arrays that hold numeric GGUF arrays (one per numeric value type). */
export type GgufNumericArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array;

/** A scalar metadata value: numbers for types up to 32 bits and floats, bigint for 64-bit integers. */
export type GgufScalar = number | bigint | boolean | string;

/**
 * One metadata entry with its on-disk type, so a file read and written again keeps its bytes.
 * Arrays carry `itemType`; numeric arrays are typed arrays (fast for 100k-token vocabularies),
 * strings and bools plain arrays, nested arrays arrays of entries.
 */
export type GgufEntry =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType; value: GgufNumericArray | string[] | boolean[] | GgufEntry[] };

/** GGML tensor type ids this package reads and writes. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;

/** Q8_0 block: 32 weights share one f16 scale; 2 + 32 bytes. */
export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

/** Our weight format of a GGML type id, or undefined when this package cannot read it. */
export function formatOfGgmlType(id: number): WeightFormat | undefined {
  switch (id) {
    case GGML_TYPE.F32: return 'f32';
    case GGML_TYPE.F16: return 'f16';
    case GGML_TYPE.BF16: return 'bf16';
    case GGML_TYPE.Q8_0: return 'q8_0';
    default:
      for (const [f, t] of Object.entries(BLOCK_TYPES)) if (t.ggmlType === id) return f as WeightFormat;
      return undefined;
  }
}

/** Weights per block of a block format (1 for f32, f16 and bf16). */
export function blockWeights(f: WeightFormat): number {
  return f === 'q8_0' ? Q8_0_BLOCK : isBlockFormat(f) ? BLOCK_TYPES[f].weights : 1;
}

export function ggmlTypeOfFormat(f: WeightFormat): number {
  if (isBlockFormat(f)) return BLOCK_TYPES[f].ggmlType;
  return { f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, bf16: GGML_TYPE.BF16, q8_0: GGML_TYPE.Q8_0 }[f];
}

/** Names of GGML types for messages (the common ones; others print as their id). */
export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL',
  21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** Bytes of a row-major tensor of `shape` (last dimension contiguous) in `format`. */
export function byteLength(format: WeightFormat, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (format) {
    case 'f32': return n * 4;
    case 'f16':
    case 'bf16': return n * 2;
    case 'q8_0': return (n / Q8_0_BLOCK) * Q8_0_BYTES;
    default: return (n / BLOCK_TYPES[format].weights) * BLOCK_TYPES[format].bytes;
  }
}

/** One tensor of a parsed GGUF file. `shape` is row-major (GGUF's dims reversed). */
export interface GgufTensorInfo {
  name: string;
  /** The GGML type id as stored. */
  ggmlType: number;
  format: WeightFormat;
  shape: number[];
  /** Offset of the data from the start of the file. */
  offset: number;
  byteLength: number;
}

/** A parsed GGUF file: header, metadata, tensor directory, and the file's bytes (mapped). */
export interface GgufFile {
  version: number;
  metadata: Map<string, GgufEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Where the tensor data section starts. */
  dataOffset: number;
  /** The whole file (a view of the mapping when read from a path). */
  bytes: Uint8Array;
}
