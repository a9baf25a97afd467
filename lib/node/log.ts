/** Structured logs: one JSON object per line on stderr ({ts, level, msg, ...fields}). */
export type Logger = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const stderrLogger: Logger = (level, msg, fields = {}) => {
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }) + '\n');
};
