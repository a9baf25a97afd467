/**
 * SuiLedgerClient: the node's handle on the Atoma contracts. It ties together the config, the
 * signing key, the transaction builders and the event poller. Building and signing work offline
 * (when object refs and gas are supplied); executing and polling go to the configured RPC node.
 */
import type { SuiClient } from '@mysten/sui/client';
import type { Keypair } from '@mysten/sui/cryptography';
import type { Transaction } from '@mysten/sui/transactions';
import { fail } from '../../engine/errors.js';
import type { SuiLedgerConfig } from './config.js';
import { SqliteCursorStore } from './cursor-store.js';
import { atomaEventName, parseAtomaEvent, type AtomaEvent } from './events.js';
import { loadSuiKey } from './keys.js';
import { sui } from './sdk.js';
import { normalizeOwned, parseU64, type OwnedObjectSpec } from './objects.js';
import { AtomaEventPoller, type EventPollerOptions, type EventQuerySource } from './poller.js';
import {
  buildAddNodeToModel, buildClaimFunds, buildClaimFundsForStacks, buildRegisterNode, buildStartAttestationDispute,
  buildSubmitStackSettlementAttestation, buildSubscribeNodeToTask, buildTrySettleStack, type AtomaCallContext,
} from './transactions.js';

/** Gas for offline building: price, and the coins that pay (full object refs). */
export interface OfflineGas {
  price: bigint | number | string;
  payment: { objectId: string; version: bigint | number | string; digest: string }[];
  budget?: bigint | number | string;
}

export interface ExecutionResult {
  digest: string;
  /** The atoma::db events the transaction emitted, parsed. */
  events: AtomaEvent[];
}

type U64Like = bigint | number | string;

/**
 * @example
 * const cfg = loadSuiConfig('./config.toml');
 * const ledger = new SuiLedgerClient(cfg);
 * const { events } = await ledger.execute(ledger.trySettleStack({ stackSmallId: 7n, numClaimedComputeUnits: 900n,
 *   committedStackProof: root, stackMerkleLeaf: leaf }));
 */
export class SuiLedgerClient {
  readonly config: SuiLedgerConfig;
  readonly keypair: Keypair;
  private rpc: SuiClient | undefined;

  constructor(config: SuiLedgerConfig, opts: { keypair?: Keypair; client?: SuiClient } = {}) {
    this.config = config;
    this.keypair = opts.keypair ?? loadSuiKey(config.key);
    this.rpc = opts.client;
  }

  /** The Sui address that signs (and pays gas). */
  get address(): string {
    return this.keypair.toSuiAddress();
  }

  /** The JSON-RPC client, created on first use so offline work never opens a connection. */
  get client(): SuiClient {
    this.rpc ??= new (sui('client').SuiClient)({ url: this.config.rpcUrl });
    return this.rpc;
  }

  private get ctx(): AtomaCallContext {
    return { packageId: this.config.packageId, atomaDb: this.config.atomaDb, random: this.config.random };
  }

  private badge(override?: OwnedObjectSpec): OwnedObjectSpec {
    const b = override ?? this.config.nodeBadge;
    if (b === undefined) fail('ERR_SUI_CONFIG', 'nodeBadge is not configured: register the node first and set nodeBadge');
    return b;
  }

  registerNode(): Transaction {
    return buildRegisterNode(this.ctx);
  }
  addNodeToModel(a: { modelName: string; echelon: U64Like; nodeBadge?: OwnedObjectSpec }): Transaction {
    return buildAddNodeToModel(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  subscribeNodeToTask(a: { taskSmallId: U64Like; pricePerOneMillionComputeUnits: U64Like; nodeBadge?: OwnedObjectSpec }): Transaction {
    return buildSubscribeNodeToTask(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  trySettleStack(a: {
    stackSmallId: U64Like; numClaimedComputeUnits: U64Like; committedStackProof: Uint8Array; stackMerkleLeaf: Uint8Array; nodeBadge?: OwnedObjectSpec;
  }): Transaction {
    return buildTrySettleStack(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  submitStackSettlementAttestation(a: {
    stackSmallId: U64Like; committedStackProof: Uint8Array; stackMerkleLeaf: Uint8Array; nodeBadge?: OwnedObjectSpec;
  }): Transaction {
    return buildSubmitStackSettlementAttestation(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  startAttestationDispute(a: { stackSmallId: U64Like; attestationCommitment: Uint8Array; nodeBadge?: OwnedObjectSpec }): Transaction {
    return buildStartAttestationDispute(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  claimFunds(a: { settledTicketIds: U64Like[]; nodeBadge?: OwnedObjectSpec }): Transaction {
    return buildClaimFunds(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }
  claimFundsForStacks(a: { stackSmallIds: U64Like[]; numComputeUnitsPerStackToClaim: U64Like[]; nodeBadge?: OwnedObjectSpec }): Transaction {
    return buildClaimFundsForStacks(this.ctx, { ...a, nodeBadge: this.badge(a.nodeBadge) });
  }

  /**
   * Completes `tx` with sender and gas and signs it without any network access. Every object in
   * it must be a full reference (shared: initialSharedVersion; owned: version + digest).
   */
  async signOffline(tx: Transaction, gas: OfflineGas): Promise<{ bytes: Uint8Array; signature: string }> {
    tx.setSender(this.address);
    tx.setGasPrice(parseU64(gas.price, 'gas.price'));
    tx.setGasBudget(gas.budget === undefined ? this.config.gasBudget : parseU64(gas.budget, 'gas.budget'));
    if (!Array.isArray(gas.payment) || gas.payment.length === 0) fail('ERR_ARGUMENT', 'gas.payment needs at least one coin');
    tx.setGasPayment(
      gas.payment.map((c, i) => {
        const o = normalizeOwned(c, `gas.payment[${i}]`);
        if (o.version === undefined) fail('ERR_ARGUMENT', `gas.payment[${i}] needs version and digest`);
        return { objectId: o.objectId, version: String(o.version), digest: o.digest as string };
      }),
    );
    let bytes: Uint8Array;
    try {
      bytes = await tx.build();
    } catch (e) {
      return fail('ERR_ARGUMENT', `transaction cannot be built offline: ${(e as Error).message}`);
    }
    const { signature } = await this.keypair.signTransaction(bytes);
    return { bytes, signature };
  }

  /** Signs and executes `tx` on the RPC node; fails with ERR_SUI_RPC unless it succeeded on chain. */
  async execute(tx: Transaction): Promise<ExecutionResult> {
    tx.setSenderIfNotSet(this.address);
    tx.setGasBudgetIfNotSet(this.config.gasBudget);
    let res: Awaited<ReturnType<SuiClient['signAndExecuteTransaction']>>;
    try {
      res = await this.client.signAndExecuteTransaction({ transaction: tx, signer: this.keypair, options: { showEvents: true, showEffects: true } });
      await this.client.waitForTransaction({ digest: res.digest });
    } catch (e) {
      return fail('ERR_SUI_RPC', `transaction failed to execute: ${(e as Error).message}`);
    }
    const status = res.effects?.status;
    if (status?.status !== 'success') fail('ERR_SUI_RPC', `transaction ${res.digest} aborted: ${status?.error ?? 'no effects returned'}`);
    const events = (res.events ?? [])
      .filter((e) => atomaEventName(e.type, this.config.eventPackageId) !== null)
      .map((e) => parseAtomaEvent(e, this.config.eventPackageId));
    return { digest: res.digest, events };
  }

  /**
   * An event poller over this client's RPC node (or `source`), with the cursor in the configured
   * SQLite file (or `store`).
   */
  eventPoller(
    handler: EventPollerOptions['handler'],
    opts: { source?: EventQuerySource; store?: SqliteCursorStore } & Pick<EventPollerOptions, 'retry' | 'sleep'> = {},
  ): AtomaEventPoller {
    return new AtomaEventPoller({
      source: opts.source ?? this.client,
      store: opts.store ?? new SqliteCursorStore(this.config.events.cursorDbPath),
      packageId: this.config.eventPackageId,
      handler,
      pageSize: this.config.events.pageSize,
      maxPagesPerPoll: this.config.events.maxPagesPerPoll,
      retry: opts.retry,
      sleep: opts.sleep,
    });
  }
}
