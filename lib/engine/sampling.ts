/**
 * Sampling parameters and their check, shared by the host sampler (model/sampler.ts) and the
 * device sampler (device-tensor.ts). Kept in engine/ so the engine depends on no layer above it.
 */
import { fail } from './errors.js';

export interface SamplingParams {
  /** <= 0 means greedy. Default 0. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or absent: all. */
  topK?: number;
  /** Nucleus mass in (0, 1]; absent or 1: no nucleus cut. */
  topP?: number;
}

/** Checks sampling parameters; throws ERR_ARGUMENT naming the bad one. */
export function checkSampling(p: SamplingParams): Required<SamplingParams> {
  const temperature = p.temperature ?? 0, topK = p.topK ?? 0, topP = p.topP ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) fail('ERR_ARGUMENT', `temperature must be a finite number >= 0, got ${String(p.temperature)}`);
  if (!Number.isSafeInteger(topK) || topK < 0) fail('ERR_ARGUMENT', `topK must be an integer >= 0, got ${String(p.topK)}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) fail('ERR_ARGUMENT', `topP must be in (0, 1], got ${String(p.topP)}`);
  return { temperature, topK, topP };
}
