/**
 * The longest delay a Node timer honours. setTimeout stores its delay in a signed 32-bit field:
 * a longer one (2^31 ms, about 24.9 days, or more) is replaced by 1 ms with only a warning, so a
 * generous user-supplied timeout would fire at once. Every duration that reaches a timer from
 * outside is checked against this bound, with an error naming the setting, rather than clamped:
 * a value that large is a mistake in units, not a wish to wait for weeks.
 */
import { fail } from './errors.js';

export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` when a timer can wait that long (a positive, finite number up to MAX_TIMER_MS); else ERR_RANGE naming `what`. */
export function timerMs(ms: number, what: string): number {
  if (typeof ms !== 'number' || !(ms > 0) || ms > MAX_TIMER_MS) fail('ERR_RANGE', `${what} must be from 1 to ${MAX_TIMER_MS} ms (about 24.8 days), got ${String(ms)}`);
  return ms;
}
