/**
 * One BPE tokenizer for the families model files carry:
 *  - byte-level (GPT-2, Llama 3, Qwen2, SmolLM; GGUF `gpt2`, tokenizer.json ByteLevel): text is
 *    pre-split by regex, each piece's UTF-8 bytes are mapped to printable characters, merged by
 *    merge rank;
 *  - SentencePiece-style (Llama 2, TinyLlama; GGUF `llama`, tokenizer.json Metaspace): spaces
 *    become '▁' (with a leading one), characters are merged by vocabulary score (GGUF) or merge
 *    rank (tokenizer.json), and characters outside the vocabulary fall back to <0xNN> byte tokens.
 * Added tokens are matched first (special ones only with allowSpecial).
 */
import { fail } from '../../engine/errors.js';
import type { Tokenizer } from '../types.js';
import { BYTE_TO_CHAR, byteTokenValue, fromByteLevel } from './bytes.js';
import { renderChat, renderChatSegments } from './chat.js';
import { endOfGenerationIds } from './eog.js';
import { mergeSymbols, type PairPriority } from './merge.js';
import { splitPieces } from './pretokenize.js';
import { splitAdded, type AddedToken, type Fragment } from './special.js';

export const SPACE_MARK = '\u2581'; // ▁

export interface BpeOptions {
  kind: 'byte-level' | 'sentencepiece';
  /** Token texts by id, as the vocabulary stores them. */
  tokens: readonly string[];
  /** Merge pairs in rank order; when absent, merges are chosen by `scores` (SentencePiece). */
  merges?: readonly (readonly [string, string])[];
  scores?: ArrayLike<number>;
  added: readonly AddedToken[];
  /** Byte-level: regex sequence splitting text into pieces. */
  patterns?: readonly RegExp[];
  /** Byte-level: prepend a space to text that does not start with one (ByteLevel add_prefix_space). */
  addPrefixSpace?: boolean;
  /** SentencePiece: when a '▁' is prepended to raw text: at the start only, also after added tokens, or never. */
  spacePrefix?: 'first' | 'after-special' | 'never';
  /** SentencePiece: split before every '▁' before merging (tokenizer.json Metaspace split). */
  splitOnSpace?: boolean;
  byteFallback?: boolean;
  /** Emit a whole piece that is in the vocabulary without merging (Llama 3 `ignore_merges`). */
  ignoreMerges?: boolean;
  /** Unicode normalisation applied to raw text (tokenizer.json NFC/NFKC...). */
  normalize?: (s: string) => string;
  unkId?: number | null;
  bosId: number | null;
  eosId: number | null;
  addBos?: boolean;
  chatTemplate?: string | null;
  /** End-of-turn ids the file names besides EOS (GGUF eot_token_id, eom_token_id). */
  endOfTurnIds?: readonly (number | null)[];
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** The model's preference for a BOS at the start of a prompt (encode adds one only when asked). */
  readonly addBosByDefault: boolean;
  readonly chatTemplate: string | null;
  /** Ids that end generation: EOS and the end-of-turn markers, as llama.cpp counts them (eog.ts). */
  readonly stopIds: readonly number[];
  readonly kind: 'byte-level' | 'sentencepiece';
  private readonly ids = new Map<string, number>();
  private readonly priority: PairPriority;
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly tokenBytesCache: (Uint8Array | undefined)[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly cache = new Map<string, number[]>();

  constructor(private readonly o: BpeOptions) {
    this.kind = o.kind;
    this.vocabSize = o.tokens.length;
    this.bosId = o.bosId;
    this.eosId = o.eosId;
    this.addBosByDefault = o.addBos ?? false;
    this.chatTemplate = o.chatTemplate ?? null;
    for (const id of [o.bosId, o.eosId, o.unkId]) {
      if (id != null && (!Number.isInteger(id) || id < 0 || id >= o.tokens.length)) fail('ERR_TOKENIZER', `special token id ${id} is outside the vocabulary of ${o.tokens.length}`);
    }
    // First occurrence wins when a vocabulary repeats a text (some do, for unused slots).
    o.tokens.forEach((t, id) => { if (!this.ids.has(t)) this.ids.set(t, id); });
    for (const a of o.added) {
      if (!Number.isInteger(a.id) || a.id < 0 || a.id >= o.tokens.length) fail('ERR_TOKENIZER', `added token '${a.content}' has id ${a.id} outside the vocabulary`);
      this.addedById.set(a.id, a);
    }
    if (o.kind === 'sentencepiece') {
      o.tokens.forEach((t, id) => { const b = byteTokenValue(t); if (b >= 0 && this.byteIds[b] < 0) this.byteIds[b] = id; });
    }
    this.tokenBytesCache = new Array(o.tokens.length);
    this.stopIds = endOfGenerationIds(o.tokens, [o.eosId, ...(o.endOfTurnIds ?? [])]);
    if (o.merges) {
      const ranks = new Map<string, number>();
      o.merges.forEach(([a, b], r) => { const k = a + '\u0001' + b; if (!ranks.has(k)) ranks.set(k, r); });
      this.priority = (a, b) => ranks.get(a + '\u0001' + b);
    } else if (o.scores) {
      const scores = o.scores;
      if (scores.length !== o.tokens.length) fail('ERR_TOKENIZER', `${scores.length} scores for ${o.tokens.length} tokens`);
      this.priority = (a, b) => {
        const id = this.ids.get(a + b);
        return id === undefined ? undefined : -scores[id];
      };
    } else {
      fail('ERR_TOKENIZER', 'a BPE tokenizer needs merges or scores');
    }
  }

  /** The id of a token text, if the vocabulary has it. */
  tokenId(text: string): number | undefined {
    return this.ids.get(text);
  }

  /**
   * Text to ids. Special tokens in the text become their ids only with allowSpecial (default
   * false, so user text cannot inject control tokens); addBos (default false) prepends BOS.
   */
  encode(text: string, opts: { addBos?: boolean; allowSpecial?: boolean } = {}): number[] {
    if (typeof text !== 'string') fail('ERR_ARGUMENT', 'encode: text must be a string');
    return this.encodeFragments(splitAdded(text, this.o.added, opts.allowSpecial === true), opts.addBos === true);
  }

  /**
   * A chat to ids: the template's own text is read with special tokens, message content without
   * (so `<|eot_id|>` typed by a user stays text), and raw text on both sides of a content boundary
   * is joined before BPE, as llama.cpp reads the whole rendering. addBos (default true) adds BOS
   * only when the rendering does not already start with it (Llama 3 templates write it themselves).
   */
  encodeChat(messages: { role: string; content: string }[], opts: { addGenerationPrompt?: boolean; addBos?: boolean } = {}): number[] {
    const frags: Fragment[] = [];
    for (const seg of renderChatSegments(this.chatTemplate, messages, this.chatVars(opts.addGenerationPrompt ?? true))) {
      for (const f of splitAdded(seg.text, this.o.added, seg.special)) {
        const last = frags[frags.length - 1];
        if ('text' in f && last !== undefined && 'text' in last) frags[frags.length - 1] = { text: last.text + f.text };
        else frags.push(f);
      }
    }
    const startsWithBos = frags.length > 0 && 'id' in frags[0] && frags[0].id === this.bosId;
    return this.encodeFragments(frags, (opts.addBos ?? true) && !startsWithBos);
  }

  private encodeFragments(frags: readonly Fragment[], addBos: boolean): number[] {
    const out: number[] = [];
    if (addBos) {
      if (this.bosId === null) fail('ERR_TOKENIZER', 'encode: this tokenizer has no BOS token');
      out.push(this.bosId);
    }
    let first = true;
    let afterAdded = false;
    for (const f of frags) {
      if ('id' in f) {
        out.push(f.id);
        afterAdded = true;
        // A leading BOS written in the text leaves the next text "first", as if added by addBos.
        first = first && f.id === this.bosId;
      } else {
        this.encodeRaw(f.text, first, afterAdded, out);
        afterAdded = false;
        first = false;
      }
    }
    return out;
  }

  private encodeRaw(raw: string, first: boolean, afterAdded: boolean, out: number[]): void {
    let text = this.o.normalize ? this.o.normalize(raw) : raw;
    if (this.o.kind === 'byte-level') {
      if (this.o.addPrefixSpace && first && !text.startsWith(' ')) text = ' ' + text;
      for (const piece of this.o.patterns ? splitPieces(text, this.o.patterns) : [text]) this.encodePiece(piece, out);
      return;
    }
    const mode = this.o.spacePrefix ?? 'first';
    if ((mode === 'first' && first) || (mode === 'after-special' && (first || afterAdded))) text = ' ' + text;
    text = text.replaceAll(' ', SPACE_MARK);
    if (this.o.splitOnSpace) {
      for (const piece of text.split(new RegExp(`(?=${SPACE_MARK})`, 'u'))) if (piece) this.encodePiece(piece, out);
    } else {
      this.encodePiece(text, out);
    }
  }

  /** BPE over one piece, memoised for the short pieces byte-level text splits into. */
  private encodePiece(piece: string, out: number[]): void {
    const cacheable = piece.length <= 64;
    const hit = cacheable ? this.cache.get(piece) : undefined;
    if (hit) {
      for (const id of hit) out.push(id);
      return;
    }
    const ids: number[] = [];
    if (this.o.kind === 'byte-level') {
      let mapped = '';
      for (const b of utf8.encode(piece)) mapped += BYTE_TO_CHAR[b];
      const whole = this.o.ignoreMerges ? this.ids.get(mapped) : undefined;
      const symbols = whole !== undefined ? [mapped] : mergeSymbols([...mapped], this.priority);
      for (const s of symbols) this.pushSymbol(s, ids);
    } else {
      const whole = this.o.ignoreMerges ? this.ids.get(piece) : undefined;
      const symbols = whole !== undefined ? [piece] : mergeSymbols([...piece], this.priority);
      for (const s of symbols) this.pushSymbol(s, ids);
    }
    if (cacheable) {
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(piece, ids);
    }
    for (const id of ids) out.push(id);
  }

  private pushSymbol(s: string, ids: number[]): void {
    const id = this.ids.get(s);
    if (id !== undefined) {
      ids.push(id);
      return;
    }
    if (this.o.kind === 'sentencepiece' && this.o.byteFallback !== false) {
      const bytes = utf8.encode(s);
      if (bytes.every((b) => this.byteIds[b] >= 0)) {
        for (const b of bytes) ids.push(this.byteIds[b]);
        return;
      }
    }
    if (this.o.kind === 'byte-level') {
      // A byte-level vocabulary holds all 256 byte characters; split to them when a merge result is absent.
      for (const ch of s) {
        const cid = this.ids.get(ch);
        if (cid === undefined) {
          if (this.o.unkId == null) fail('ERR_TOKENIZER', `byte-level vocabulary lacks the byte character '${ch}'`);
          ids.push(this.o.unkId);
        } else ids.push(cid);
      }
      return;
    }
    if (this.o.unkId == null) fail('ERR_TOKENIZER', `cannot encode '${s}': not in the vocabulary, no byte fallback and no unknown token`);
    ids.push(this.o.unkId);
  }

  /** The bytes one token stands for (added tokens: their text; '▁' as a space; <0xNN> as the byte). */
  tokenBytes(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) fail('ERR_TOKENIZER', `token id ${id} is outside the vocabulary of ${this.vocabSize}`);
    let b = this.tokenBytesCache[id];
    if (b === undefined) {
      const text = this.o.tokens[id];
      const added = this.addedById.get(id);
      if (added) b = utf8.encode(added.content);
      else if (this.o.kind === 'byte-level') b = fromByteLevel(text) ?? utf8.encode(text);
      else {
        const v = byteTokenValue(text);
        b = v >= 0 ? Uint8Array.of(v) : utf8.encode(text.replaceAll(SPACE_MARK, ' '));
      }
      this.tokenBytesCache[id] = b;
    }
    return b;
  }

  /**
   * Ids to text. SentencePiece models drop the one space the encoder prepended (at the start, and
   * after added tokens when the prefix is added there), so decode(encode(s)) == s.
   */
  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    const mode = this.o.kind === 'sentencepiece' ? this.o.spacePrefix ?? 'first' : 'never';
    let atStart = true;
    for (const id of ids) {
      let b = this.tokenBytes(id);
      const added = this.addedById.has(id);
      if (!added && atStart && mode !== 'never' && b[0] === 0x20) b = b.subarray(1);
      // After an added token, the next raw text got a prefix only in 'after-special' mode.
      atStart = added ? mode === 'after-special' || (atStart && id === this.bosId) : false;
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return utf8Decoder.decode(all);
  }

  applyChatTemplate(messages: { role: string; content: string }[], opts: { addGenerationPrompt?: boolean } = {}): string {
    return renderChat(this.chatTemplate, messages, this.chatVars(opts.addGenerationPrompt ?? true));
  }

  private chatVars(addGenerationPrompt: boolean): { bosToken: string; eosToken: string; addGenerationPrompt: boolean } {
    const text = (id: number | null) => (id === null ? '' : utf8Decoder.decode(this.tokenBytes(id)));
    return { bosToken: text(this.bosId), eosToken: text(this.eosId), addGenerationPrompt };
  }
}
