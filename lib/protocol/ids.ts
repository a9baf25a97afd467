/** 32-byte ids and digests as 64 lowercase hex digits, the one text form the protocol uses. */
import { fail } from '../engine/errors.js';

const HEX32 = /^[0-9a-f]{64}$/;

export function isHex32(v: unknown): v is string {
  return typeof v === 'string' && HEX32.test(v);
}

/** The 32 bytes of a hex id; a typed ERR_EVENT error names the field otherwise. */
export function hexBytes(v: unknown, name: string): Buffer {
  if (!isHex32(v)) fail('ERR_EVENT', `${name} must be 64 lowercase hex digits`);
  return Buffer.from(v, 'hex');
}
