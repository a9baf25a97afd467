/**
 * The bytes of a request's input on the ledger: the canonical JSON (keys sorted, no whitespace;
 * lib/protocol/ledger/store.ts `canonical`) of an executor Assignment. The `request` event names
 * them by BLAKE3 hex, so every sampled node executes exactly what the client asked for and can
 * prove it: a node checks the digest before it decodes, and refuses any input that is not a
 * well-formed Assignment in its one canonical encoding.
 */
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { canonical } from '../protocol/ledger/store.js';
import type { Assignment } from './executor.js';

/** Upper bounds that keep one assignment's work and trace finite (a node's engine enforces the model's context). */
export const MAX_PROMPT_TOKENS = 1 << 20;
export const MAX_NEW_TOKENS = 1 << 20;

/**
 * Canonical bytes of an assignment and their BLAKE3 digest (the request event's `input`).
 *
 * @example
 * const { bytes, digest } = encodeAssignment({ prompt: [1, 2, 3], maxTokens: 8, seed: 7 });
 */
export function encodeAssignment(a: Assignment): { bytes: Buffer; digest: string } {
  const checked = checkAssignment(a);
  const bytes = Buffer.from(canonical(checked), 'utf8');
  return { bytes, digest: blake3(bytes).toString('hex') };
}

/**
 * Verifies input bytes against the digest the ledger names and decodes them. ERR_DIGEST_MISMATCH
 * when the bytes are not the named ones; ERR_EVENT when they are not a canonical Assignment.
 */
export function decodeAssignment(bytes: Uint8Array, digest: string): Assignment {
  const got = blake3(bytes).toString('hex');
  if (got !== digest) fail('ERR_DIGEST_MISMATCH', `input bytes hash to ${got}, the request names ${digest}`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    fail('ERR_EVENT', `input ${digest} is not JSON`);
  }
  const a = checkAssignment(v);
  // One encoding per assignment: two byte strings for the same work would be two requests.
  if (canonical(a) !== Buffer.from(bytes).toString('utf8')) fail('ERR_EVENT', `input ${digest} is not in canonical form`);
  return a;
}

const int = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/** Checks the shape of an Assignment (no unknown keys); returns it without undefined fields. */
export function checkAssignment(v: unknown): Assignment {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('ERR_EVENT', 'an assignment must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['prompt', 'maxTokens', 'seed', 'temperature', 'topK'].includes(k)) fail('ERR_EVENT', `assignment: unknown key ${k}`);
  if (!Array.isArray(o.prompt) || o.prompt.length === 0 || o.prompt.length > MAX_PROMPT_TOKENS || !o.prompt.every((t) => int(t, 0, 2 ** 31 - 1)))
    fail('ERR_EVENT', `assignment.prompt must be 1 to ${MAX_PROMPT_TOKENS} token ids (integers >= 0)`);
  if (!int(o.maxTokens, 1, MAX_NEW_TOKENS)) fail('ERR_EVENT', `assignment.maxTokens must be an integer from 1 to ${MAX_NEW_TOKENS}`);
  if (!int(o.seed, 0, Number.MAX_SAFE_INTEGER)) fail('ERR_EVENT', 'assignment.seed must be a safe integer >= 0');
  if (o.temperature !== undefined && !(typeof o.temperature === 'number' && Number.isFinite(o.temperature) && o.temperature >= 0 && o.temperature <= 100))
    fail('ERR_EVENT', 'assignment.temperature must be a number from 0 to 100');
  if (o.topK !== undefined && !int(o.topK, 0, 2 ** 31 - 1)) fail('ERR_EVENT', 'assignment.topK must be an integer >= 0');
  const a: Assignment = { prompt: o.prompt as number[], maxTokens: o.maxTokens as number, seed: o.seed as number };
  if (o.temperature !== undefined) a.temperature = o.temperature as number;
  if (o.topK !== undefined) a.topK = o.topK as number;
  return a;
}
