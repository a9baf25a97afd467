/**
 * A short, safe rendering of an untrusted value for an error message. String() and
 * JSON.stringify recurse into nested lists: a value nested 6,000 deep, which JSON.parse accepts,
 * makes them throw a RangeError, and a message built from it turns a typed refusal into an
 * untyped crash. Scalars are shown (strings quoted and cut), containers only described.
 *
 * @example
 * fail('ERR_MODEL_FORMAT', `vocabulary id ${brief(v)} is not a sensible integer`);
 */
export function brief(v: unknown, max = 40): string {
  if (typeof v === 'string') return JSON.stringify(v.length > max ? `${v.slice(0, max)}...` : v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'undefined') return String(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}
