/**
 * OpenAI-style request bodies as the node's HTTP API takes them (lib/node/http.ts): the body's
 * bytes parsed as JSON (a parse failure is the API's invalid_json error), then parseRequest for
 * /v1/completions and for /v1/chat/completions. Every refusal must be an ApiError (a 4xx with an
 * OpenAI error object), nothing else. Seeds are completion and chat bodies using every field;
 * mutations give fields wrong types, huge or fractional numbers, NaN-like strings, deep nesting
 * and long arrays.
 */
import { ApiError, parseRequest } from '../../../lib/node/openai.js';
import { JSON_TOKENS, mutateJson, type Json } from '../mutate-json.js';
import type { Rng } from '../prng.js';
import type { FuzzTarget } from '../target.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const MAX_TOKENS = 512;

const apiCode = (e: unknown): string | null => (e instanceof ApiError && e.status >= 400 && e.status < 500 ? `${e.status} ${e.code ?? e.type}` : null);

export function openaiTarget(): FuzzTarget {
  return {
    name: 'openai',
    async seeds() {
      const bodies: Json[] = [
        { model: 'tiny', prompt: 'Once upon a time', max_tokens: 24, temperature: 0.7, top_p: 0.9, top_k: 40, seed: 7, stream: false, n: 1, user: 'u' },
        { model: 'tiny', prompt: 'x', seed: '18446744073709551615', stream: true },
        { model: 'tiny', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi', name: 'a' }, { role: 'assistant', content: 'Hello' }], max_completion_tokens: 16, temperature: 0, top_k: 0 },
        { model: 'tiny', messages: [{ role: 'user', content: '' }], max_tokens: null, temperature: null },
      ];
      return bodies.map((b) => enc.encode(JSON.stringify(b)));
    },
    mutate(input: Uint8Array, rng: Rng, seeds: readonly Uint8Array[]) {
      const next = mutateJson(dec.decode(input), rng, [JSON.parse(dec.decode(rng.pick(seeds))) as Json]);
      return next === null ? null : enc.encode(next);
    },
    structuredShare: 0.85,
    dictionary: JSON_TOKENS,
    typedCode: apiCode,
    async run(input) {
      let body: unknown;
      try {
        body = JSON.parse(dec.decode(input));
      } catch (e) {
        throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
      }
      // A body is meant for one endpoint; each endpoint must accept it or refuse it with a 4xx.
      const refusals = (['completion', 'chat'] as const).map((kind) => {
        try {
          parseRequest(body, kind, MAX_TOKENS);
          return null;
        } catch (e) {
          if (apiCode(e) === null) throw e;
          return e;
        }
      });
      if (refusals[0] !== null && refusals[1] !== null) throw refusals[0];
    },
  };
}
