/**
 * The protocol's economic and timing parameters. They are part of the ledger's genesis event,
 * so a replay of the event log always uses the parameters the ledger was created with.
 * Amounts are integers in the ledger's smallest unit; fractions are basis points (1/10,000).
 * docs/protocol.md explains each choice.
 */
export interface Params {
  /** Nodes sampled per request when a task asks for sampling consensus without naming n. */
  defaultSampleSize: number;
  /** Largest n a task may ask for. */
  maxSampleSize: number;
  /** Collateral a node must lock to register, and keep to stay eligible. */
  minCollateral: number;
  /** Protocol fee on what the client pays the nodes, to the treasury (bps). */
  protocolFeeBps: number;
  /** Surcharge on the price of every attester (each paid node after the first), paid by the
   *  client to that attester: it compensates the collateral attesters keep at risk (bps). */
  attesterSurchargeBps: number;
  /** Part of a node's collateral slashed when it misses a commit, reveal or bisection deadline (bps). */
  timeoutSlashBps: number;
  /** Part of a node's collateral slashed when its side loses a dispute (bps). */
  disputeSlashBps: number;
  /** Part of the collateral slashed in a dispute shared equally by the winning side (bps); the rest goes to the treasury. */
  disputeRewardBps: number;
  /** Milliseconds a sampled node has to commit. */
  commitMs: number;
  /** Milliseconds, after the last commit, for every committed node to reveal. */
  revealMs: number;
  /** Milliseconds each side has to answer one bisection round. */
  bisectRoundMs: number;
  /** Milliseconds the referee has to report a re-execution. */
  reexecuteMs: number;
  /** Reputation of a new node, and its bounds. */
  initialReputation: number;
  maxReputation: number;
  /** Reputation gained per settled, paid piece of work. */
  reputationSettled: number;
  /** Reputation lost per missed deadline. */
  reputationTimeout: number;
  /** Reputation lost per lost dispute. */
  reputationDispute: number;
  /** Largest trace (leaves) a reveal may claim: bounds the number of bisection rounds. */
  maxTraceLeaves: number;
}

/** The defaults used by `atoma ledger serve` and the simulator. */
export const DEFAULT_PARAMS: Readonly<Params> = Object.freeze({
  defaultSampleSize: 10,
  maxSampleSize: 64,
  minCollateral: 1_000_000,
  protocolFeeBps: 100,
  attesterSurchargeBps: 1_000,
  timeoutSlashBps: 1_000,
  disputeSlashBps: 10_000,
  disputeRewardBps: 5_000,
  commitMs: 30_000,
  revealMs: 10_000,
  bisectRoundMs: 10_000,
  reexecuteMs: 60_000,
  initialReputation: 100,
  maxReputation: 1_000,
  reputationSettled: 1,
  reputationTimeout: 10,
  reputationDispute: 100,
  maxTraceLeaves: 2 ** 32,
});

/** Amounts and times stay exact in a double below this bound. */
export const MAX_AMOUNT = 2 ** 50;
