/**
 * GPT-2's byte-to-unicode table: each byte maps to a printable character so byte-level
 * vocabularies store tokens as ordinary strings. Printable Latin-1 bytes map to themselves; the
 * other 68 bytes map to U+0100.. in byte order (space becomes 'Ġ', newline 'Ċ').
 */
export const BYTE_TO_CHAR: string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  return table;
})();

export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const enc = new TextEncoder();

/** Text to its byte-level form (UTF-8 bytes, each as its mapped character). */
export function toByteLevel(text: string): string {
  let out = '';
  for (const b of enc.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Byte-level token text back to bytes; null when a character is not in the table. */
export function fromByteLevel(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  let i = 0;
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return null;
    out[i++] = b;
  }
  return out.subarray(0, i);
}

/** SentencePiece byte token text '<0xNN>' to its byte, or -1. */
export function byteTokenValue(token: string): number {
  if (token.length !== 6 || !token.startsWith('<0x') || token[5] !== '>') return -1;
  const v = parseInt(token.slice(3, 5), 16);
  return Number.isNaN(v) ? -1 : v;
}
