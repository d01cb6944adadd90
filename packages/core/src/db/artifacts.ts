/**
 * Content-addressed artifacts (prepared datasets, checkpoints) stored in the database, so
 * that workers on other machines need nothing but Postgres to share them.
 *
 * - Addressed by the sha256 of the bytes: storing the same content twice stores it once.
 * - Kept in chunks (4 MiB by default) so that no single row or query holds a whole
 *   checkpoint, and reads stream with bounded memory. Chunk bytes travel as base64 text
 *   through plain SQL (`db.sql`), not through Prisma: measured on 4 MiB, Prisma's Bytes path
 *   took ~0.5 s per chunk on a server and ~2.5 s on PGlite (whose bytea parameter encoding
 *   is slow), base64 through the driver ~0.1-0.2 s on both.
 * - An Artifact row is written first with `completedAt` null, then the chunks, then
 *   `completedAt`: until then the artifact does not exist for readers. Every insert is
 *   "on conflict do nothing", so concurrent or interrupted uploads of the same content
 *   simply finish each other's work — no long transaction holding hundreds of megabytes.
 * - Every read is verified, chunk by chunk before each is handed on (its length, and its
 *   bytes against the sha256 the writer stored with them, ArtifactChunk.chunkSha256), and
 *   the whole against its address before the last chunk is handed on. A mismatch is an
 *   ArtifactIntegrityError naming the artifact and the chunk, never silently wrong bytes: a
 *   reader that passes chunks on as they come (the API's downloads) never passes on a byte
 *   of a corrupt chunk, nor the end of a corrupt artifact.
 * - Chunks written before chunk hashes existed have none: the first read of their artifact
 *   verifies it whole first (one extra pass) and then stores their hashes.
 * - With `cacheDir`, reads are kept on local disk (<cacheDir>/<sha[0..2]>/<sha>) and served
 *   from there next time, after the same verification; a corrupt cache file is replaced
 *   from the database.
 * - An artifact that no row refers to any more is removed by garbage.ts. Writers name their
 *   bytes through `putReferenced`, which stores them again if they were collected just
 *   between the store and the row.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '@miniglm/data';
import type { Db } from './client.ts';
import { isForeignKeyViolation } from './db-errors.ts';
import type { ArtifactKind, PrismaClient } from './generated/client/index.js';

export type { ArtifactKind };

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export interface ArtifactStoreOptions {
  /** Bytes per chunk for new artifacts (default 4 MiB). Existing artifacts keep theirs. */
  chunkSize?: number;
  /** A local folder that caches artifacts read or written by this process. */
  cacheDir?: string;
  /**
   * Most bytes the cache may hold: after a file is added, the least recently used ones go
   * until it fits (the newest file always stays). Default: no limit.
   */
  maxCacheBytes?: number;
}

export interface ArtifactInfo {
  sha256: string;
  size: number;
  kind: ArtifactKind;
  chunkSize: number;
  chunkCount: number;
  createdAt: Date;
}

export interface PutResult {
  sha256: string;
  size: number;
  /** False when the content was already stored (nothing was written). */
  created: boolean;
}

/**
 * Stored bytes that do not match their address (or are missing chunks). A user error: the
 * database holds these bytes, so reading them again gives the same mismatch.
 */
export class ArtifactIntegrityError extends UserError {
  /** The artifact at fault, when known. */
  readonly sha256: string | undefined;
  /** The index of the chunk at fault, when one chunk is. */
  readonly chunk: number | undefined;
  constructor(message: string, options: { cause?: unknown; sha256?: string; chunk?: number } = {}) {
    super(message, { cause: options.cause });
    this.sha256 = options.sha256;
    this.chunk = options.chunk;
  }
}

/** What one stored chunk row holds; chunkSha256 is null for chunks written before it existed. */
interface StoredChunk {
  bytes: Buffer;
  chunkSha256: string | null;
}

const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactStore {
  readonly chunkSize: number;
  readonly cacheDir: string | undefined;
  readonly maxCacheBytes: number;
  private readonly prisma: PrismaClient;
  private readonly sql: Db['sql'];

  constructor(db: Pick<Db, 'prisma' | 'sql'>, options: ArtifactStoreOptions = {}) {
    this.prisma = db.prisma;
    this.sql = db.sql;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1 || this.chunkSize > 256 * 1024 * 1024) {
      throw new RangeError(`chunkSize must be an integer from 1 byte to 256 MiB, not ${options.chunkSize}`);
    }
    this.cacheDir = options.cacheDir ? path.resolve(options.cacheDir) : undefined;
    this.maxCacheBytes = options.maxCacheBytes ?? Infinity;
    if (!(this.maxCacheBytes > 0)) throw new RangeError(`maxCacheBytes must be positive, not ${options.maxCacheBytes}`);
  }

  /**
   * Stores bytes, or a stream of them, and returns their sha256. A stream is spooled to a
   * local file first (the address is known only at its end), then uploaded from there.
   */
  async put(data: Uint8Array | AsyncIterable<Uint8Array>, kind: ArtifactKind): Promise<PutResult> {
    if (data instanceof Uint8Array) {
      const sha256 = sha256Of(data);
      const created = await this.upload(sha256, data.byteLength, kind, async (offset, length) =>
        data.subarray(offset, offset + length),
      );
      if (this.cacheDir && !this.cachedFileOk(sha256, data.byteLength)) this.writeCacheFile(sha256, data);
      return { sha256, size: data.byteLength, created };
    }

    const spoolDir = this.cacheDir
      ? path.join(this.cacheDir, 'tmp')
      : fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-artifact-'));
    fs.mkdirSync(spoolDir, { recursive: true });
    const spool = path.join(spoolDir, randomUUID());
    try {
      const hash = createHash('sha256');
      let size = 0;
      const out = await fs.promises.open(spool, 'w');
      try {
        for await (const piece of data) {
          hash.update(piece);
          size += piece.byteLength;
          await out.write(piece);
        }
      } finally {
        await out.close();
      }
      const sha256 = hash.digest('hex');
      const file = await fs.promises.open(spool, 'r');
      let created: boolean;
      try {
        created = await this.upload(sha256, size, kind, async (offset, length) => {
          const buffer = Buffer.alloc(length);
          const { bytesRead } = await file.read(buffer, 0, length, offset);
          return buffer.subarray(0, bytesRead);
        });
      } finally {
        await file.close();
      }
      if (this.cacheDir) this.adoptCacheFile(sha256, spool);
      return { sha256, size, created };
    } finally {
      fs.rmSync(spool, { force: true });
      if (!this.cacheDir) fs.rmSync(spoolDir, { recursive: true, force: true });
    }
  }

  /**
   * Stores bytes, then writes the row that names them (`reference`, given what `put` stored).
   * Content addressing lets rows share an artifact, so `put` may find the bytes stored
   * already, unreferenced, just as a garbage collection removes them (garbage.ts): the row's
   * foreign key then fails. Then the bytes are stored again (`source` gives them anew) and the
   * row written again, once.
   */
  async putReferenced<T>(
    source: () => Uint8Array | AsyncIterable<Uint8Array>,
    kind: ArtifactKind,
    reference: (stored: PutResult) => Promise<T>,
  ): Promise<T> {
    const stored = await this.put(source(), kind);
    try {
      return await reference(stored);
    } catch (error) {
      if (!isForeignKeyViolation(error) || (await this.has(stored.sha256))) throw error;
      return reference(await this.put(source(), kind));
    }
  }

  /** True when the artifact is stored completely. */
  async has(sha256: string): Promise<boolean> {
    return (await this.info(sha256)) !== undefined;
  }

  /** Size, kind and chunking of a completely stored artifact. */
  async info(sha256: string): Promise<ArtifactInfo | undefined> {
    if (!SHA256.test(sha256)) return undefined;
    const row = await this.prisma.artifact.findUnique({ where: { sha256 } });
    if (!row || row.completedAt === null) return undefined;
    return {
      sha256,
      size: Number(row.size),
      kind: row.kind,
      chunkSize: row.chunkSize,
      chunkCount: row.chunkCount,
      createdAt: row.createdAt,
    };
  }

  /** The verified bytes, or undefined when there is no such artifact. */
  async get(sha256: string): Promise<Uint8Array | undefined> {
    const cached = this.cacheDir && this.cachedFileOk(sha256) ? this.cachePath(sha256) : undefined;
    if (cached) return fs.readFileSync(cached);
    const info = await this.info(sha256);
    if (!info) return undefined;
    const parts: Uint8Array[] = [];
    for await (const part of this.readChunks(info)) parts.push(part);
    const bytes = Buffer.concat(parts);
    if (this.cacheDir) this.writeCacheFile(sha256, bytes);
    return bytes;
  }

  /**
   * The bytes as a stream, or undefined when there is no such artifact. The stream is
   * verified as it goes and ends in an ArtifactIntegrityError instead of its 'end' when the
   * content does not match: consumers must not trust what they read before the end.
   */
  async stream(sha256: string): Promise<Readable | undefined> {
    const cached = this.cacheDir && this.cachedFileOk(sha256) ? this.cachePath(sha256) : undefined;
    if (cached) return fs.createReadStream(cached);
    const info = await this.info(sha256);
    if (!info) return undefined;
    return Readable.from(this.readChunks(info), { objectMode: false });
  }

  /**
   * A verified local file holding the artifact (needs `cacheDir`): what a worker hands to
   * code that loads a checkpoint from a path. Undefined when there is no such artifact.
   */
  async file(sha256: string): Promise<string | undefined> {
    if (!this.cacheDir) throw new Error('ArtifactStore.file needs a cacheDir');
    if (this.cachedFileOk(sha256)) return this.cachePath(sha256);
    const info = await this.info(sha256);
    if (!info) return undefined;
    const tmp = path.join(this.cacheDir, 'tmp', randomUUID());
    fs.mkdirSync(path.dirname(tmp), { recursive: true });
    try {
      const out = await fs.promises.open(tmp, 'w');
      try {
        for await (const part of this.readChunks(info)) await out.write(part);
      } finally {
        await out.close();
      }
      this.adoptCacheFile(sha256, tmp);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return this.cachePath(sha256);
  }

  /**
   * Removes an artifact (and its chunks) that no row refers to: what a writer calls when the
   * row that was to name bytes it just stored could not be written. False, and nothing
   * removed, while a checkpoint, dataset or file refers to it: their foreign keys restrict.
   */
  async deleteIfUnreferenced(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    try {
      const deleted = await this.sql.query<{ sha256: string }>(
        `DELETE FROM "Artifact" WHERE "sha256" = $1 RETURNING "sha256"`,
        [sha256],
      );
      return deleted.length > 0;
    } catch (error) {
      // restrict_violation or foreign_key_violation: a row refers to it.
      if (['23001', '23503'].includes(String((error as { code?: unknown }).code))) return false;
      throw error;
    }
  }

  /**
   * Removes this process's local copy of an artifact that was collected (garbage.ts), so that
   * the cache holds no bytes the database no longer has. False when there was none.
   */
  dropCached(sha256: string): boolean {
    if (!this.cacheDir || !SHA256.test(sha256)) return false;
    const file = this.cachePath(sha256);
    if (!fs.existsSync(file)) return false;
    fs.rmSync(file, { force: true });
    return true;
  }

  /** Writes what is missing of an artifact; returns false when it was complete already. */
  private async upload(
    sha256: string,
    size: number,
    kind: ArtifactKind,
    read: (offset: number, length: number) => Promise<Uint8Array>,
  ): Promise<boolean> {
    if (await this.has(sha256)) return false;
    const chunkCount = Math.max(1, Math.ceil(size / this.chunkSize));
    await this.prisma.artifact.createMany({
      data: [{ sha256, size: BigInt(size), kind, chunkSize: this.chunkSize, chunkCount }],
      skipDuplicates: true,
    });
    // An interrupted upload by another writer may have chosen another chunk size: follow it.
    const row = await this.prisma.artifact.findUniqueOrThrow({
      where: { sha256 },
      select: { chunkSize: true, chunkCount: true, size: true },
    });
    if (Number(row.size) !== size) {
      throw new ArtifactIntegrityError(
        `artifact ${sha256} is recorded with ${row.size} bytes, but its content has ${size}`,
      );
    }
    const present = new Set(
      (await this.prisma.artifactChunk.findMany({ where: { sha256 }, select: { index: true } })).map((c) => c.index),
    );
    for (let index = 0; index < row.chunkCount; index++) {
      if (present.has(index)) continue;
      const offset = index * row.chunkSize;
      const bytes = await read(offset, Math.min(row.chunkSize, size - offset));
      await this.sql.query(
        `INSERT INTO "ArtifactChunk" ("sha256", "index", "bytes", "chunkSha256") VALUES ($1, $2, decode($3, 'base64'), $4) ON CONFLICT DO NOTHING`,
        [
          sha256,
          index,
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
          sha256Of(bytes),
        ],
      );
    }
    const marked = await this.prisma.artifact.updateMany({
      where: { sha256, completedAt: null },
      data: { completedAt: new Date() },
    });
    return marked.count === 1;
  }

  /**
   * Yields the chunks in order, one query each. A chunk is yielded only after its length and
   * its own sha256 are checked, and the last one only after the whole artifact's sha256 is:
   * whoever forwards the chunks as they come has sent nothing wrong when the error comes.
   */
  private async *readChunks(info: ArtifactInfo): AsyncGenerator<Uint8Array> {
    if (await this.hasUnhashedChunks(info.sha256)) await this.hashUnhashedChunks(info);
    const whole = createHash('sha256');
    for (let index = 0; index < info.chunkCount; index++) {
      const { bytes, chunkSha256 } = await this.readChunk(info, index);
      const actual = sha256Of(bytes);
      if (actual !== chunkSha256) {
        throw new ArtifactIntegrityError(
          chunkSha256 === null
            ? `artifact ${info.sha256} chunk ${index} of ${info.chunkCount} has no stored sha256 (an older writer stored it while it was being read); read it again`
            : `artifact ${info.sha256} is corrupt: chunk ${index} of ${info.chunkCount} has sha256 ${actual}, but ${chunkSha256} was stored with it`,
          { sha256: info.sha256, chunk: index },
        );
      }
      whole.update(bytes);
      if (index === info.chunkCount - 1) this.checkWhole(info, whole.digest('hex'), index);
      yield bytes;
    }
  }

  /** One chunk row, checked to exist and to have the length its position calls for. */
  private async readChunk(info: ArtifactInfo, index: number): Promise<StoredChunk> {
    const [row] = await this.sql.query<{ b64: string; chunkSha256: string | null }>(
      `SELECT encode("bytes", 'base64') AS b64, "chunkSha256" FROM "ArtifactChunk" WHERE "sha256" = $1 AND "index" = $2`,
      [info.sha256, index],
    );
    if (!row)
      throw new ArtifactIntegrityError(`artifact ${info.sha256} is missing chunk ${index} of ${info.chunkCount}`, {
        sha256: info.sha256,
        chunk: index,
      });
    const bytes = Buffer.from(row.b64, 'base64'); // skips the line breaks encode() adds
    const last = index === info.chunkCount - 1;
    const expected = last ? info.size - index * info.chunkSize : info.chunkSize;
    if (bytes.byteLength !== expected) {
      throw new ArtifactIntegrityError(
        `artifact ${info.sha256} is corrupt: chunk ${index} of ${info.chunkCount} holds ${bytes.byteLength} bytes, expected ${expected}`,
        { sha256: info.sha256, chunk: index },
      );
    }
    return { bytes, chunkSha256: row.chunkSha256 };
  }

  private checkWhole(info: ArtifactInfo, actual: string, chunk?: number): void {
    if (actual === info.sha256) return;
    throw new ArtifactIntegrityError(
      `artifact ${info.sha256} is corrupt: its ${info.size} bytes have sha256 ${actual}` +
        (chunk === undefined ? ' (its chunks were stored without their own hashes)' : ''),
      { sha256: info.sha256, chunk },
    );
  }

  /** True when some chunk of the artifact was written before chunk hashes existed (no bytes are read). */
  private async hasUnhashedChunks(sha256: string): Promise<boolean> {
    const rows = await this.sql.query<{ one: number }>(
      `SELECT 1 AS one FROM "ArtifactChunk" WHERE "sha256" = $1 AND "chunkSha256" IS NULL LIMIT 1`,
      [sha256],
    );
    return rows.length > 0;
  }

  /**
   * Verifies a whole artifact whose chunks (some or all) have no stored hash, then stores
   * their hashes: a hash is only ever recorded for bytes known to match the address.
   */
  private async hashUnhashedChunks(info: ArtifactInfo): Promise<void> {
    const whole = createHash('sha256');
    const missing: { index: number; sha256: string }[] = [];
    for (let index = 0; index < info.chunkCount; index++) {
      const { bytes, chunkSha256 } = await this.readChunk(info, index);
      whole.update(bytes);
      if (chunkSha256 === null) missing.push({ index, sha256: sha256Of(bytes) });
    }
    this.checkWhole(info, whole.digest('hex'));
    for (const { index, sha256 } of missing) {
      await this.sql.query(
        `UPDATE "ArtifactChunk" SET "chunkSha256" = $3 WHERE "sha256" = $1 AND "index" = $2 AND "chunkSha256" IS NULL`,
        [info.sha256, index, sha256],
      );
    }
  }

  private cachePath(sha256: string): string {
    return path.join(this.cacheDir!, sha256.slice(0, 2), sha256);
  }

  /** True when the cache holds the artifact and its bytes hash to its address; a bad file is removed. */
  private cachedFileOk(sha256: string, size?: number): boolean {
    if (!SHA256.test(sha256)) return false;
    const file = this.cachePath(sha256);
    if (!fs.existsSync(file)) return false;
    if (size !== undefined && fs.statSync(file).size !== size) {
      fs.rmSync(file, { force: true });
      return false;
    }
    const hash = createHash('sha256');
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(this.chunkSize, 16 * 1024 * 1024));
      for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    if (hash.digest('hex') === sha256) {
      // Used now: the least-recently-used order of the cache goes by modification time.
      const now = new Date();
      fs.utimesSync(file, now, now);
      return true;
    }
    fs.rmSync(file, { force: true });
    return false;
  }

  private writeCacheFile(sha256: string, bytes: Uint8Array): void {
    const tmp = path.join(this.cacheDir!, 'tmp', randomUUID());
    fs.mkdirSync(path.dirname(tmp), { recursive: true });
    fs.writeFileSync(tmp, bytes);
    this.adoptCacheFile(sha256, tmp);
  }

  /** Moves a verified file into place; rename is atomic, so readers never see half a file. */
  private adoptCacheFile(sha256: string, file: string): void {
    const target = this.cachePath(sha256);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(file, target);
    this.evictBeyondLimit(target);
  }

  /** Removes least recently used cache files until the cache fits `maxCacheBytes`. */
  private evictBeyondLimit(keep: string): void {
    if (!Number.isFinite(this.maxCacheBytes)) return;
    const files: { file: string; size: number; used: number }[] = [];
    for (const dir of fs.readdirSync(this.cacheDir!)) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue; // skips tmp/
      for (const name of fs.readdirSync(path.join(this.cacheDir!, dir))) {
        const file = path.join(this.cacheDir!, dir, name);
        const stat = fs.statSync(file, { throwIfNoEntry: false });
        if (stat) files.push({ file, size: stat.size, used: stat.mtimeMs });
      }
    }
    let total = files.reduce((n, f) => n + f.size, 0);
    for (const f of files.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxCacheBytes) break;
      if (f.file === keep) continue;
      fs.rmSync(f.file, { force: true });
      total -= f.size;
    }
  }
}
