/**
 * Transaction builders: every entry function is built offline into real BCS TransactionData,
 * decoded back, and checked field by field against the ABI of atoma::db (db.move at
 * atoma-network/atoma-contracts@9e53429). Signatures are made with Ed25519 and verified.
 */
import { describe, expect, it } from 'vitest';
import { bcs } from '@mysten/sui/bcs';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Transaction } from '@mysten/sui/transactions';
import { verifyTransactionSignature } from '@mysten/sui/verify';
import { toBase58 } from '@mysten/sui/utils';
import { createHash } from 'node:crypto';
import { AtomaError } from '../lib/engine/errors.js';
import {
  SuiLedgerClient, parseSuiConfig, buildRegisterNode, buildTrySettleStack, ENTRY_FUNCTIONS, type AtomaCallContext,
} from '../lib/protocol/sui/index.js';

const PKG = '0x' + '12'.repeat(32);
const DB = '0x' + 'db'.repeat(32);
const BADGE = '0x' + 'bd'.repeat(32);
const GAS_COIN = '0x' + 'ca'.repeat(32);
const digestOf = (s: string) => toBase58(createHash('sha256').update(s).digest());
const BADGE_DIGEST = digestOf('badge');
const GAS_DIGEST = digestOf('gas');
const h32 = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());

const keypair = Ed25519Keypair.fromSecretKey(new Uint8Array(32).fill(42));
const config = parseSuiConfig({
  rpcUrl: 'http://127.0.0.1:9000',
  packageId: PKG,
  atomaDb: { objectId: DB, initialSharedVersion: 17 },
  random: { objectId: '0x8', initialSharedVersion: 29 },
  nodeBadge: { objectId: BADGE, version: 101, digest: BADGE_DIGEST },
  key: { privateKey: keypair.getSecretKey() },
  gasBudget: 50_000_000,
});
const ledger = new SuiLedgerClient(config);
const gas = { price: 750, payment: [{ objectId: GAS_COIN, version: 7, digest: GAS_DIGEST }] };

type Input = NonNullable<ReturnType<typeof bcs.TransactionData.parse>['V1']['kind']['ProgrammableTransaction']>['inputs'][number];

/** Decodes signed bytes into (call, inputs) and checks the transaction envelope. */
async function decodeAndVerify(tx: Transaction) {
  const { bytes, signature } = await ledger.signOffline(tx, gas);
  const pk = await verifyTransactionSignature(bytes, signature);
  expect(pk.toSuiAddress()).toBe(keypair.toSuiAddress());

  const data = bcs.TransactionData.parse(bytes).V1;
  expect(data.sender).toBe(keypair.toSuiAddress());
  expect(data.gasData.price).toBe('750');
  expect(data.gasData.budget).toBe('50000000');
  expect(data.gasData.payment).toEqual([{ objectId: GAS_COIN, version: '7', digest: GAS_DIGEST }]);
  const ptb = data.kind.ProgrammableTransaction!;
  expect(ptb.commands).toHaveLength(1);
  const call = ptb.commands[0].MoveCall!;
  const args = call.arguments.map((a) => ptb.inputs[a.Input!]);
  // The SDK's own decoder must agree with the raw BCS view.
  const back = Transaction.from(bytes).getData();
  expect(back.commands[0].MoveCall?.function).toBe(call.function);
  return { call, args, bytes, signature };
}

function expectDb(arg: Input) {
  expect(arg.Object?.SharedObject).toEqual({ objectId: DB, initialSharedVersion: '17', mutable: true });
}
function expectBadge(arg: Input) {
  expect(arg.Object?.ImmOrOwnedObject).toEqual({ objectId: BADGE, version: '101', digest: BADGE_DIGEST });
}
const pureBytes = (arg: Input) => Uint8Array.from(Buffer.from(arg.Pure!.bytes, 'base64'));
const u64Of = (arg: Input) => bcs.u64().parse(pureBytes(arg));
const bytesOf = (arg: Input) => Uint8Array.from(bcs.vector(bcs.u8()).parse(pureBytes(arg)));
const u64VecOf = (arg: Input) => bcs.vector(bcs.u64()).parse(pureBytes(arg));

function expectTarget(call: { package: string; module: string; function: string; typeArguments: string[] }, fn: keyof typeof ENTRY_FUNCTIONS, nArgs: number) {
  expect(call.package).toBe(PKG);
  expect(call.module).toBe('db');
  expect(call.function).toBe(fn);
  expect(call.typeArguments).toEqual([]);
  expect(nArgs).toBe(ENTRY_FUNCTIONS[fn].length);
}

describe('sui transaction builders (offline build, BCS round trip, Ed25519 signature)', () => {
  it('register_node_entry(&mut AtomaDb)', async () => {
    const { call, args } = await decodeAndVerify(ledger.registerNode());
    expectTarget(call, 'register_node_entry', args.length);
    expectDb(args[0]);
  });

  it('add_node_to_model(db, &mut NodeBadge, ascii::String, u64)', async () => {
    const { call, args } = await decodeAndVerify(ledger.addNodeToModel({ modelName: 'meta-llama/Llama-3.1-8B', echelon: 3n }));
    expectTarget(call, 'add_node_to_model', args.length);
    expectDb(args[0]);
    expectBadge(args[1]);
    expect(bcs.string().parse(pureBytes(args[2]))).toBe('meta-llama/Llama-3.1-8B');
    expect(u64Of(args[3])).toBe('3');
  });

  it('subscribe_node_to_task(db, badge, task_small_id: u64, price: u64)', async () => {
    const { call, args } = await decodeAndVerify(ledger.subscribeNodeToTask({ taskSmallId: 9, pricePerOneMillionComputeUnits: '18446744073709551615' }));
    expectTarget(call, 'subscribe_node_to_task', args.length);
    expectDb(args[0]);
    expectBadge(args[1]);
    expect(u64Of(args[2])).toBe('9');
    expect(u64Of(args[3])).toBe('18446744073709551615');
  });

  it('try_settle_stack(db, badge, u64, u64, vector<u8>, vector<u8>, &Random)', async () => {
    const proof = h32('proof');
    const leaf = h32('leaf');
    const { call, args } = await decodeAndVerify(
      ledger.trySettleStack({ stackSmallId: 42n, numClaimedComputeUnits: 900_000, committedStackProof: proof, stackMerkleLeaf: leaf }),
    );
    expectTarget(call, 'try_settle_stack', args.length);
    expectDb(args[0]);
    expectBadge(args[1]);
    expect(u64Of(args[2])).toBe('42');
    expect(u64Of(args[3])).toBe('900000');
    expect(bytesOf(args[4])).toEqual(proof);
    expect(bytesOf(args[5])).toEqual(leaf);
    expect(args[6].Object?.SharedObject).toEqual({ objectId: '0x' + '0'.repeat(63) + '8', initialSharedVersion: '29', mutable: false });
  });

  it('submit_stack_settlement_attestation(db, badge, u64, vector<u8>, vector<u8>)', async () => {
    const { call, args } = await decodeAndVerify(
      ledger.submitStackSettlementAttestation({ stackSmallId: 42, committedStackProof: h32('p'), stackMerkleLeaf: h32('l') }),
    );
    expectTarget(call, 'submit_stack_settlement_attestation', args.length);
    expectDb(args[0]);
    expectBadge(args[1]);
    expect(u64Of(args[2])).toBe('42');
    expect(bytesOf(args[3])).toEqual(h32('p'));
    expect(bytesOf(args[4])).toEqual(h32('l'));
  });

  it('start_attestation_dispute(db, badge, u64, vector<u8>)', async () => {
    const { call, args } = await decodeAndVerify(ledger.startAttestationDispute({ stackSmallId: 5, attestationCommitment: h32('mine') }));
    expectTarget(call, 'start_attestation_dispute', args.length);
    expectDb(args[0]);
    expectBadge(args[1]);
    expect(u64Of(args[2])).toBe('5');
    expect(bytesOf(args[3])).toEqual(h32('mine'));
  });

  it('claim_funds(db, badge, vector<u64>) and claim_funds_for_stacks(db, badge, vector<u64>, vector<u64>)', async () => {
    const a = await decodeAndVerify(ledger.claimFunds({ settledTicketIds: [1, 2n, '18446744073709551615'] }));
    expectTarget(a.call, 'claim_funds', a.args.length);
    expectDb(a.args[0]);
    expectBadge(a.args[1]);
    expect(u64VecOf(a.args[2])).toEqual(['1', '2', '18446744073709551615']);

    const b = await decodeAndVerify(ledger.claimFundsForStacks({ stackSmallIds: [7, 8], numComputeUnitsPerStackToClaim: [100, 0] }));
    expectTarget(b.call, 'claim_funds_for_stacks', b.args.length);
    expect(u64VecOf(b.args[2])).toEqual(['7', '8']);
    expect(u64VecOf(b.args[3])).toEqual(['100', '0']);
  });

  it('a signature does not verify for other bytes or another key', async () => {
    const { bytes, signature } = await decodeAndVerify(ledger.registerNode());
    const tampered = Uint8Array.from(bytes);
    tampered[tampered.length - 1] ^= 1;
    await expect(verifyTransactionSignature(tampered, signature)).rejects.toThrow();
    const other = Ed25519Keypair.fromSecretKey(new Uint8Array(32).fill(1));
    await expect(verifyTransactionSignature(bytes, signature, { address: other.toSuiAddress() })).rejects.toThrow();
  });

  it('several calls share one transaction', async () => {
    const ctx: AtomaCallContext = { packageId: PKG, atomaDb: { objectId: DB, initialSharedVersion: 17 }, random: config.random };
    const tx = buildRegisterNode(ctx);
    buildTrySettleStack(ctx, { nodeBadge: config.nodeBadge!, stackSmallId: 1, numClaimedComputeUnits: 1, committedStackProof: h32('a'), stackMerkleLeaf: h32('b') }, tx);
    const { bytes } = await ledger.signOffline(tx, gas);
    const ptb = bcs.TransactionData.parse(bytes).V1.kind.ProgrammableTransaction!;
    expect(ptb.commands.map((c) => c.MoveCall!.function)).toEqual(['register_node_entry', 'try_settle_stack']);
  });

  it('rejects bad arguments with typed errors before spending gas', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(AtomaError);
        return (e as AtomaError).code;
      }
      return 'no error';
    };
    const settle = { stackSmallId: 1, numClaimedComputeUnits: 1, committedStackProof: h32('a'), stackMerkleLeaf: h32('b') };
    expect(code(() => ledger.trySettleStack({ ...settle, committedStackProof: new Uint8Array(31) }))).toBe('ERR_SIZE');
    expect(code(() => ledger.trySettleStack({ ...settle, stackMerkleLeaf: [1, 2] as unknown as Uint8Array }))).toBe('ERR_TYPE');
    expect(code(() => ledger.trySettleStack({ ...settle, stackSmallId: -1 }))).toBe('ERR_RANGE');
    expect(code(() => ledger.trySettleStack({ ...settle, stackSmallId: '18446744073709551616' }))).toBe('ERR_RANGE');
    expect(code(() => ledger.trySettleStack({ ...settle, stackSmallId: 1.5 }))).toBe('ERR_RANGE');
    expect(code(() => ledger.subscribeNodeToTask({ taskSmallId: 1, pricePerOneMillionComputeUnits: 0 }))).toBe('ERR_RANGE');
    expect(code(() => ledger.addNodeToModel({ modelName: 'modèle', echelon: 1 }))).toBe('ERR_ARGUMENT');
    expect(code(() => ledger.claimFunds({ settledTicketIds: [] }))).toBe('ERR_ARGUMENT');
    expect(code(() => ledger.claimFundsForStacks({ stackSmallIds: [1], numComputeUnitsPerStackToClaim: [] }))).toBe('ERR_SHAPE');
    expect(code(() => ledger.claimFunds({ settledTicketIds: [1], nodeBadge: { objectId: BADGE, version: 1 } }))).toBe('ERR_ARGUMENT');
    expect(code(() => buildRegisterNode({ packageId: 'db', atomaDb: { objectId: DB } }))).toBe('ERR_ARGUMENT');
    const noBadge = new SuiLedgerClient({ ...config, nodeBadge: undefined }, { keypair });
    expect(code(() => noBadge.claimFunds({ settledTicketIds: [1] }))).toBe('ERR_SUI_CONFIG');
  });

  it('offline signing refuses objects known only by id (they need the RPC node)', async () => {
    const byId = new SuiLedgerClient({ ...config, atomaDb: { objectId: DB } }, { keypair });
    await expect(byId.signOffline(byId.registerNode(), gas)).rejects.toMatchObject({ code: 'ERR_ARGUMENT' });
  });
});
