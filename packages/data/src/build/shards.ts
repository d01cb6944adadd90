/**
 * Token shards: raw little-endian uint16 or uint32 arrays, cut at a fixed number of tokens,
 * named <split>-000.bin, <split>-001.bin, ... Each shard's sha256 is recorded, and one
 * running hash covers all shards in manifest order (the dataset's content address).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { DataError } from '../errors.ts';

export type TokenDtype = 'uint16' | 'uint32';
export type TokenArray = Uint16Array | Uint32Array;

export interface ShardInfo {
  file: string;
  tokens: number;
  sha256: string;
}

/** 64M tokens: 128 MiB as uint16, small enough to hash, move and cache one at a time. */
export const DEFAULT_SHARD_TOKENS = 64 * 1024 * 1024;

export function dtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

export function shardName(split: string, index: number): string {
  return `${split}-${String(index).padStart(3, '0')}.bin`;
}

/** Typed arrays use the host's byte order; the files are little-endian by definition. */
export function assertLittleEndian(): void {
  if (endianness() !== 'LE')
    throw new DataError('token shards are little-endian; this big-endian host is not supported');
}

export class ShardWriter {
  private readonly shards: ShardInfo[] = [];
  private handle: FileHandle | undefined;
  private shardHash: Hash | undefined;
  private inShard = 0;
  private position = 0;

  constructor(
    private readonly dir: string,
    private readonly split: string,
    private readonly dtype: TokenDtype,
    private readonly maxTokens: number,
    /** Hash over every shard of the dataset, fed in write order. */
    private readonly contentHash: Hash,
  ) {
    assertLittleEndian();
  }

  /** Files written so far (for clean-up when a build fails). */
  get files(): string[] {
    return this.shards.map((s) => path.join(this.dir, s.file));
  }

  async write(ids: ArrayLike<number>): Promise<void> {
    let from = 0;
    while (from < ids.length) {
      if (!this.handle || this.inShard === this.maxTokens) await this.nextShard();
      const n = Math.min(ids.length - from, this.maxTokens - this.inShard);
      const out = this.dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = ids[from + i]!;
      const bytes = new Uint8Array(out.buffer);
      await this.handle!.write(bytes, 0, bytes.length, this.position);
      this.position += bytes.length;
      this.shardHash!.update(bytes);
      this.contentHash.update(bytes);
      this.inShard += n;
      this.shards[this.shards.length - 1]!.tokens += n;
      from += n;
    }
  }

  async finish(): Promise<ShardInfo[]> {
    await this.closeShard();
    return this.shards;
  }

  private async nextShard(): Promise<void> {
    await this.closeShard();
    const file = shardName(this.split, this.shards.length);
    this.handle = await open(path.join(this.dir, file), 'w');
    this.shardHash = createHash('sha256');
    this.inShard = 0;
    this.position = 0;
    this.shards.push({ file, tokens: 0, sha256: '' });
  }

  private async closeShard(): Promise<void> {
    if (!this.handle) return;
    await this.handle.close();
    this.handle = undefined;
    this.shards[this.shards.length - 1]!.sha256 = this.shardHash!.digest('hex');
  }
}
