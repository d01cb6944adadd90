/**
 * How a builder tokenizes: with a fixed tokenizer (a plain name, or a spec that already has
 * a vocabulary, e.g. one shared by every stage of a curriculum), or with a compact
 * vocabulary collected from this corpus while it streams. In the second case the spools hold
 * base ids, and `finish` gives the base->dense map to apply when the shards are written.
 */
import { VocabCounter } from '../tokenizers/compact.ts';
import { createTokenizer } from '../tokenizers/tokenizer.ts';
import type { Tokenizer, TokenizerName, TokenizerSpec } from '../types.ts';

export interface TokenizerChoice {
  /** A name, or a spec. A spec with `vocab` is used as it is (compactVocab is then ignored). */
  tokenizer: TokenizerName | TokenizerSpec;
  /** Build a compact vocabulary from this corpus (default false). */
  compactVocab?: boolean;
}

export interface TokenizerPlan {
  /** Ids written to the spools while streaming. */
  encode(text: string): number[];
  readonly eotId: number;
  readonly sepId: number;
  finish(): { tokenizer: Tokenizer; remap: Int32Array | undefined };
}

export function planTokenizer(choice: TokenizerChoice): TokenizerPlan {
  const spec: TokenizerSpec = typeof choice.tokenizer === 'string' ? { name: choice.tokenizer } : choice.tokenizer;
  if (spec.vocab || !choice.compactVocab) {
    const tokenizer = createTokenizer(spec);
    return {
      encode: (text) => tokenizer.encode(text),
      eotId: tokenizer.eotId,
      sepId: tokenizer.sepId,
      finish: () => ({ tokenizer, remap: undefined }),
    };
  }
  const base = createTokenizer(spec.name);
  const counter = new VocabCounter(spec.name);
  return {
    encode: (text) => counter.addText(text),
    eotId: base.eotId,
    sepId: base.sepId,
    finish: () => {
      const compact = counter.toSpec();
      const remap = new Int32Array(base.vocabSize).fill(-1);
      compact.vocab!.forEach((baseId, dense) => (remap[baseId] = dense));
      return { tokenizer: createTokenizer(compact), remap };
    },
  };
}
