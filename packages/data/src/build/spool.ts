/**
 * A temporary, append-only file of uint32 token ids. Builders tokenize the corpus once into
 * spools (one per split) and write the final shards from them afterwards; this keeps memory
 * flat for any corpus size, lets a compact vocabulary be collected before any shard is
 * written, and lets the last document move between splits when one split came out empty.
 */
import { open, type FileHandle } from 'node:fs/promises';

const BUFFER_TOKENS = 1 << 16;

export class TokenSpool {
  private handle: FileHandle | undefined;
  private readonly buffer = new Uint32Array(BUFFER_TOKENS);
  private buffered = 0;
  /** Tokens already on disk. */
  private flushed = 0;

  private constructor(readonly file: string) {}

  static async create(file: string): Promise<TokenSpool> {
    const spool = new TokenSpool(file);
    spool.handle = await open(file, 'w+');
    return spool;
  }

  get length(): number {
    return this.flushed + this.buffered;
  }

  async append(ids: ArrayLike<number>): Promise<void> {
    let from = 0;
    while (from < ids.length) {
      const n = Math.min(ids.length - from, BUFFER_TOKENS - this.buffered);
      for (let i = 0; i < n; i++) this.buffer[this.buffered + i] = ids[from + i]!;
      this.buffered += n;
      from += n;
      if (this.buffered === BUFFER_TOKENS) await this.flush();
    }
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const bytes = new Uint8Array(this.buffer.buffer, 0, this.buffered * 4);
    await this.fh().write(bytes, 0, bytes.length, this.flushed * 4);
    this.flushed += this.buffered;
    this.buffered = 0;
  }

  /** Tokens [start, start + count). */
  async read(start: number, count: number): Promise<Uint32Array> {
    await this.flush();
    const out = new Uint32Array(count);
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await this.fh().read(bytes, done, bytes.length - done, start * 4 + done);
      if (bytesRead === 0) throw new Error(`spool ${this.file} ended early`);
      done += bytesRead;
    }
    return out;
  }

  /** Drops every token from `length` on. */
  async truncate(length: number): Promise<void> {
    await this.flush();
    await this.fh().truncate(length * 4);
    this.flushed = length;
  }

  async *chunks(chunkTokens = 1 << 20): AsyncGenerator<Uint32Array> {
    await this.flush();
    for (let start = 0; start < this.flushed; start += chunkTokens) {
      yield await this.read(start, Math.min(chunkTokens, this.flushed - start));
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }

  private fh(): FileHandle {
    if (!this.handle) throw new Error(`spool ${this.file} is closed`);
    return this.handle;
  }
}
