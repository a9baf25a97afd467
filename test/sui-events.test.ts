/**
 * Event parsing over fixtures in the real atoma::db event shapes (test/fixtures/sui/events.json,
 * written from db.move at atoma-network/atoma-contracts@9e53429; see its _source field), plus
 * malformed variants of each that must fail with ERR_SUI_EVENT.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AtomaError } from '../lib/engine/errors.js';
import { ATOMA_EVENT_SCHEMAS, parseAtomaEvent, type AtomaEvent } from '../lib/protocol/sui/index.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/sui/events.json'), 'utf8')) as {
  packageId: string;
  events: Record<string, unknown>[];
};
const PKG = fixture.packageId;
const byName = (n: string) => fixture.events.find((e) => (e.type as string).endsWith(`::${n}`))!;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function eventError(raw: unknown, pkg = PKG): string {
  try {
    parseAtomaEvent(raw, pkg);
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    expect((e as AtomaError).code).toBe('ERR_SUI_EVENT');
    return (e as Error).message;
  }
  return 'parsed';
}

describe('parseAtomaEvent', () => {
  it('parses every fixture event into typed fields', () => {
    const parsed = fixture.events.map((e) => parseAtomaEvent(e, PKG));
    expect(parsed.map((e) => e.name)).toEqual(fixture.events.map((e) => (e.type as string).split('::')[2]));
    for (const ev of parsed) {
      expect(Object.keys(ev.fields).length).toBe(Object.keys(ATOMA_EVENT_SCHEMAS[ev.name]).length);
      expect(typeof ev.timestampMs).toBe('bigint');
    }
  });

  it('StackCreatedEvent: ids, owner, u64 beyond 2^53', () => {
    const ev = parseAtomaEvent(byName('StackCreatedEvent'), PKG) as Extract<AtomaEvent, { name: 'StackCreatedEvent' }>;
    expect(ev.fields).toEqual({
      stackId: '0x' + '5c'.repeat(32),
      stackSmallId: 42n,
      owner: '0x' + '0c'.repeat(32),
      taskSmallId: 1n,
      selectedNodeId: 3n,
      numComputeUnits: 1_000_000n,
      pricePerOneMillionComputeUnits: 18446744073709551615n,
    });
  });

  it('StackTrySettleEvent and StackAttestationDisputeEvent: byte vectors and node id vectors', () => {
    const t = parseAtomaEvent(byName('StackTrySettleEvent'), PKG);
    if (t.name !== 'StackTrySettleEvent') throw new Error('wrong event');
    expect(t.fields.requestedAttestationNodes).toEqual([5n]);
    expect(t.fields.committedStackProof).toBeInstanceOf(Uint8Array);
    expect(t.fields.committedStackProof.length).toBe(32);
    expect(t.fields.numClaimedComputeUnits).toBe(900_000n);

    const d = parseAtomaEvent(byName('StackAttestationDisputeEvent'), PKG);
    if (d.name !== 'StackAttestationDisputeEvent') throw new Error('wrong event');
    expect(d.fields.attestationNodeId).toBe(5n);
    expect(d.fields.originalNodeId).toBe(3n);
    expect(Buffer.from(d.fields.originalCommitment)).toEqual(Buffer.from(t.fields.committedStackProof));
  });

  it('TaskRegisteredEvent: struct wrappers and Option', () => {
    const ev = parseAtomaEvent(byName('TaskRegisteredEvent'), PKG);
    if (ev.name !== 'TaskRegisteredEvent') throw new Error('wrong event');
    expect(ev.fields.role).toBe(0);
    expect(ev.fields.securityLevel).toBe(2);
    expect(ev.fields.modelName).toBe('meta-llama/Llama-3.1-8B-Instruct');
    expect(ev.fields.minimumReputationScore).toBeNull();
    const some = clone(byName('TaskRegisteredEvent'));
    (some.parsedJson as Record<string, unknown>).minimum_reputation_score = 60;
    (some.parsedJson as Record<string, unknown>).model_name = null;
    const ev2 = parseAtomaEvent(some, PKG);
    if (ev2.name !== 'TaskRegisteredEvent') throw new Error('wrong event');
    expect(ev2.fields.minimumReputationScore).toBe(60);
    expect(ev2.fields.modelName).toBeNull();
  });

  it('accepts a short-form package id in the type string', () => {
    const e = clone(byName('ClaimedStackEvent'));
    const short = clone(e);
    short.type = (e.type as string).replace(PKG, '0x' + PKG.slice(2));
    expect(parseAtomaEvent(short, PKG).name).toBe('ClaimedStackEvent');
  });

  it('rejects malformed events with ERR_SUI_EVENT naming the field', () => {
    const mutate = (name: string, f: (j: Record<string, unknown>, e: Record<string, unknown>) => void) => {
      const e = clone(byName(name));
      f(e.parsedJson as Record<string, unknown>, e);
      return e;
    };
    const cases: [unknown, RegExp][] = [
      [mutate('StackCreatedEvent', (j) => delete j.num_compute_units), /missing field "num_compute_units"/],
      [mutate('StackCreatedEvent', (j) => (j.num_compute_units = 1000000)), /decimal string/],
      [mutate('StackCreatedEvent', (j) => (j.num_compute_units = '12a')), /not a decimal u64/],
      [mutate('StackCreatedEvent', (j) => (j.num_compute_units = '-1')), /not a decimal u64/],
      [mutate('StackCreatedEvent', (j) => (j.num_compute_units = '18446744073709551616')), /exceeds u64/],
      [mutate('StackCreatedEvent', (j) => (j.stack_small_id = '42')), /stack_small_id: expected \{ inner/],
      [mutate('StackCreatedEvent', (j) => (j.stack_small_id = { inner: '42', extra: 1 })), /unexpected field "extra"/],
      [mutate('StackCreatedEvent', (j) => (j.owner = 'alice')), /owner: expected a 0x-hex/],
      [mutate('StackCreatedEvent', (j) => (j.surprise = 1)), /unexpected field "surprise"/],
      [mutate('StackTrySettleEvent', (j) => (j.committed_stack_proof = 'deadbeef')), /vector<u8> must be an array/],
      [mutate('StackTrySettleEvent', (j) => ((j.stack_merkle_leaf as number[])[3] = 256)), /stack_merkle_leaf\[3\]: expected a u8/],
      [mutate('StackTrySettleEvent', (j) => (j.requested_attestation_nodes = [5])), /requested_attestation_nodes\[0\]/],
      [mutate('TaskRegisteredEvent', (j) => (j.role = { inner: 70000 })), /role.inner: expected a u16/],
      [mutate('NodeSubscribedToModelEvent', (j) => (j.echelon_id = { inner: '1' })), /echelon_id/],
      [mutate('NodeSubscribedToModelEvent', (j) => (j.model_name = 'modèle')), /ASCII/],
      [mutate('StackCreatedEvent', (_j, e) => (e.parsedJson = null)), /parsedJson must be an object/],
      [mutate('StackCreatedEvent', (_j, e) => (e.type = (e.type as string).replace('::db::', '::gate::'))), /not from module db/],
      [mutate('StackCreatedEvent', (_j, e) => (e.type = (e.type as string).replace('StackCreatedEvent', 'NoSuchEvent'))), /unknown db event/],
      [mutate('StackCreatedEvent', (_j, e) => (e.type = '0x1::db::StackCreatedEvent')), /not from package/],
      [mutate('StackCreatedEvent', (_j, e) => ((e.id as Record<string, unknown>).eventSeq = 0)), /eventSeq/],
      [mutate('StackCreatedEvent', (_j, e) => ((e.id as Record<string, unknown>).txDigest = 'abc')), /txDigest/],
      [mutate('StackCreatedEvent', (_j, e) => (e.timestampMs = 17)), /timestampMs/],
      [mutate('StackCreatedEvent', (_j, e) => delete e.sender), /sender/],
      ['not an event', /must be an object/],
    ];
    for (const [raw, re] of cases) expect(eventError(raw), JSON.stringify(raw).slice(0, 200)).toMatch(re);
  });
});
