import { fail } from '../../engine/errors.js';
import { runDevnet, type ByzantineBehavior, type DevnetProgress, type DevnetReport } from '../../node/devnet.js';
import { simulate, type Behavior } from '../../protocol/simulate.js';
import { parse } from '../args.js';

const HELP = `usage: atoma devnet [--nodes N] [--sample n] [--byzantine B] [--requests R]
                    [--behavior tamper|copy|silent|mixed] [--tokens T] [--concurrency C] [--seed S] [--json]
       atoma devnet --simulate [--nodes N] [--sample n] [--byzantine B] [--requests R]
                    [--behavior tamper|copy|silent|mixed] [--seed S] [--json]

Defaults: --nodes 10, --sample 3, --byzantine 0, --requests 50, --behavior mixed, --tokens 8,
--concurrency 8, --seed 1; with --simulate: --nodes 100, --sample 10, --requests 100000,
--behavior tamper.

Without --simulate: a whole network on this machine. The ledger service (SQLite in a temp dir,
127.0.0.1), N nodes as separate processes running the real node (ATOMA_ISA scalar/avx2/avx512,
ATOMA_THREADS 1 or 2: each on its own CPU path, in parallel), a referee process, and a client
sending R inference requests (T tokens each, default 8) to a tiny init model. B of
the nodes are byzantine (default mixed: tamper, copy commitments, go silent). Nodes execute with
the real engine, commit, reveal; disagreements are bisected and the referee recomputes one leaf.
Reports settled requests, disputes, false disputes, tampered results settled, slashes, payments
and request latency percentiles. Progress goes to stderr.

With --simulate: the protocol rules in memory with simulated nodes (no inference). Reports the
rate at which a tampered result settled, against p^n (p = B/N) and the hypergeometric value.`;

function int(v: string | undefined, name: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (v === undefined || !Number.isSafeInteger(n) || n < 0) fail('ERR_USAGE', `--${name} must be a non-negative integer`);
  return n;
}

/** A bar redrawn in place on a terminal; plain lines (every 10%) when stderr is a file or pipe. */
function progressPrinter(): (p: DevnetProgress) => void {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  return (p) => {
    const text = `${p.done}/${p.total} requests, ${p.settled} settled, ${p.disputes} disputes, ${p.slashes} slashes`;
    if (tty) {
      const width = 30, fill = Math.round((p.done / p.total) * width);
      process.stderr.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text}\x1b[K${p.done === p.total ? '\n' : ''}`);
    } else {
      const decile = Math.floor((p.done / p.total) * 10);
      if (decile !== lastDecile) { lastDecile = decile; process.stderr.write(`devnet: ${text}\n`); }
    }
  };
}

function table(r: DevnetReport): string {
  const rows: [string, string | number][] = [
    ['nodes / sample / byzantine', `${r.nodes} / ${r.sample} / ${r.byzantine} (${r.behavior})`],
    ['requests', r.requests], ['settled', r.settled], ['failed', r.failed], ['refused', r.refused],
    ['disputes', r.disputes], ['  bisected to one leaf', r.leafDisputes], ['  won by honest nodes', r.disputesWonByHonest],
    ['falseDisputes', r.falseDisputes], ['tamperedSettled', r.tamperedSettled], ['settled with no honest node', r.settledWithoutHonest],
    ['slashes', `${r.slashes} (${r.timeouts} timeouts; byzantine nodes slashed ${r.byzantineSlashed}, honest ${r.honestSlashed})`],
    ['payments', `${r.payments} (${r.paidAmount} units)`],
    ['honest disagreements', r.honestDisagreements], ['cross-path agreements', r.crossPathAgreements],
    ['latency p50 / p90 / p99', `${r.latencyMs.p50.toFixed(0)} / ${r.latencyMs.p90.toFixed(0)} / ${r.latencyMs.p99.toFixed(0)} ms`],
    ['executions', r.executions], ['ledger events', `${r.ledgerEvents}, ${r.signedEvents} signed (replay and signatures ${r.ledgerVerified ? 'verified' : 'DIFFER'})`],
    ['node paths', r.paths.map((p) => `${p.isa}/${p.threads}t${p.role === 'honest' ? '' : ` (${p.role})`}`).join(', ')],
    ['seconds', r.seconds.toFixed(2)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(28)} ${v}`).join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    simulate: { type: 'boolean' }, nodes: { type: 'string' }, sample: { type: 'string' }, byzantine: { type: 'string' },
    requests: { type: 'string' }, behavior: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' },
    tokens: { type: 'string' }, concurrency: { type: 'string' },
  }, false);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const behavior = (values.behavior ?? (values.simulate ? 'tamper' : 'mixed')) as Behavior;
  if (!['tamper', 'copy', 'silent', 'mixed'].includes(behavior)) fail('ERR_USAGE', '--behavior must be tamper, copy, silent or mixed');
  if (!values.simulate) {
    const r = await runDevnet({
      nodes: int(values.nodes, 'nodes', 10), sample: int(values.sample, 'sample', 3), byzantine: int(values.byzantine, 'byzantine', 0),
      requests: int(values.requests, 'requests', 50), behavior: behavior as ByzantineBehavior, seed: int(values.seed, 'seed', 1),
      maxTokens: int(values.tokens, 'tokens', 8), concurrency: int(values.concurrency, 'concurrency', 8), onProgress: progressPrinter(),
    });
    console.log(values.json ? JSON.stringify(r) : table(r));
    return r.complete && r.errors.length === 0 ? 0 : 1;
  }
  if (values.tokens !== undefined || values.concurrency !== undefined) fail('ERR_USAGE', '--tokens and --concurrency apply to the real devnet (without --simulate)');
  const r = simulate({
    nodes: int(values.nodes, 'nodes', 100), sample: int(values.sample, 'sample', 10), byzantine: int(values.byzantine, 'byzantine', 0),
    requests: int(values.requests, 'requests', 100_000), behavior, seed: int(values.seed, 'seed', 1),
  });
  if (values.json) console.log(JSON.stringify(r));
  else for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(20)} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(6) : v}`);
  return 0;
}
