/**
 * End-of-generation tokens: the ids after which a model's turn is over. Chat models end a turn
 * with a marker that is often not their EOS (Llama 3 `<|eot_id|>`, Gemma `<end_of_turn>`, ChatML
 * `<|im_end|>`), so stopping at EOS alone runs past the answer. The set is llama.cpp's
 * (llama-vocab.cpp, `special_eog_ids`): EOS, the file's EOT and EOM ids, and the tokens whose text is
 * one of these markers, with its one exception: harmony vocabularies (`<|return|>` and `<|call|>`,
 * or `<|calls|>` and `<|flush|>`) continue after `<|end|>`.
 */

const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
  // Fill-in-the-middle pad, repository and file separators (llama.cpp's FIM_PAD, FIM_REP, FIM_SEP).
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
]);

/** The end-of-generation ids of a vocabulary, ascending. */
export function endOfGenerationIds(tokens: readonly string[], fileIds: readonly (number | null)[]): number[] {
  const ids = new Set<number>();
  for (const id of fileIds) if (id !== null) ids.add(id);
  const byText = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (EOG_TEXTS.has(t)) {
      ids.add(id);
      if (!byText.has(t)) byText.set(t, id);
    }
  });
  const has = (t: string) => [...ids].some((id) => tokens[id] === t);
  if (byText.has('<|end|>') && ((has('<|return|>') && has('<|call|>')) || (has('<|calls|>') && has('<|flush|>')))) {
    for (const id of [...ids]) if (tokens[id] === '<|end|>') ids.delete(id);
  }
  return [...ids].sort((a, b) => a - b);
}
