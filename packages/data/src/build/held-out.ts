/**
 * val.qa.jsonl: the held-out Q&A pairs as text, one {"question", "answer"} object per line,
 * in the order of the val rows. Lines can be dropped from the end (when the split is
 * balanced), so the hash is taken when the file is closed.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { QaPair } from '../readers/qa-types.ts';

export class HeldOutWriter {
  private size = 0;
  private closed: string | undefined;

  private constructor(private readonly handle: FileHandle) {}

  static async create(file: string): Promise<HeldOutWriter> {
    return new HeldOutWriter(await open(file, 'w+'));
  }

  /** Appends a pair and returns the byte offset its line starts at. */
  async append(pair: QaPair): Promise<number> {
    const offset = this.size;
    const bytes = Buffer.from(`${JSON.stringify({ question: pair.question, answer: pair.answer })}\n`, 'utf8');
    await this.handle.write(bytes, 0, bytes.length, offset);
    this.size += bytes.length;
    return offset;
  }

  async truncate(offset: number): Promise<void> {
    await this.handle.truncate(offset);
    this.size = offset;
  }

  /** Closes the file without hashing it (a failed build); a no-op after close. */
  async abort(): Promise<void> {
    if (this.closed !== undefined) return;
    this.closed = '';
    await this.handle.close();
  }

  /** Closes the file and returns its sha256, read back in chunks (it may be large). */
  async close(): Promise<string> {
    if (this.closed !== undefined) return this.closed;
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 20);
    for (let at = 0; at < this.size;) {
      const { bytesRead } = await this.handle.read(chunk, 0, Math.min(chunk.length, this.size - at), at);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    await this.handle.close();
    this.closed = hash.digest('hex');
    return this.closed;
  }
}
