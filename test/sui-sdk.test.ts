/**
 * lib/protocol/sui/ loads the Sui SDK's CommonJS build on first use (sdk.ts, docs/sui.md). A
 * caller holding the SDK's ESM objects must still be able to mix them with ours: an ESM
 * transaction through our builders, an ESM keypair in our client, our transactions in ESM code.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { bcs } from '@mysten/sui/bcs';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Transaction } from '@mysten/sui/transactions';
import { verifyTransactionSignature } from '@mysten/sui/verify';
import { toBase58 } from '@mysten/sui/utils';
import { SuiLedgerClient, parseSuiConfig, buildRegisterNode, type AtomaCallContext } from '../lib/protocol/sui/index.js';

const PKG = '0x' + '12'.repeat(32);
const DB = '0x' + 'db'.repeat(32);
const digestOf = (s: string) => toBase58(createHash('sha256').update(s).digest());
const ctx: AtomaCallContext = { packageId: PKG, atomaDb: { objectId: DB, initialSharedVersion: 17 } };
const gas = { price: 750, payment: [{ objectId: '0x' + 'ca'.repeat(32), version: 7, digest: digestOf('gas') }] };
const esmKeypair = Ed25519Keypair.fromSecretKey(new Uint8Array(32).fill(7));
const client = new SuiLedgerClient(
  parseSuiConfig({ rpcUrl: 'http://127.0.0.1:9000', packageId: PKG, atomaDb: ctx.atomaDb, random: { objectId: '0x8', initialSharedVersion: 29 }, key: { privateKey: esmKeypair.getSecretKey() } }),
  { keypair: esmKeypair },
);

describe('the Sui SDK loaded on first use, next to its ESM build', () => {
  it('an ESM Transaction takes our move call and is signed by an ESM keypair in our client', async () => {
    const tx = new Transaction();
    expect(buildRegisterNode(ctx, tx)).toBe(tx);
    const { bytes, signature } = await client.signOffline(tx, gas);
    const signer = await verifyTransactionSignature(bytes, signature);
    expect(signer.toSuiAddress()).toBe(esmKeypair.toSuiAddress());
    const call = bcs.TransactionData.parse(bytes).V1.kind.ProgrammableTransaction!.commands[0].MoveCall!;
    expect(`${call.package}::${call.module}::${call.function}`).toBe(`${PKG}::db::register_node_entry`);
  });

  it('a transaction our builders create is a Transaction to the ESM SDK', async () => {
    const ours = buildRegisterNode(ctx);
    const copy = Transaction.from(ours);
    expect(copy.getData().commands.map((c) => c.MoveCall?.function)).toEqual(['register_node_entry']);
    const { bytes } = await client.signOffline(ours, gas);
    const { bytes: again } = await client.signOffline(copy, gas);
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });
});
