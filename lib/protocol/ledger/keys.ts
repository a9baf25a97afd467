/**
 * Node encryption keys published on the ledger: the `KeyDirectory` of lib/crypto/directory.ts
 * over the embedded SQLite ledger (`LedgerKeyDirectory`) and over the ledger service
 * (`ServiceKeyDirectory`). Publishing is a `publishKey` event, so every rotation is in the event
 * log, replays with it, and is refused by the rules unless the node is registered and the key id
 * is derived from the key. A lookup reads the state: the newest key (latest notBefore, then the
 * latest published) valid at the given time.
 *
 * On the ledger a public key is 64 hex digits; `NodeKeyRecord` (the crypto side) carries it as
 * base64. An attestation travels as base64 of its JSON; the ledger does not interpret it.
 */
import { AtomaError, fail } from '../../engine/errors.js';
import type { Attestation } from '../../crypto/attestation.js';
import type { KeyDirectory, NodeKeyRecord } from '../../crypto/directory.js';
import { isHex32 } from '../ids.js';
import { MAX_KEYS_PER_NODE } from '../machine.js';
import { signEvent, type Signer } from '../signing.js';
import type { KeyRecord } from '../types.js';
import { validateEvent } from '../validate.js';
import type { ClientEvent, LedgerClient } from './client.js';
import type { Ledger } from './store.js';

/** The `publishKey` event (without `at`, which the ledger stamps) for a directory record, unsigned: the ledger admits it signed by the node (signing.ts signEvent). */
export function publishKeyEvent(record: NodeKeyRecord): ClientEvent {
  if (typeof record?.publicKey !== 'string') fail('ERR_EVENT', 'publishKey: publicKey must be the base64 of a raw X25519 key');
  const raw = Buffer.from(record.publicKey, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== record.publicKey) fail('ERR_EVENT', 'publishKey: publicKey must be 32 bytes of canonical base64');
  const e: ClientEvent = { type: 'publishKey', node: record.nodeId, keyId: record.keyId, publicKey: raw.toString('hex'), notBefore: record.notBefore, notAfter: record.notAfter };
  if (record.attestation !== undefined) e.attestation = Buffer.from(JSON.stringify(record.attestation)).toString('base64');
  return e;
}

/** The publishKey event for a record, signed by the node (its id is the signer's public key). */
function signedPublishKey(record: NodeKeyRecord, signer: Signer | undefined): ClientEvent {
  const e = publishKeyEvent(record);
  if (!isHex32(e.node)) fail('ERR_EVENT', 'publishKey.node must be 64 lowercase hex digits');
  if (!signer) fail('ERR_SIGNATURE', 'publishKey: this key directory has no signer (pass the node key to publish)');
  if (signer.publicKey !== record.nodeId) fail('ERR_SIGNATURE', `publishKey: the signer ${signer.publicKey} is not node ${String(record.nodeId)}`);
  return signEvent(e, signer);
}

/** An attestation as the directory hands it back, or undefined when the text is not one for this key. */
function decodeAttestation(text: string | undefined, keyId: string): Attestation | undefined {
  if (text === undefined) return undefined;
  try {
    const a = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as Attestation;
    const ok = typeof a === 'object' && a !== null && typeof a.kind === 'string' && a.keyId === keyId && typeof a.publicKey === 'string'
      && Number.isSafeInteger(a.issuedAt) && typeof a.evidence === 'string';
    // Not decodable: left out, so a client that requires an attestation refuses the key, as it would one published without.
    return ok ? { kind: a.kind, keyId: a.keyId, publicKey: a.publicKey, issuedAt: a.issuedAt, evidence: a.evidence } : undefined;
  } catch {
    return undefined;
  }
}

/** A ledger key record in the directory's form. */
export function toNodeKeyRecord(nodeId: string, k: KeyRecord): NodeKeyRecord {
  const out: NodeKeyRecord = { nodeId, keyId: k.keyId, publicKey: Buffer.from(k.publicKey, 'hex').toString('base64'), notBefore: k.notBefore, notAfter: k.notAfter };
  const att = decodeAttestation(k.attestation, k.keyId);
  if (att) out.attestation = att;
  return out;
}

/** The newest key valid at `at`: latest notBefore, ties to the later published (later in the list). */
export function newestValid(list: readonly KeyRecord[], at: number): KeyRecord | undefined {
  let best: KeyRecord | undefined;
  for (const k of list) if (k.notBefore <= at && at < k.notAfter && (!best || k.notBefore >= best.notBefore)) best = k;
  return best;
}

function checkNode(nodeId: string): void {
  if (!isHex32(nodeId)) fail('ERR_EVENT', 'key lookup: a node id is 64 lowercase hex digits');
}

/**
 * Publishing the same record twice is not an error (a node republishes after a restart): the
 * ledger refuses the second event as a duplicate, and if the stored record is the same one that
 * counts as done. A different record under a published key id stays refused.
 */
async function publishOnce(submit: () => Promise<unknown>, stored: () => Promise<KeyRecord[]>, record: NodeKeyRecord): Promise<void> {
  try {
    await submit();
  } catch (e) {
    if (!(e instanceof AtomaError) || e.code !== 'ERR_DUPLICATE') throw e;
    const want = publishKeyEvent(record);
    const have = (await stored()).find((k) => k.keyId === record.keyId);
    if (!have || have.publicKey !== want.publicKey || have.notBefore !== want.notBefore || have.notAfter !== want.notAfter || have.attestation !== want.attestation) throw e;
  }
}

/**
 * Node keys on the embedded SQLite ledger.
 *
 * @example
 * const dir = new LedgerKeyDirectory(Ledger.open('atoma.db'), nodeKey);   // nodeKey.publicKey === nodeId
 * await dir.publish({ nodeId, ...ring.rotate() });
 * const key = await dir.lookup(nodeId); // seal(body, key!)
 */
export class LedgerKeyDirectory implements KeyDirectory {
  /** `signer`: the node's key, needed to publish (a lookup needs none). */
  constructor(private readonly ledger: Ledger, private readonly signer?: Signer) {}

  async publish(record: NodeKeyRecord): Promise<void> {
    const e = signedPublishKey(record, this.signer);
    await publishOnce(async () => this.ledger.submit(e), async () => this.ledger.state.keys[record.nodeId] ?? [], record);
  }

  async lookup(nodeId: string, at = Date.now()): Promise<NodeKeyRecord | undefined> {
    checkNode(nodeId);
    const k = newestValid(this.ledger.state.keys[nodeId] ?? [], at);
    return k && toNodeKeyRecord(nodeId, k);
  }

  /** Every key the ledger keeps for a node (at most MAX_KEYS_PER_NODE), oldest first. */
  async history(nodeId: string): Promise<NodeKeyRecord[]> {
    checkNode(nodeId);
    return (this.ledger.state.keys[nodeId] ?? []).map((k) => toNodeKeyRecord(nodeId, k));
  }
}

/**
 * Node keys through the ledger service (lib/protocol/ledger/service.ts, GET /keys/NODE). The
 * service's reply is checked like an event from the network, so a faulty service cannot hand a
 * client a key whose id is not derived from it.
 *
 * @example
 * const dir = new ServiceKeyDirectory(new LedgerClient('http://127.0.0.1:7070'));
 * const key = await dir.lookup(nodeId);
 */
export class ServiceKeyDirectory implements KeyDirectory {
  /** `signer`: the node's key, needed to publish (a lookup needs none). */
  constructor(private readonly client: LedgerClient, private readonly signer?: Signer) {}

  async publish(record: NodeKeyRecord): Promise<void> {
    const e = signedPublishKey(record, this.signer);
    await publishOnce(() => this.client.submit(e), () => this.fetch(record.nodeId), record);
  }

  async lookup(nodeId: string, at = Date.now()): Promise<NodeKeyRecord | undefined> {
    const k = newestValid(await this.fetch(nodeId), at);
    return k && toNodeKeyRecord(nodeId, k);
  }

  async history(nodeId: string): Promise<NodeKeyRecord[]> {
    return (await this.fetch(nodeId)).map((k) => toNodeKeyRecord(nodeId, k));
  }

  /** The node's keys from the service, checked; [] for a node the ledger does not know. */
  private async fetch(nodeId: string): Promise<KeyRecord[]> {
    checkNode(nodeId);
    let reply: { node: string; keys: KeyRecord[] };
    try {
      reply = await this.client.keys(nodeId);
    } catch (e) {
      if (e instanceof AtomaError && e.code === 'ERR_NOT_FOUND') return [];
      throw e;
    }
    const bad = (why: string): never => fail('ERR_LEDGER', `ledger service: malformed keys of node ${nodeId}: ${why}`);
    if (typeof reply !== 'object' || reply === null || reply.node !== nodeId || !Array.isArray(reply.keys)) bad('not {node, keys: [...]} for this node');
    if (reply.keys.length > MAX_KEYS_PER_NODE) bad(`more than ${MAX_KEYS_PER_NODE} keys`);
    return reply.keys.map((k, i) => {
      if (typeof k !== 'object' || k === null) bad(`key ${i} is not an object`);
      const { publishedAt, ...fields } = k;
      try {
        // The same checks as the event that published it (field types, key id derived from the key, unknown fields refused).
        const e = validateEvent({ type: 'publishKey', at: publishedAt, node: nodeId, ...fields }) as Extract<ReturnType<typeof validateEvent>, { type: 'publishKey' }>;
        const out: KeyRecord = { keyId: e.keyId, publicKey: e.publicKey, notBefore: e.notBefore, notAfter: e.notAfter, publishedAt: e.at };
        if (e.attestation !== undefined) out.attestation = e.attestation;
        return out;
      } catch (err) {
        return bad(`key ${i}: ${(err as Error).message}`);
      }
    });
  }
}
