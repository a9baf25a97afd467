/**
 * The referee's leaf answer (executor.ts refereeLeaf): the honest leaf, from a run of the
 * request's prefix only (the steps up to the disputed one, each once), with the leaves before it
 * checked against the agreed prefix the bisection recorded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info } from '../lib/engine/config.js';
import { AtomaError } from '../lib/engine/errors.js';
import { initModel } from '../lib/model/init.js';
import { LlamaModel } from '../lib/model/llama.js';
import { loadModel } from '../lib/model/load.js';
import { execute, refereeLeaf, replay, type Assignment, type Execution } from '../lib/node/executor.js';
import { Trace, splitPoint } from '../lib/protocol/trace.js';
import type { AgreedRange } from '../lib/protocol/types.js';

const dir = mkdtempSync(join(tmpdir(), 'atoma-referee-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let model: LlamaModel;
let L = 0;
const a: Assignment = { prompt: [5, 17, 230, 41], maxTokens: 6, seed: 9, temperature: 0.8 };
let honest: Execution;

beforeAll(async () => {
  const path = join(dir, 'm.gguf');
  initModel(path, { seed: 1 });
  model = new LlamaModel((await loadModel(path)).weights);
  L = model.config.blockCount;
  honest = execute(model, a);
});

/** The agreed ranges a bisection of `trace` down to leaf `i` records (machine.ts bisect): the left halves it passes. */
function agreedFor(trace: Trace, i: number): AgreedRange[] {
  const agreed: AgreedRange[] = [];
  for (let lo = 0, hi = trace.length; hi - lo > 1;) {
    const mid = lo + splitPoint(hi - lo);
    if (i < mid) hi = mid;
    else {
      agreed.push({ start: lo, end: mid, root: trace.root(lo, mid) });
      lo = mid;
    }
  }
  return agreed;
}

/** A side's trace for the honest tokens with `changes` (position -> token) applied and replayed. */
function sideWith(changes: Record<number, number>): Execution {
  const tokens = honest.tokens.map((t, i) => changes[i] ?? t);
  return replay(model, a.prompt, tokens);
}

describe('refereeLeaf', () => {
  it('answers the executor\'s leaf from one pass per step up to the disputed step, with no second forward', () => {
    const trace = Trace.fromLeafHashes(honest.leaves);
    const rows: number[] = [];
    const forward = model.forward.bind(model);
    model.forward = (segments, opts) => {
      rows.push(segments.reduce((n, s) => n + s.tokens.length, 0));
      return forward(segments, opts);
    };
    try {
      for (const index of [0, L - 1, 3 * L, 3 * L + 1, 6 * L - 1]) {
        rows.length = 0;
        expect(refereeLeaf(model, a, index, agreedFor(trace, index))).toEqual({ leafHash: trace.leaf(index), prefixMismatch: null });
        // The host path feeds the prompt, then one token per step: steps 0..step, nothing more.
        // (With ATOMA_DEVICE=cuda generate runs on the device and model.forward is not called.)
        if (info().device !== 'cuda') expect(rows).toEqual([a.prompt.length, ...Array<number>(Math.floor(index / L)).fill(1)]);
      }
    } finally {
      model.forward = forward;
    }
  });

  it('reports an agreed prefix both sides got wrong and still answers the honest leaf', () => {
    // Both sides changed token 0 the same way (a wrong shared prefix); one also changed token 2.
    const t0 = (honest.tokens[0] + 1) % model.config.vocabSize, t2 = (honest.tokens[2] + 1) % model.config.vocabSize;
    const sideA = sideWith({ 0: t0 }), sideB = sideWith({ 0: t0, 2: t2 });
    const first = sideA.leaves.findIndex((x, i) => !x.equals(sideB.leaves[i]));
    expect(first).toBe(3 * L);
    const agreed = agreedFor(Trace.fromLeafHashes(sideA.leaves), first);
    expect(agreedFor(Trace.fromLeafHashes(sideB.leaves), first)).toEqual(agreed);
    const honestTrace = Trace.fromLeafHashes(honest.leaves);
    const wrong = agreed.find((r) => honestTrace.root(r.start, r.end) !== r.root);
    expect(wrong).toBeDefined();
    const r = refereeLeaf(model, a, first, agreed);
    expect(r).toEqual({ leafHash: honestTrace.leaf(first), prefixMismatch: wrong });
    // Neither side's disputed leaf is the honest one: both lose.
    expect(r.leafHash).not.toBe(sideA.leaves[first].toString('hex'));
    expect(r.leafHash).not.toBe(sideB.leaves[first].toString('hex'));
  });

  it('refuses a leaf outside the trace and agreed ranges that do not lie before the leaf (ERR_RANGE)', () => {
    const code = (f: () => unknown) => { try { f(); } catch (e) { return e instanceof AtomaError ? e.code : String(e); } return 'no error'; };
    const root = honest.leaves[0].toString('hex');
    expect(code(() => refereeLeaf(model, a, 6 * L))).toBe('ERR_RANGE');
    expect(code(() => refereeLeaf(model, a, -1))).toBe('ERR_RANGE');
    for (const bad of [{ start: 0, end: L + 1 }, { start: 2, end: 2 }, { start: -1, end: 1 }, { start: 0.5, end: 1 }])
      expect(code(() => refereeLeaf(model, a, L, [{ ...bad, root }]))).toBe('ERR_RANGE');
  });
});
