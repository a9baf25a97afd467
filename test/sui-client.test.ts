/**
 * SuiLedgerClient.execute over HTTP to a loopback fake full node (127.0.0.1). The fake is a test
 * double for the Sui JSON-RPC, not a mock of our logic: it answers the three methods the SDK
 * calls here (suix_getReferenceGasPrice, sui_executeTransactionBlock, sui_getTransactionBlock),
 * verifies the submitted signature over the submitted bytes as a validator would, and returns
 * effects and events in the JSON-RPC shapes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Transaction } from '@mysten/sui/transactions';
import { bcs } from '@mysten/sui/bcs';
import { verifyTransactionSignature } from '@mysten/sui/verify';
import { toBase58 } from '@mysten/sui/utils';
import { SuiLedgerClient, parseSuiConfig } from '../lib/protocol/sui/index.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/sui/events.json'), 'utf8')) as {
  packageId: string;
  events: { type: string }[];
};
const keypair = Ed25519Keypair.fromSecretKey(new Uint8Array(32).fill(9));
const methods: string[] = [];
let abortNext = false;
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      const { id, method, params } = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      methods.push(method);
      const reply = (result: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result }));
      };
      if (method === 'suix_getReferenceGasPrice') return reply('1000');
      if (method === 'sui_executeTransactionBlock') {
        const bytes = Uint8Array.from(Buffer.from(params[0] as string, 'base64'));
        const [sig] = params[1] as string[];
        const pk = await verifyTransactionSignature(bytes, sig).catch(() => null);
        if (pk === null) {
          res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32002, message: 'Invalid user signature' } }));
          return;
        }
        const call = bcs.TransactionData.parse(bytes).V1.kind.ProgrammableTransaction!.commands[0].MoveCall!;
        const digest = await Transaction.from(bytes).getDigest();
        // Emit what the contract would: a StackTrySettleEvent for try_settle_stack, plus a non-db event.
        const events = call.function === 'try_settle_stack'
          ? [fixture.events.find((e) => e.type.endsWith('::StackTrySettleEvent')), { ...fixture.events[0], type: '0x2::coin::CoinEvent' }]
          : [];
        const status = abortNext ? { status: 'failure', error: 'MoveAbort(..., 312012023) in command 0' } : { status: 'success' };
        return reply({ digest, effects: { status }, events });
      }
      if (method === 'sui_getTransactionBlock') return reply({ digest: params[0] });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: `fake has no ${method}` } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function ledger() {
  const digest = toBase58(createHash('sha256').update('badge').digest());
  return new SuiLedgerClient(
    parseSuiConfig({
      rpcUrl: url,
      packageId: fixture.packageId,
      atomaDb: { objectId: '0xdb', initialSharedVersion: 5 },
      random: { objectId: '0x8', initialSharedVersion: 6 },
      nodeBadge: { objectId: '0xbd', version: 3, digest },
      key: keypair.getSecretKey(),
    }),
  );
}
const withGas = (tx: Transaction) => {
  tx.setGasPayment([{ objectId: '0x' + 'ca'.repeat(32), version: '2', digest: toBase58(createHash('sha256').update('gas').digest()) }]);
  return tx;
};

describe('SuiLedgerClient.execute (loopback fake full node)', () => {
  it('signs, submits, checks effects and returns the parsed db events', async () => {
    const l = ledger();
    const tx = withGas(
      l.trySettleStack({ stackSmallId: 42, numClaimedComputeUnits: 900_000, committedStackProof: new Uint8Array(32).fill(1), stackMerkleLeaf: new Uint8Array(32).fill(2) }),
    );
    const r = await l.execute(tx);
    expect(methods).toEqual(['suix_getReferenceGasPrice', 'sui_executeTransactionBlock', 'sui_getTransactionBlock']);
    expect(r.digest).toMatch(/^[1-9A-HJ-NP-Za-km-z]{43,44}$/);
    expect(r.events.map((e) => e.name)).toEqual(['StackTrySettleEvent']);
  });

  it('an on-chain abort becomes ERR_SUI_RPC with the abort text', async () => {
    abortNext = true;
    try {
      const l = ledger();
      await expect(l.execute(withGas(l.claimFunds({ settledTicketIds: [42] })))).rejects.toMatchObject({
        code: 'ERR_SUI_RPC',
        message: expect.stringContaining('312012023'),
      });
    } finally {
      abortNext = false;
    }
  });
});
