/**
 * Hugging Face `tokenizer.json` (BPE model) with `tokenizer_config.json` beside it: byte-level
 * tokenizers (ByteLevel pre-tokenizer/decoder, Split regexes, Digits) and SentencePiece-style
 * ones (Metaspace, or the Prepend + Replace normaliser pair of older Llama files, byte_fallback).
 * Anything else raises ERR_MODEL_UNSUPPORTED naming the component.
 */
import { fail } from '../../engine/errors.js';
import { brief } from '../../engine/brief.js';
import { BpeTokenizer, SPACE_MARK, type BpeOptions } from './bpe.js';
import { GPT2_PATTERN, compilePattern } from './pretokenize.js';
import type { AddedToken } from './special.js';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The components of a Sequence (or the one component) of a tokenizer.json section. */
function flatten(v: unknown, listKey: string, what: string): Json[] {
  if (!isObj(v)) return [];
  if (v.type === 'Sequence') {
    const list = v[listKey] ?? [];
    if (!Array.isArray(list)) fail('ERR_MODEL_FORMAT', `${what}: Sequence.${listKey} must be a list`);
    return list.flatMap((x) => flatten(x, listKey, what));
  }
  return [v];
}

/** A token given as a string or {content} in tokenizer_config.json. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content;
  return null;
}

/**
 * Builds a tokenizer from parsed tokenizer.json, tokenizer_config.json (or null) and config.json
 * (or null, for BOS/EOS ids when the tokenizer config does not name them).
 */
export function hfTokenizer(tok: unknown, tokConfig: unknown, modelConfig: unknown, what = 'tokenizer.json'): BpeTokenizer {
  if (!isObj(tok) || !isObj(tok.model)) fail('ERR_MODEL_FORMAT', `${what}: not a tokenizer.json (no model)`);
  const model = tok.model;
  if (model.type !== undefined && model.type !== 'BPE') fail('ERR_MODEL_UNSUPPORTED', `${what}: tokenizer model ${brief(model.type)} is not supported (BPE only)`);
  if (!isObj(model.vocab) || !Array.isArray(model.merges)) fail('ERR_MODEL_FORMAT', `${what}: BPE model needs vocab and merges`);

  // Vocabulary: ids may have gaps and added tokens may extend it.
  const addedRaw: Json[] = Array.isArray(tok.added_tokens)
    ? (tok.added_tokens as unknown[]).map((a) => (isObj(a) ? a : fail('ERR_MODEL_FORMAT', `${what}: added_tokens entries must be objects`)))
    : [];
  let size = 0;
  const vocab = model.vocab as Record<string, unknown>;
  for (const v of Object.values(vocab)) {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 1 << 24) fail('ERR_MODEL_FORMAT', `${what}: vocabulary id ${brief(v)} is not a sensible integer`);
    size = Math.max(size, (v as number) + 1);
  }
  for (const a of addedRaw) if (Number.isInteger(a.id) && (a.id as number) >= 0 && (a.id as number) <= 1 << 24) size = Math.max(size, (a.id as number) + 1);
  const tokens: string[] = new Array(size).fill('');
  for (const [t, id] of Object.entries(vocab)) tokens[id as number] = t;
  const added: AddedToken[] = addedRaw.map((a) => {
    if (!Number.isInteger(a.id) || typeof a.content !== 'string') fail('ERR_MODEL_FORMAT', `${what}: added token without id or content`);
    // Checked before the id indexes the vocabulary: tokens[338088718] = ... grows it to 338M entries.
    if ((a.id as number) < 0 || (a.id as number) > 1 << 24) fail('ERR_MODEL_FORMAT', `${what}: added token id ${brief(a.id)} is not a sensible integer`);
    tokens[a.id as number] = a.content;
    return { id: a.id as number, content: a.content, special: a.special === true };
  });
  const merges = (model.merges as unknown[]).map((m): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const i = m.indexOf(' ', 1);
      if (i > 0) return [m.slice(0, i), m.slice(i + 1)];
    }
    fail('ERR_MODEL_FORMAT', `${what}: bad merge ${brief(m)}`);
  });

  // Normalisers: Unicode forms apply; Prepend('▁') and Replace(' ', '▁') define SentencePiece style.
  const forms: ((s: string) => string)[] = [];
  let prepend = false;
  for (const n of flatten(tok.normalizer, 'normalizers', what)) {
    switch (n.type) {
      case 'NFC': case 'NFD': case 'NFKC': case 'NFKD': { const f = n.type; forms.push((s) => s.normalize(f)); break; }
      case 'Lowercase': forms.push((s) => s.toLowerCase()); break;
      case 'Prepend': if (n.prepend !== SPACE_MARK) fail('ERR_MODEL_UNSUPPORTED', `${what}: Prepend normaliser of ${brief(n.prepend)}`); prepend = true; break;
      case 'Replace': {
        const p = n.pattern as Json | undefined;
        if (!(isObj(p) && p.String === ' ' && n.content === SPACE_MARK)) fail('ERR_MODEL_UNSUPPORTED', `${what}: Replace normaliser other than ' ' -> '▁'`);
        break;
      }
      default: fail('ERR_MODEL_UNSUPPORTED', `${what}: normaliser ${brief(n.type)} is not supported`);
    }
  }
  const normalize = forms.length ? (s: string) => forms.reduce((acc, f) => f(acc), s) : undefined;

  const patterns: RegExp[] = [];
  let byteLevel = false;
  let addPrefixSpace = false;
  let metaspace: Json | null = null;
  for (const p of flatten(tok.pre_tokenizer, 'pretokenizers', what)) {
    switch (p.type) {
      case 'ByteLevel':
        byteLevel = true;
        addPrefixSpace = p.add_prefix_space === true;
        if (p.use_regex !== false) patterns.push(compilePattern(GPT2_PATTERN));
        break;
      case 'Split': {
        const pat = p.pattern as Json | undefined;
        if (p.invert === true || (p.behavior !== undefined && p.behavior !== 'Isolated')) fail('ERR_MODEL_UNSUPPORTED', `${what}: Split pre-tokenizer with behavior ${brief(p.behavior)}${p.invert ? ', inverted' : ''}`);
        if (isObj(pat) && typeof pat.Regex === 'string') patterns.push(compilePattern(pat.Regex));
        else if (isObj(pat) && typeof pat.String === 'string') patterns.push(new RegExp(pat.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu'));
        else fail('ERR_MODEL_FORMAT', `${what}: Split pre-tokenizer without a pattern`);
        break;
      }
      case 'Digits': patterns.push(p.individual_digits ? /\p{N}/gu : /\p{N}+/gu); break;
      case 'Metaspace': metaspace = p; break;
      default: fail('ERR_MODEL_UNSUPPORTED', `${what}: pre-tokenizer ${brief(p.type)} is not supported`);
    }
  }
  if (!byteLevel && flatten(tok.decoder, 'decoders', what).some((d) => d.type === 'ByteLevel')) byteLevel = true;

  const tc = isObj(tokConfig) ? tokConfig : {};
  const mc = isObj(modelConfig) ? modelConfig : {};
  const idOf = (text: string | null, fallback: unknown): number | null => {
    if (text !== null) {
      // Own keys only: a token text such as 'constructor' must not find Object.prototype's.
      const i = added.find((a) => a.content === text)?.id ?? (Object.hasOwn(vocab, text) ? (vocab[text] as number) : undefined);
      if (i !== undefined) return i;
    }
    const f = Array.isArray(fallback) ? fallback[0] : fallback;
    return Number.isInteger(f) && (f as number) >= 0 && (f as number) < tokens.length ? (f as number) : null;
  };
  let template: string | null = null;
  if (typeof tc.chat_template === 'string') template = tc.chat_template;
  else if (Array.isArray(tc.chat_template)) {
    const named = (tc.chat_template as unknown[]).filter(isObj);
    const d = named.find((t) => t.name === 'default') ?? named[0];
    if (d && typeof d.template === 'string') template = d.template;
  }
  const unk = typeof model.unk_token === 'string' && Object.hasOwn(vocab, model.unk_token) ? (vocab[model.unk_token] as number) : null;
  const common: Omit<BpeOptions, 'kind'> = {
    tokens, merges, added, normalize, unkId: unk,
    bosId: idOf(tokenText(tc.bos_token), mc.bos_token_id),
    eosId: idOf(tokenText(tc.eos_token), mc.eos_token_id),
    chatTemplate: template,
    ignoreMerges: model.ignore_merges === true,
  };
  if (byteLevel) {
    return new BpeTokenizer({ ...common, kind: 'byte-level', patterns, addPrefixSpace, addBos: tc.add_bos_token === true });
  }
  let spacePrefix: 'first' | 'after-special' | 'never' = prepend ? 'after-special' : 'never';
  let splitOnSpace = false;
  if (metaspace) {
    if (metaspace.replacement !== undefined && metaspace.replacement !== SPACE_MARK) fail('ERR_MODEL_UNSUPPORTED', `${what}: Metaspace replacement ${brief(metaspace.replacement)}`);
    const scheme = metaspace.prepend_scheme ?? (metaspace.add_prefix_space === false ? 'never' : 'always');
    spacePrefix = scheme === 'first' ? 'first' : scheme === 'never' ? 'never' : 'after-special';
    splitOnSpace = metaspace.split === true;
  }
  return new BpeTokenizer({
    ...common, kind: 'sentencepiece', spacePrefix, splitOnSpace, byteFallback: model.byte_fallback === true,
    addBos: tc.add_bos_token !== false,
  });
}
