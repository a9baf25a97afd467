/**
 * Where clients find a node's current encryption key. On the network this is the ledger: a
 * node publishes each rotated key (with its attestation) and clients look it up by node id.
 * lib/protocol/ledger/keys.ts implements it over the embedded ledger and the ledger service; here is a
 * process-local directory for a single node and for tests.
 */
import { fail } from '../engine/errors.js';
import type { PublishedKey } from './keyring.js';
import type { Attestation } from './attestation.js';

export interface NodeKeyRecord extends PublishedKey {
  nodeId: string;
  attestation?: Attestation;
}

export interface KeyDirectory {
  /** Publishes a node key (a ledger transaction on the network). */
  publish(record: NodeKeyRecord): Promise<void>;
  /** The newest key of `nodeId` valid at `at` (ms since the epoch), or undefined. */
  lookup(nodeId: string, at?: number): Promise<NodeKeyRecord | undefined>;
}

/**
 * A KeyDirectory held in this process.
 *
 * @example
 * const dir = new LocalKeyDirectory();
 * await dir.publish({ nodeId: 'node-1', ...ring.current() });
 * const key = await dir.lookup('node-1');
 */
export class LocalKeyDirectory implements KeyDirectory {
  private readonly records = new Map<string, NodeKeyRecord[]>();

  async publish(record: NodeKeyRecord): Promise<void> {
    if (!record.nodeId || !/^[0-9a-f]{32}$/.test(record.keyId)) fail('ERR_ARGUMENT', 'publish: a record needs a nodeId and a 32-hex keyId');
    const list = this.records.get(record.nodeId) ?? [];
    if (!list.some((r) => r.keyId === record.keyId)) list.push({ ...record });
    this.records.set(record.nodeId, list);
  }

  async lookup(nodeId: string, at = Date.now()): Promise<NodeKeyRecord | undefined> {
    const valid = (this.records.get(nodeId) ?? []).filter((r) => r.notBefore <= at && at < r.notAfter);
    return valid.sort((a, b) => b.notBefore - a.notBefore)[0];
  }
}
