/**
 * The public Tokenizer over a base vocabulary, either with the base ids as they are or
 * remapped to a compact, dense vocabulary (spec.vocab). The compact form keeps a small
 * model's embedding small; its byte-fallback tokens keep every string encodable, so text the
 * corpus never showed (a user's prompt with an emoji) still round-trips exactly.
 */
import { DataError } from '../errors.ts';
import type { Tokenizer, TokenizerName, TokenizerSpec } from '../types.ts';
import type { BaseVocab } from './base.ts';
import { bytesToPiece, TextAssembler } from './text-assembler.ts';
import { baseVocab } from './vocab.ts';

/** Dense ids of a compact vocabulary: eot, sep, then the 256 bytes, then the corpus ids. */
export const COMPACT_EOT = 0;
export const COMPACT_SEP = 1;
export const COMPACT_BYTE_OFFSET = 2;
export const COMPACT_RESERVED = COMPACT_BYTE_OFFSET + 256;

export function createTokenizer(spec: TokenizerSpec | TokenizerName): Tokenizer {
  const resolved: TokenizerSpec = typeof spec === 'string' ? { name: spec } : spec;
  const base = baseVocab(resolved.name);
  return resolved.vocab ? new CompactTokenizer(base, resolved.vocab) : new FullTokenizer(base);
}

class FullTokenizer implements Tokenizer {
  readonly spec: TokenizerSpec;
  readonly vocabSize: number;
  readonly eotId: number;
  readonly sepId: number;

  constructor(private readonly base: BaseVocab) {
    this.spec = { name: base.name };
    this.vocabSize = base.size;
    this.eotId = base.eotId;
    this.sepId = base.sepId;
  }

  encode(text: string): number[] {
    return this.base.encode(text);
  }

  decode(ids: ArrayLike<number>): string {
    const out = new TextAssembler();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === this.eotId || id === this.sepId) continue;
      if (!this.base.isTextId(id)) throw outOfVocab(this.spec, id, this.vocabSize);
      this.base.appendTo(out, id);
    }
    return out.finish();
  }

  tokenToString(id: number): string {
    if (id === this.sepId) return '[SEP]';
    if (id === this.eotId) return '[EOT]';
    if (!this.base.isTextId(id)) throw outOfVocab(this.spec, id, this.vocabSize);
    return pieceOf(this.base, id);
  }
}

class CompactTokenizer implements Tokenizer {
  readonly spec: TokenizerSpec;
  readonly vocabSize: number;
  readonly eotId = COMPACT_EOT;
  readonly sepId = COMPACT_SEP;
  /** base id -> dense id, -1 where the base id is not in the vocabulary. */
  private readonly toDense: Int32Array;
  private readonly toBase: Int32Array;

  constructor(
    private readonly base: BaseVocab,
    vocab: readonly number[],
  ) {
    checkCompactVocab(base, vocab);
    this.spec = { name: base.name, vocab: [...vocab] };
    this.vocabSize = vocab.length;
    this.toBase = Int32Array.from(vocab);
    this.toDense = new Int32Array(base.size).fill(-1);
    for (let dense = 0; dense < vocab.length; dense++) this.toDense[vocab[dense]!] = dense;
  }

  encode(text: string): number[] {
    const baseIds = this.base.encode(text);
    const out: number[] = [];
    for (const id of baseIds) {
      const dense = this.toDense[id]!;
      if (dense >= 0) {
        out.push(dense);
        continue;
      }
      // Unseen in the corpus: spell the token out as its UTF-8 bytes.
      for (const byte of this.base.bytesOf(id)) out.push(COMPACT_BYTE_OFFSET + byte);
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    const out = new TextAssembler();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === COMPACT_EOT || id === COMPACT_SEP) continue;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw outOfVocab(this.spec, id, this.vocabSize);
      this.base.appendTo(out, this.toBase[id]!);
    }
    return out.finish();
  }

  tokenToString(id: number): string {
    if (id === COMPACT_SEP) return '[SEP]';
    if (id === COMPACT_EOT) return '[EOT]';
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw outOfVocab(this.spec, id, this.vocabSize);
    return pieceOf(this.base, this.toBase[id]!);
  }
}

function pieceOf(base: BaseVocab, baseId: number): string {
  // A char token is a whole code point (possibly a lone surrogate): show it as is.
  if (base.name === 'char' && baseId >= 256) {
    const out = new TextAssembler();
    base.appendTo(out, baseId);
    return out.finish();
  }
  return bytesToPiece(base.bytesOf(baseId));
}

function outOfVocab(spec: TokenizerSpec, id: number, size: number): DataError {
  const kind = spec.vocab ? `compact ${spec.name}` : spec.name;
  return new DataError(`token id ${id} is not in the ${kind} vocabulary (size ${size})`);
}

/**
 * A compact vocabulary arrives from manifests and checkpoints: check its fixed prefix and
 * that every id is a real, distinct base id, so a corrupt file fails here, not mid-training.
 */
function checkCompactVocab(base: BaseVocab, vocab: readonly number[]): void {
  const bad = (why: string) => new DataError(`tokenizer spec "${base.name}" has an invalid vocab: ${why}`);
  if (!Array.isArray(vocab) || vocab.length < COMPACT_RESERVED) {
    throw bad(`needs at least ${COMPACT_RESERVED} entries (eot, sep, 256 bytes), has ${vocab?.length ?? 0}`);
  }
  if (vocab[COMPACT_EOT] !== base.eotId) throw bad(`entry 0 must be eot id ${base.eotId}, is ${vocab[0]}`);
  if (vocab[COMPACT_SEP] !== base.sepId) throw bad(`entry 1 must be sep id ${base.sepId}, is ${vocab[1]}`);
  for (let b = 0; b < 256; b++) {
    if (vocab[COMPACT_BYTE_OFFSET + b] !== base.byteIds[b]) {
      throw bad(
        `entry ${COMPACT_BYTE_OFFSET + b} must be the byte-${b} token ${base.byteIds[b]}, is ${vocab[COMPACT_BYTE_OFFSET + b]}`,
      );
    }
  }
  const seen = new Set<number>();
  for (let i = 0; i < vocab.length; i++) {
    const id = vocab[i]!;
    if (i >= COMPACT_RESERVED && !base.isTextId(id))
      throw bad(`entry ${i} (id ${id}) is not a text token of ${base.name}`);
    if (seen.has(id)) throw bad(`entry ${i} repeats id ${id}`);
    seen.add(id);
  }
}
