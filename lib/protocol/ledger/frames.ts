/**
 * WebSocket text frames written by the ledger service itself (RFC 6455 section 5.2, server to
 * client: FIN set, opcode 1, unmasked). The stream's catch-up sends the same block of the log to
 * many readers; framed once, one block is one buffer every reader's socket writes a slice of,
 * instead of a header, a copy and a callback per message per reader (300 readers catching up on
 * 50,000 events are 15 million messages). Only complete frames are written, between ws's own
 * (ws writes each frame in one call and runs without compression), so the two never interleave
 * inside a frame.
 */
import type { Message } from './stream.js';

/** Messages as back-to-back text frames, and the byte offset where each starts (one more: the end). */
export interface Frames {
  bytes: Buffer;
  offsets: number[];
}

export function textFrames(items: readonly Message[]): Frames {
  const payloads = items.map((m) => (typeof m.data === 'string' ? Buffer.from(m.data) : m.data));
  let total = 0;
  for (const p of payloads) total += headerLength(p.length) + p.length;
  const bytes = Buffer.allocUnsafe(total);
  const offsets = new Array<number>(items.length + 1);
  let o = 0;
  payloads.forEach((p, i) => {
    offsets[i] = o;
    const n = p.length;
    bytes[o++] = 0x81;
    if (n < 126) bytes[o++] = n;
    else if (n < 65536) {
      bytes[o++] = 126;
      o = bytes.writeUInt16BE(n, o);
    } else {
      bytes[o++] = 127;
      o = bytes.writeBigUInt64BE(BigInt(n), o);
    }
    bytes.set(p, o);
    o += n;
  });
  offsets[items.length] = o;
  return { bytes, offsets };
}

function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}
