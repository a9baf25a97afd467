/**
 * The protocol's state, the events that change it and the effects it asks the outside world to
 * carry out. Everything is plain JSON (hex strings, safe integers), so the embedded ledger can
 * store it and the service can send it as is. Ids are 32 bytes written as 64 lowercase hex digits
 * (a Sui address, a BLAKE3 digest): fixed length keeps every byte encoding unambiguous.
 */
import type { Params } from './params.js';

export type Hex32 = string;
export type TaskKind = 'inference' | 'wasm';
export type Security = { mode: 'none' } | { mode: 'sampling'; n: number };

export interface NodeRecord {
  id: Hex32;
  collateral: number;
  reputation: number;
  registeredAt: number;
  /** Task id -> price per request this node asks. A node serves only these tasks. */
  subscriptions: Record<Hex32, number>;
  settled: number;
  timeouts: number;
  disputesLost: number;
  disputesWon: number;
}

export interface TaskRecord {
  id: Hex32;
  creator: Hex32;
  kind: TaskKind;
  /** BLAKE3 digest of the model file or WASM module. */
  digest: Hex32;
  security: Security;
  minReputation: number;
  createdAt: number;
}

/** One sampled position of a request. A replaced node leaves its slot for a new one. */
export interface Slot {
  node: Hex32;
  price: number;
  status: 'committing' | 'committed' | 'revealed' | 'dropped';
  deadline: number;
  commitment?: Hex32;
  outputDigest?: Hex32;
  traceRoot?: Hex32;
  traceLeaves?: number;
}

/** The nodes that revealed the same (outputDigest, traceRoot, traceLeaves). */
export interface Side {
  key: string;
  outputDigest: Hex32;
  traceRoot: Hex32;
  traceLeaves: number;
  nodes: Hex32[];
}

/** A subtree both sides of a dispute agree on: leaves [start, end) with this RFC 6962 root. */
export interface AgreedRange { start: number; end: number; root: Hex32 }

export interface Dispute {
  a: Side;
  b: Side;
  /** 'bisect': sides reveal child roots of [lo, hi); 'reexecute': waiting for the referee. */
  stage: 'bisect' | 'reexecute';
  /** 'leaf': bisection found the first differing leaf; 'full': the traces cannot be bisected
   *  (different lengths or equal roots with different outputs), so the referee re-runs it all. */
  mode: 'leaf' | 'full';
  lo: number;
  hi: number;
  rootA: Hex32;
  rootB: Hex32;
  answerA?: [Hex32, Hex32];
  answerB?: [Hex32, Hex32];
  agreed: AgreedRange[];
  deadline: number;
  round: number;
}

export interface RequestRecord {
  id: Hex32;
  task: Hex32;
  client: Hex32;
  maxPrice: number;
  escrow: number;
  /** BLAKE3 of the request's input bytes, stored on the ledger (Ledger.putInput, POST /inputs). */
  input: Hex32;
  /** The beacon this request's sample was drawn from (ledger beacon mixed with fresh entropy). */
  beacon: Hex32;
  requested: number;
  slots: Slot[];
  /** Every node ever sampled for the request (replacements are drawn from the others). */
  drawn: Hex32[];
  replacements: number;
  phase: 'commit' | 'reveal' | 'dispute';
  createdAt: number;
  /** Sides still to be judged against the current champion, in order. */
  challengers: Side[];
  champion?: Side;
  dispute?: Dispute;
  /** Collateral slashed from losing sides, shared by the winners at settlement. */
  rewardPool: number;
  losers: Hex32[];
}

/**
 * One published node encryption key (X25519), as the ledger keeps it. Clients seal confidential
 * requests to the newest key valid at the time (lib/crypto/seal.ts); the log makes every
 * rotation public and replayable.
 */
export interface KeyRecord {
  /** First 16 bytes of SHA-256 of the raw public key, 32 hex digits (lib/crypto/keys.ts keyIdOf). */
  keyId: string;
  /** Raw 32-byte X25519 public key, 64 lowercase hex digits. */
  publicKey: Hex32;
  notBefore: number;
  notAfter: number;
  /** When the ledger accepted it (the event's `at`). */
  publishedAt: number;
  /** Opaque attestation evidence (base64 or hex text, at most MAX_ATTESTATION characters). */
  attestation?: string;
}

export interface State {
  params: Params;
  /** Number of events applied (the next event's sequence number). */
  seq: number;
  /** Latest event time (ms); events never go back in time. */
  time: number;
  beacon: Hex32;
  treasury: number;
  minted: number;
  accounts: Record<Hex32, number>;
  nodes: Record<Hex32, NodeRecord>;
  tasks: Record<Hex32, TaskRecord>;
  requests: Record<Hex32, RequestRecord>;
  /** Node id -> its published keys, oldest first (at most MAX_KEYS_PER_NODE). */
  keys: Record<Hex32, KeyRecord[]>;
  /** Ed25519 public keys of the referees named by genesis: only they may post `reexecuted`. */
  referees: Hex32[];
}

/**
 * The signature a participant puts on its event (lib/protocol/signing.ts): a fresh nonce and an
 * Ed25519 signature by the event's actor id. The ledger checks both when it admits the event and
 * logs them with it; the rules themselves ignore them.
 */
export interface Signed { nonce?: string; sig?: string }

/**
 * Inputs. `at` (ms) and `entropy` are stamped by the ledger, never taken from a client. Ids of
 * actors (node, client, creator, referee) are Ed25519 public keys.
 */
export type Event =
  | { type: 'genesis'; at: number; params: Params; beacon: Hex32; referees: Hex32[] }
  | ({ type: 'deposit'; at: number; account: Hex32; amount: number } & Signed)
  | ({ type: 'register'; at: number; node: Hex32; collateral: number } & Signed)
  | ({ type: 'addCollateral'; at: number; node: Hex32; amount: number } & Signed)
  | ({ type: 'createTask'; at: number; task: Hex32; creator: Hex32; kind: TaskKind; digest: Hex32; security: Security; minReputation: number } & Signed)
  | ({ type: 'subscribe'; at: number; node: Hex32; task: Hex32; price: number } & Signed)
  | ({ type: 'unsubscribe'; at: number; node: Hex32; task: Hex32 } & Signed)
  | ({ type: 'publishKey'; at: number; node: Hex32; keyId: string; publicKey: Hex32; notBefore: number; notAfter: number; attestation?: string } & Signed)
  | ({ type: 'request'; at: number; request: Hex32; task: Hex32; client: Hex32; maxPrice: number; minNodes: number; input: Hex32; entropy: Hex32 } & Signed)
  | ({ type: 'commit'; at: number; request: Hex32; node: Hex32; commitment: Hex32 } & Signed)
  | ({ type: 'reveal'; at: number; request: Hex32; node: Hex32; outputDigest: Hex32; traceRoot: Hex32; traceLeaves: number; salt: Hex32 } & Signed)
  | ({ type: 'bisect'; at: number; request: Hex32; node: Hex32; left: Hex32; right: Hex32 } & Signed)
  | ({ type: 'reexecuted'; at: number; request: Hex32; referee: Hex32; leafHash?: Hex32; outputDigest?: Hex32; traceRoot?: Hex32; traceLeaves?: number } & Signed)
  | { type: 'beacon'; at: number; entropy: Hex32 }
  | { type: 'tick'; at: number };

export type EventType = Event['type'];

/** Outputs: what happened, and what the outside world must do (sample notices, re-execution). */
export type Effect =
  | { type: 'sampled'; request: Hex32; nodes: Hex32[]; eligible: number; beacon: Hex32; deadline: number }
  | { type: 'replaced'; request: Hex32; old: Hex32; node: Hex32 | null; deadline: number }
  | { type: 'revealPhase'; request: Hex32; deadline: number }
  | { type: 'slashed'; node: Hex32; amount: number; reason: 'timeout' | 'dispute'; request: Hex32 }
  | { type: 'disputeOpened'; request: Hex32; a: Hex32[]; b: Hex32[]; mode: 'leaf' | 'full' }
  | { type: 'bisectRound'; request: Hex32; lo: number; hi: number; split: number; deadline: number }
  | { type: 'reexecute'; request: Hex32; mode: 'leaf' | 'full'; leafIndex: number; agreedPrefix: AgreedRange[]; deadline: number }
  | { type: 'disputeResolved'; request: Hex32; winner: Hex32[]; losers: Hex32[]; leafIndex: number; reason: string }
  | { type: 'paid'; node: Hex32; amount: number; request: Hex32 }
  | { type: 'rewarded'; node: Hex32; amount: number; request: Hex32 }
  | { type: 'settled'; request: Hex32; outputDigest: Hex32; traceRoot: Hex32; nodes: Hex32[]; charged: number; refunded: number }
  | { type: 'failed'; request: Hex32; reason: string; refunded: number }
  | { type: 'closed'; request: RequestRecord; outcome: 'settled' | 'failed'; at: number };

export interface Transition { state: State; effects: Effect[] }
