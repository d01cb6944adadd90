/**
 * The contract between a base tokenizer (a full vocabulary: a gpt-tokenizer encoding or the
 * char scheme) and the wrappers built on it (the public Tokenizer, the compact remap).
 */
import type { TokenizerName } from '../types.ts';
import type { TextAssembler } from './text-assembler.ts';

export interface BaseVocab {
  readonly name: TokenizerName;
  /** Max base id + 1, the sep id included. */
  readonly size: number;
  readonly eotId: number;
  /** A new id one past every id the underlying scheme knows; never produced by encode. */
  readonly sepId: number;
  /** byteIds[b] is the base id of the token that is exactly the single byte b. */
  readonly byteIds: readonly number[];
  /** Text to base ids; special-token spellings stay ordinary text. */
  encode(text: string): number[];
  /** Whether an id decodes to text (false for eot, sep, and ids the scheme does not use). */
  isTextId(id: number): boolean;
  /** The UTF-8 bytes a text id stands for. */
  bytesOf(id: number): Uint8Array;
  /** Appends a text id's text to an assembler (bytes or string, whichever is exact). */
  appendTo(out: TextAssembler, id: number): void;
}
