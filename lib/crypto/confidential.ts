/**
 * Confidential execution on the node: the main thread sees only ciphertext. It checks the
 * sealed request's shape (a low-order ephemeral key is malformed), finds the named key in the
 * keyring, reserves the request id and hands request and key to the guest's worker, which
 * decrypts, runs and encrypts the outcome to the client. The id is used up only once the worker
 * has authenticated the request; otherwise it is released (crypto/replay.ts).
 */
import { AtomaError } from '../engine/errors.js';
import type { WasmFunction, WasmRunOptions, WasmErrorCode } from '../wasm/runner.js';
import { checkSealed, type SealedMessage } from './seal.js';
import type { NodeKeyring } from './keyring.js';
import type { ReplayGuard } from './replay.js';

export interface ConfidentialResult {
  /** The sealed outcome, for the client only: JSON {exitCode, fuelUsed, stdout, stderr (base64), error}. */
  response: SealedMessage | null;
  /** Refusals before any guest ran (replay, unknown or expired key, altered message). */
  error: { code: WasmErrorCode; message: string } | null;
}

/**
 * Runs `fn` on a sealed request.
 *
 * @example
 * const { response, error } = await runConfidential(fn, sealedRequest, { keyring, replay });
 * // the client: JSON.parse(open(response, secret).toString())
 */
export async function runConfidential(
  fn: WasmFunction, request: unknown, ctx: { keyring: NodeKeyring; replay: ReplayGuard; now?: number } & WasmRunOptions,
): Promise<ConfidentialResult> {
  let m: SealedMessage;
  let der: Buffer;
  try {
    m = checkSealed(request, 'request');
    der = ctx.keyring.privateKeyDer(m.keyId, ctx.now);
    // A copy of this id is being opened: its outcome decides whether this one is a replay.
    for (let p = ctx.replay.settled(m.requestId); p; p = ctx.replay.settled(m.requestId)) await p;
    ctx.replay.reserve(m.requestId, m.timestamp, ctx.now);
  } catch (e) {
    if (e instanceof AtomaError) return { response: null, error: { code: e.code as WasmErrorCode, message: e.message } };
    throw e;
  }
  let authenticated = true;
  try {
    const out = await fn.call(new Uint8Array(0), ctx, { request: m, privateKeyDer: der });
    if (!out.sealedResponse) {
      // The worker could not open the request (openRequest fails only with ERR_SEAL_*): the id
      // stays free, so a forged copy cannot burn it. Any later failure happened after it opened.
      authenticated = !(out.error?.code.startsWith('ERR_SEAL') || out.error?.code.startsWith('ERR_KEY'));
      return { response: null, error: out.error as ConfidentialResult['error'] };
    }
    return { response: out.sealedResponse as SealedMessage, error: null };
  } finally {
    if (authenticated) ctx.replay.confirm(m.requestId);
    else ctx.replay.release(m.requestId);
  }
}
