/**
 * Prometheus metrics in the text exposition format (version 0.0.4): request counts by endpoint
 * and status, token counters, queue depth, a request latency histogram and, on a ledger, the
 * amounts paid to, rewarded to and slashed from this node since it started.
 */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private completionTokens = 0;
  private readonly bucketCounts = new Array<number>(BUCKETS.length).fill(0);
  private latencySum = 0;
  private latencyCount = 0;

  constructor(private readonly gauges: {
    queueDepth(): number;
    running(): number;
    /** The protocol side's running totals (participant.ts), when the node is on a ledger. */
    ledger?(): { paid: number; rewarded: number; slashed: number } | null;
  }) {}

  request(endpoint: string, status: number, seconds: number): void {
    const k = labels({ endpoint, status: String(status) });
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.bucketCounts[i]++;
    });
    this.latencySum += seconds;
    this.latencyCount++;
  }

  tokens(prompt: number, completion: number): void {
    this.promptTokens += prompt;
    this.completionTokens += completion;
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP atoma_requests_total HTTP requests by endpoint and status.', '# TYPE atoma_requests_total counter');
    for (const [k, v] of this.requests) out.push(`atoma_requests_total${k} ${v}`);
    out.push('# HELP atoma_prompt_tokens_total Prompt tokens processed.', '# TYPE atoma_prompt_tokens_total counter', `atoma_prompt_tokens_total ${this.promptTokens}`);
    out.push('# HELP atoma_completion_tokens_total Tokens generated.', '# TYPE atoma_completion_tokens_total counter', `atoma_completion_tokens_total ${this.completionTokens}`);
    out.push('# HELP atoma_queue_depth Jobs waiting for an engine.', '# TYPE atoma_queue_depth gauge', `atoma_queue_depth ${this.gauges.queueDepth()}`);
    out.push('# HELP atoma_jobs_running Jobs in a running batch.', '# TYPE atoma_jobs_running gauge', `atoma_jobs_running ${this.gauges.running()}`);
    out.push('# HELP atoma_request_duration_seconds HTTP request latency.', '# TYPE atoma_request_duration_seconds histogram');
    BUCKETS.forEach((b, i) => out.push(`atoma_request_duration_seconds_bucket{le="${b}"} ${this.bucketCounts[i]}`));
    out.push(`atoma_request_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`);
    out.push(`atoma_request_duration_seconds_sum ${this.latencySum}`, `atoma_request_duration_seconds_count ${this.latencyCount}`);
    const ledger = this.gauges.ledger?.();
    if (ledger) {
      out.push('# HELP atoma_ledger_amount_total Ledger units paid, rewarded (from slashed losers) and slashed, since start.',
        '# TYPE atoma_ledger_amount_total counter');
      for (const kind of ['paid', 'rewarded', 'slashed'] as const) out.push(`atoma_ledger_amount_total{kind="${kind}"} ${ledger[kind]}`);
    }
    return out.join('\n') + '\n';
  }
}
