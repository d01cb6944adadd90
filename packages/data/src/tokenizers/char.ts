/**
 * The char scheme: one token per Unicode code point, which suits Chinese text (every
 * character is a token, as in the report's character-level experiments).
 * Ids: 0..255 raw UTF-8 bytes (the fallback a compact vocabulary needs), 256 eot, 257 sep,
 * 258 + code point for each character.
 */
import type { BaseVocab } from './base.ts';
import type { TextAssembler } from './text-assembler.ts';

export const CHAR_EOT = 256;
export const CHAR_SEP = 257;
export const CHAR_OFFSET = 258;
const MAX_CODE_POINT = 0x10ffff;

const encoder = new TextEncoder();

class CharVocab implements BaseVocab {
  readonly name = 'char' as const;
  readonly size = CHAR_OFFSET + MAX_CODE_POINT + 1;
  readonly eotId = CHAR_EOT;
  readonly sepId = CHAR_SEP;
  readonly byteIds: readonly number[] = Array.from({ length: 256 }, (_, b) => b);

  encode(text: string): number[] {
    const ids: number[] = [];
    // for..of walks code points, so an emoji (a surrogate pair) is one token.
    for (const ch of text) ids.push(CHAR_OFFSET + ch.codePointAt(0)!);
    return ids;
  }

  isTextId(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.size && id !== CHAR_EOT && id !== CHAR_SEP;
  }

  bytesOf(id: number): Uint8Array {
    if (id < 256) return Uint8Array.of(id);
    return encoder.encode(String.fromCodePoint(id - CHAR_OFFSET));
  }

  appendTo(out: TextAssembler, id: number): void {
    // Code points go in as strings, so a lone surrogate round-trips here (only with the full
    // char vocabulary: byte fallback in a compact one encodes it as U+FFFD, like UTF-8 must).
    if (id < 256) out.pushByte(id);
    else out.pushString(String.fromCodePoint(id - CHAR_OFFSET));
  }
}

let instance: CharVocab | undefined;

export function charVocab(): BaseVocab {
  instance ??= new CharVocab();
  return instance;
}
