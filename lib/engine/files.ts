/** Files mapped into memory: large weights are read in place, never copied whole. */
import { fail } from './errors.js';
import { native } from './native.js';

/**
 * The bytes of a file, memory-mapped read-only (shared with the page cache; unmapped when the
 * buffer is garbage-collected). Writing through a view of it faults, so treat it as read-only.
 *
 * @example
 * const bytes = new Uint8Array(mapFile('model.gguf'));
 */
export function mapFile(path: string): ArrayBuffer {
  if (typeof path !== 'string' || path === '') fail('ERR_USAGE', 'mapFile: path must be a non-empty string');
  return native.mapFile(path);
}
