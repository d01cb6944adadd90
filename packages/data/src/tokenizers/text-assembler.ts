/**
 * Builds a string from a mix of raw bytes and ready-made strings. Why: a BPE token (or a
 * byte-fallback token) can hold part of a multi-byte UTF-8 character, so bytes must be
 * gathered across tokens and decoded together; decoding token by token would turn a split
 * emoji into replacement characters.
 */
const utf8 = new TextDecoder('utf-8');

export class TextAssembler {
  private readonly parts: string[] = [];
  private pending = new Uint8Array(64);
  private pendingLength = 0;

  pushBytes(bytes: ArrayLike<number>): void {
    const need = this.pendingLength + bytes.length;
    if (need > this.pending.length) {
      const grown = new Uint8Array(Math.max(need, this.pending.length * 2));
      grown.set(this.pending.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    this.pending.set(bytes, this.pendingLength);
    this.pendingLength = need;
  }

  pushByte(byte: number): void {
    this.pushBytes([byte]);
  }

  /** A string that is already text (a char token): flushes pending bytes first. */
  pushString(text: string): void {
    this.flush();
    this.parts.push(text);
  }

  finish(): string {
    this.flush();
    return this.parts.join('');
  }

  private flush(): void {
    if (this.pendingLength === 0) return;
    // Not streaming: bytes that never complete a character become U+FFFD here, once.
    this.parts.push(utf8.decode(this.pending.subarray(0, this.pendingLength)));
    this.pendingLength = 0;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as text when they are whole UTF-8, else as "<0xE4><0xBD>" so previews show them. */
export function bytesToPiece(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return Array.from(bytes, (b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
  }
}
