/**
 * Two files in one fuzz input, so byte mutations reach both: a u32 (little-endian) length, the
 * first file (a small JSON: config.json, tokenizer_config.json), then the second. A length that
 * does not fit leaves the first file absent and the rest as the second.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

export function pack(first: string, second: Uint8Array): Uint8Array {
  const c = enc.encode(first);
  const out = new Uint8Array(4 + c.length + second.length);
  new DataView(out.buffer).setUint32(0, c.length, true);
  out.set(c, 4);
  out.set(second, 4 + c.length);
  return out;
}

export function unpack(input: Uint8Array): { first: string | null; second: Uint8Array } {
  if (input.length < 4) return { first: null, second: input };
  const n = new DataView(input.buffer, input.byteOffset, 4).getUint32(0, true);
  if (n > input.length - 4) return { first: null, second: input.subarray(4) };
  return { first: dec.decode(input.subarray(4, 4 + n)), second: input.subarray(4 + n) };
}
