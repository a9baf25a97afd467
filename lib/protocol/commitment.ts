/**
 * Commit-reveal. A sampled node first publishes
 *   commitment = BLAKE3(outputDigest || traceRoot || nodeId || salt)
 * over exactly 128 bytes: the four values' raw 32 bytes each, in this order (no lengths, no
 * separators: every part has a fixed size). The salt (32 random bytes) hides the result from the
 * other sampled nodes until every node has committed; the node id inside makes a copied
 * commitment useless, because only the node that made it can open it.
 */
import { blake3 } from '../engine/hash.js';
import { hexBytes } from './ids.js';

/**
 * @example
 * const salt = randomBytes(32).toString('hex');
 * const c = commitment(outputDigest, traceRoot, myNodeId, salt);   // publish c, keep salt
 */
export function commitment(outputDigest: string, traceRoot: string, nodeId: string, salt: string): string {
  return blake3(Buffer.concat([
    hexBytes(outputDigest, 'outputDigest'), hexBytes(traceRoot, 'traceRoot'), hexBytes(nodeId, 'nodeId'), hexBytes(salt, 'salt'),
  ])).toString('hex');
}
