/**
 * Commit-reveal. A sampled node first publishes
 *   commitment = BLAKE3(outputDigest || traceRoot || u64le(traceLeaves) || nodeId || salt)
 * over exactly 136 bytes: the raw 32 bytes of each digest, id and salt, and the trace's leaf count
 * as 8 bytes little-endian, in this order (no lengths, no separators: every part has a fixed
 * size). The leaf count is inside because it decides how a dispute runs (equal counts bisect to
 * one leaf, different counts go to a full re-execution): left out, a node could pick it at reveal
 * time, after seeing the other nodes' results. The salt (32 random bytes) hides the result from
 * the other sampled nodes until every node has committed; the node id inside makes a copied
 * commitment useless, because only the node that made it can open it.
 */
import { fail } from '../engine/errors.js';
import { blake3 } from '../engine/hash.js';
import { hexBytes } from './ids.js';

/**
 * @example
 * const salt = randomBytes(32).toString('hex');
 * const c = commitment(outputDigest, traceRoot, traceLeaves, myNodeId, salt);   // publish c, keep salt
 */
export function commitment(outputDigest: string, traceRoot: string, traceLeaves: number, nodeId: string, salt: string): string {
  if (!Number.isSafeInteger(traceLeaves) || traceLeaves < 0) fail('ERR_EVENT', `commitment: traceLeaves must be a non-negative integer, got ${String(traceLeaves)}`);
  const leaves = Buffer.alloc(8);
  leaves.writeBigUInt64LE(BigInt(traceLeaves));
  return blake3(Buffer.concat([
    hexBytes(outputDigest, 'outputDigest'), hexBytes(traceRoot, 'traceRoot'), leaves, hexBytes(nodeId, 'nodeId'), hexBytes(salt, 'salt'),
  ])).toString('hex');
}
