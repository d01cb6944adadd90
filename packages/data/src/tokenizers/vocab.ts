/** Picks the base vocabulary for a tokenizer name. */
import { DataError } from '../errors.ts';
import { TOKENIZER_NAMES, type TokenizerName } from '../types.ts';
import type { BaseVocab } from './base.ts';
import { bpeVocab } from './bpe.ts';
import { charVocab } from './char.ts';

export function isTokenizerName(name: unknown): name is TokenizerName {
  return typeof name === 'string' && (TOKENIZER_NAMES as readonly string[]).includes(name);
}

export function baseVocab(name: TokenizerName): BaseVocab {
  if (!isTokenizerName(name)) {
    throw new DataError(`unknown tokenizer "${String(name)}"; valid: ${TOKENIZER_NAMES.join(', ')}`);
  }
  return name === 'char' ? charVocab() : bpeVocab(name);
}
