/**
 * The one error type of the engine. `code` is stable and machine-readable; the message names
 * the problem for a person.
 *
 * @example
 * try { await matmul(a, b); } catch (e) { if (e instanceof AtomaError && e.code === 'ERR_SHAPE') ... }
 */
export class AtomaError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'AtomaError';
    this.code = code;
  }
}

/** Error codes raised by the engine. */
export type AtomaErrorCode =
  | 'ERR_SHAPE'
  | 'ERR_DTYPE'
  | 'ERR_TYPE'
  | 'ERR_SIZE'
  | 'ERR_RANGE'
  | 'ERR_ALIAS'
  | 'ERR_ARGUMENT'
  | 'ERR_DETACHED'
  | 'ERR_DISPOSED'
  | 'ERR_UNKNOWN_ISA'
  | 'ERR_ISA_UNSUPPORTED'
  | 'ERR_BAD_THREADS'
  | 'ERR_IO'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_NO_CUDA'
  | 'ERR_USAGE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_INTERNAL';

export function fail(code: AtomaErrorCode, message: string): never {
  throw new AtomaError(message, code);
}
