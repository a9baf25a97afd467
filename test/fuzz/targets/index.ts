/** The fuzz targets by name, loaded on demand (a child process loads only its own). */
import type { FuzzTarget } from '../target.js';

export const TARGETS: Record<string, () => Promise<FuzzTarget>> = {
  gguf: async () => (await import('./gguf.js')).ggufTarget(),
  safetensors: async () => (await import('./safetensors.js')).safetensorsTarget(),
  tokenizer: async () => (await import('./tokenizer.js')).tokenizerTarget(),
  wasm: async () => (await import('./wasm.js')).wasmTarget(),
  ledger: async () => (await import('./ledger.js')).ledgerTarget(),
  sealed: async () => (await import('./sealed.js')).sealedTarget(),
  openai: async () => (await import('./openai.js')).openaiTarget(),
};

/** The fuzzer's own check: a target with a planted bug, which a campaign must report. */
export const SELF_TEST_TARGETS: Record<string, () => Promise<FuzzTarget>> = {
  'planted-bug': async () => (await import('./planted-bug.js')).plantedBugTarget(),
};

export function loadTarget(name: string): Promise<FuzzTarget> {
  const make = TARGETS[name] ?? SELF_TEST_TARGETS[name];
  if (!make) throw new Error(`unknown fuzz target '${name}' (${Object.keys(TARGETS).join(', ')})`);
  return make();
}
