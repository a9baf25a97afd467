/** What a campaign tells a fuzz child process (argv) and what the child answers (JSON lines on fd 3). */
import type { CaseOutcome } from './target.js';

export interface ChildJob {
  target: string;
  seed: string;
  /** Case indices [from, to), or input files to replay. */
  from?: number;
  to?: number;
  files?: string[];
  /** The in-flight case's input is written here before it runs: what a crash or hang leaves behind. */
  scratch: string;
  /** Where the child writes the input of a case that fails with an untyped error (null: nowhere). */
  failuresDir: string | null;
}

export type ChildMessage =
  | { t: 'ready'; seeds: number }
  | { t: 'begin'; i: number }
  | { t: 'end'; i: number; outcome: CaseOutcome }
  | { t: 'done' };

/** The name of a failing case's input file. */
export function caseFileName(target: string, seed: string, index: number): string {
  return `${target}-seed${seed.replace(/[^\w.-]/g, '_')}-case${index}.bin`;
}

