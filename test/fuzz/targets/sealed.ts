/**
 * Sealed envelopes (lib/crypto/seal.ts) as they arrive from a client or a node: JSON, then
 * openRequest with the node's key (and sealResponse to it when it opens), or open with the
 * client's secret for a response. Every refusal must be a typed ERR_SEAL_* (or ERR_KEY_*), never
 * an OpenSSL error. Seeds are requests sealed to a fixed node key and the node's responses to
 * them. seal() draws its ephemeral key, salt, nonce and request id from node:crypto, so the
 * seeds differ from run to run; the mutations are the seeded part, and a failing input is saved
 * byte for byte by the campaign. The JSON mutator's degenerate strings (same length, all 'A',
 * i.e. zero bytes in base64) give the low-order ephemeral key among others.
 */
import { fail } from '../../../lib/engine/errors.js';
import { keyIdOf, privateKeyFromDer, rawPublicKey } from '../../../lib/crypto/keys.js';
import { open, openRequest, seal, sealResponse, type SealSecret, type SealedMessage } from '../../../lib/crypto/seal.js';
import { JSON_TOKENS, mutateJson, type Json } from '../mutate-json.js';
import type { Rng } from '../prng.js';
import type { FuzzTarget } from '../target.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** PKCS#8 DER prefix of an X25519 private key (RFC 8410); the 32 key bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const NODE_KEY = privateKeyFromDer(Buffer.concat([PKCS8_X25519, Buffer.alloc(32, 7)]));
const NODE_PUBLIC = rawPublicKey(NODE_KEY);
const NODE = { keyId: keyIdOf(NODE_PUBLIC), publicKey: NODE_PUBLIC };

function parse(input: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(input));
  } catch {
    fail('ERR_SEAL_FORMAT', 'sealed message: not JSON');
  }
}

export function sealedTarget(): FuzzTarget {
  const secrets = new Map<string, SealSecret>();
  let anySecret: SealSecret | null = null;
  return {
    name: 'sealed',
    async seeds() {
      const out: Uint8Array[] = [];
      for (const text of ['{"prompt":"hi"}', '', 'x'.repeat(1000)]) {
        const { message, secret } = seal(enc.encode(text), NODE, { now: 1_700_000_000_000 });
        secrets.set(secret.requestId, secret);
        anySecret ??= secret;
        out.push(enc.encode(JSON.stringify(message)));
        out.push(enc.encode(JSON.stringify(sealResponse(enc.encode(`answer to ${text}`), message, NODE_KEY))));
      }
      return out;
    },
    mutate(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]) {
      const next = mutateJson(dec.decode(input), rng, [JSON.parse(dec.decode(rng.pick(seeds))) as Json]);
      return next === null ? null : enc.encode(next);
    },
    structuredShare: 0.9,
    dictionary: JSON_TOKENS,
    run(input) {
      const m = parse(input) as SealedMessage;
      if (m !== null && typeof m === 'object' && m.kind === 'response') {
        open(m, secrets.get(m.requestId) ?? anySecret!);
        return;
      }
      const { plaintext } = openRequest(m, NODE_KEY);
      sealResponse(plaintext, m, NODE_KEY);
    },
  };
}
