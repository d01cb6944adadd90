/**
 * Building a compact vocabulary: collect the base ids a corpus uses (streaming, one text at
 * a time), then lay them out densely after the fixed prefix [eot, sep, 256 byte tokens].
 */
import { DataError } from '../errors.ts';
import type { TokenizerName, TokenizerSpec } from '../types.ts';
import type { BaseVocab } from './base.ts';
import { baseVocab } from './vocab.ts';

export class VocabCounter {
  readonly name: TokenizerName;
  private readonly base: BaseVocab;
  /** One flag per base id; a bitmap, since corpora may hold billions of tokens. */
  private readonly seen: Uint8Array;
  private distinct = 0;

  constructor(name: TokenizerName) {
    this.name = name;
    this.base = baseVocab(name);
    this.seen = new Uint8Array(this.base.size);
  }

  /** Encodes a text with the base tokenizer, records its ids, and returns them for reuse. */
  addText(text: string): number[] {
    const ids = this.base.encode(text);
    this.addIds(ids);
    return ids;
  }

  addIds(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (this.seen[id] === 0) {
        this.seen[id] = 1;
        this.distinct++;
      }
    }
  }

  /** Distinct base ids seen so far. */
  get size(): number {
    return this.distinct;
  }

  toSpec(): TokenizerSpec {
    const vocab = [this.base.eotId, this.base.sepId, ...this.base.byteIds];
    const fixed = new Set(vocab);
    for (let id = 0; id < this.seen.length; id++) {
      // Byte tokens are already in the prefix; eot/sep never come from encode.
      if (this.seen[id] === 1 && !fixed.has(id)) vocab.push(id);
    }
    return { name: this.name, vocab };
  }
}

/** A compact vocabulary for texts already at hand, or from a counter filled while streaming. */
export function buildCompactVocab(name: TokenizerName, input: Iterable<string> | VocabCounter): TokenizerSpec {
  if (input instanceof VocabCounter) {
    if (input.name !== name) {
      throw new DataError(`vocab counter was built for ${input.name}, not ${name}`);
    }
    return input.toSpec();
  }
  const counter = new VocabCounter(name);
  for (const text of input) counter.addText(text);
  return counter.toSpec();
}

/** The same for a stream of texts (a whole curriculum's corpora, read once). */
export async function collectCompactVocab(
  name: TokenizerName,
  texts: AsyncIterable<string> | Iterable<string>,
): Promise<TokenizerSpec> {
  const counter = new VocabCounter(name);
  for await (const text of texts) counter.addText(text);
  return counter.toSpec();
}
