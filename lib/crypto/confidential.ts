/**
 * Confidential execution on the node: the main thread sees only ciphertext. It checks the
 * sealed request's shape, refuses replays, finds the named key in the keyring and hands request
 * and key to the guest's worker, which decrypts, runs and encrypts the outcome to the client.
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
    ctx.replay.reserve(m.requestId, m.timestamp, ctx.now);
  } catch (e) {
    if (e instanceof AtomaError) return { response: null, error: { code: e.code as WasmErrorCode, message: e.message } };
    throw e;
  }
  const out = await fn.call(new Uint8Array(0), ctx, { request: m, privateKeyDer: der });
  if (!out.sealedResponse) {
    // The worker could not authenticate the request: free the id so a forged copy cannot burn it.
    if (out.error?.code.startsWith('ERR_SEAL') || out.error?.code.startsWith('ERR_KEY')) ctx.replay.release(m.requestId);
    return { response: null, error: out.error as ConfidentialResult['error'] };
  }
  return { response: out.sealedResponse as SealedMessage, error: null };
}
