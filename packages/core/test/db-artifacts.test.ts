/**
 * The artifact store on a Postgres server and on PGlite: multi-chunk round trips from bytes
 * and streams, one copy per content, verification that catches corrupt or missing chunks
 * (each chunk before it is handed on; chunks stored without a hash by verifying the whole),
 * deleting unreferenced artifacts, and the local cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactIntegrityError, ArtifactStore, DEFAULT_CHUNK_SIZE, type PrismaClient } from '../src/db/index.ts';
import { openTestDb, type TestBackend, type TestDb } from '../src/db/testing.ts';

const CHUNK = 64 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Cuts bytes into uneven pieces, as a network or file stream would deliver them. */
function pieces(bytes: Uint8Array): Readable {
  const out: Uint8Array[] = [];
  for (let at = 0, n = 1; at < bytes.length; at += n, n = ((n * 7 + 13) % 50_000) + 1)
    out.push(bytes.subarray(at, at + n));
  return Readable.from(out);
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

describe.each<TestBackend>(['postgres', 'pglite'])('artifacts on %s', (backend) => {
  let t: TestDb;
  let prisma: PrismaClient;
  let store: ArtifactStore;
  let cacheDir = '';
  beforeAll(async () => {
    t = await openTestDb(backend, 'artifacts');
    prisma = t.db.prisma;
    store = new ArtifactStore(t.db, { chunkSize: CHUNK });
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-artifact-cache-'));
  });
  afterAll(async () => {
    await t?.cleanup();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  const chunkRows = (sha256: string) => prisma.artifactChunk.count({ where: { sha256 } });

  it('stores bytes in chunks and gives back exactly those bytes', async () => {
    const bytes = randomBytes(3 * CHUNK + 12_345);
    const put = await store.put(bytes, 'checkpoint');
    expect(put).toEqual({ sha256: sha(bytes), size: bytes.length, created: true });
    expect(await store.info(put.sha256)).toMatchObject({
      size: bytes.length,
      kind: 'checkpoint',
      chunkSize: CHUNK,
      chunkCount: 4,
    });
    expect(await chunkRows(put.sha256)).toBe(4);
    expect(Buffer.from((await store.get(put.sha256))!).equals(bytes)).toBe(true);
    expect((await collect((await store.stream(put.sha256))!)).equals(bytes)).toBe(true);
  });

  it('stores the same content once, whether it comes as bytes or as a stream', async () => {
    const bytes = randomBytes(2 * CHUNK + 1);
    const first = await store.put(pieces(bytes), 'dataset');
    expect(first).toEqual({ sha256: sha(bytes), size: bytes.length, created: true });
    expect(await store.put(bytes, 'dataset')).toEqual({ ...first, created: false });
    expect(await store.put(pieces(bytes), 'other')).toEqual({ ...first, created: false });
    expect(await prisma.artifact.count({ where: { sha256: first.sha256 } })).toBe(1);
    expect(await chunkRows(first.sha256)).toBe(3);
    // Concurrent puts of one new content: all succeed, one copy, exactly one reports creating it.
    const fresh = randomBytes(CHUNK + 7);
    const results = await Promise.all([
      store.put(fresh, 'other'),
      store.put(pieces(fresh), 'other'),
      store.put(fresh, 'other'),
    ]);
    expect(new Set(results.map((r) => r.sha256))).toEqual(new Set([sha(fresh)]));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await chunkRows(sha(fresh))).toBe(2);
  });

  it('handles empty content and the default 4 MiB chunks', async () => {
    const empty = await store.put(new Uint8Array(0), 'other');
    expect(empty.sha256).toBe(sha(new Uint8Array(0)));
    expect(Buffer.from((await store.get(empty.sha256))!).length).toBe(0);

    const big = randomBytes(DEFAULT_CHUNK_SIZE * 2 + 100);
    const defaults = new ArtifactStore(t.db);
    const put = await defaults.put(big, 'checkpoint');
    expect(await store.info(put.sha256)).toMatchObject({ chunkSize: DEFAULT_CHUNK_SIZE, chunkCount: 3 });
    // A store configured with other chunks still reads it: the chunking is recorded per artifact.
    expect(Buffer.from((await store.get(put.sha256))!).equals(big)).toBe(true);
  });

  it('says "not there" for unknown, malformed or half-written addresses', async () => {
    expect(await store.has('0'.repeat(64))).toBe(false);
    expect(await store.get('0'.repeat(64))).toBeUndefined();
    expect(await store.stream('not-a-sha')).toBeUndefined();
    expect(await store.has("' OR 1=1 --")).toBe(false);
    // An upload that stopped after its first chunk does not exist yet, and the next put completes it.
    const bytes = randomBytes(2 * CHUNK);
    const address = sha(bytes);
    await prisma.artifact.create({
      data: { sha256: address, size: BigInt(bytes.length), kind: 'other', chunkSize: CHUNK, chunkCount: 2 },
    });
    await prisma.artifactChunk.create({
      data: { sha256: address, index: 0, bytes: new Uint8Array(bytes.subarray(0, CHUNK)) },
    });
    expect(await store.has(address)).toBe(false);
    expect(await store.put(bytes, 'other')).toEqual({ sha256: address, size: bytes.length, created: true });
    expect(Buffer.from((await store.get(address))!).equals(bytes)).toBe(true);
  });

  it('detects corrupt and missing chunks on every kind of read', async () => {
    const bytes = randomBytes(3 * CHUNK);
    const { sha256 } = await store.put(bytes, 'checkpoint');
    const flipped = Buffer.from(bytes.subarray(CHUNK, 2 * CHUNK));
    flipped[100] = flipped[100]! ^ 0xff;
    await prisma.artifactChunk.update({
      where: { sha256_index: { sha256, index: 1 } },
      data: { bytes: new Uint8Array(flipped) },
    });
    await expect(store.get(sha256)).rejects.toThrow(ArtifactIntegrityError);
    await expect(store.get(sha256)).rejects.toThrow(`artifact ${sha256} is corrupt: chunk 1 of 3`);
    await expect(collect((await store.stream(sha256))!)).rejects.toThrow(ArtifactIntegrityError);

    await prisma.artifactChunk.update({
      where: { sha256_index: { sha256, index: 1 } },
      data: { bytes: new Uint8Array(bytes.subarray(CHUNK, 2 * CHUNK)) },
    });
    await prisma.artifactChunk.delete({ where: { sha256_index: { sha256, index: 2 } } });
    await expect(store.get(sha256)).rejects.toThrow(`artifact ${sha256} is missing chunk 2 of 3`);
  });

  it('checks each chunk before handing it on: a stream ends at the corrupt chunk, never passing its bytes', async () => {
    const bytes = randomBytes(3 * CHUNK + 10);
    const { sha256 } = await store.put(bytes, 'checkpoint');
    const hashes = await prisma.artifactChunk.findMany({ where: { sha256 }, orderBy: { index: 'asc' } });
    expect(hashes.map((c) => c.chunkSha256)).toEqual(hashes.map((c) => sha(c.bytes)));
    // One byte of chunk 2 changed in the database, as `UPDATE ... set_byte(...)` would.
    await t.db.sql.query(
      `UPDATE "ArtifactChunk" SET "bytes" = set_byte("bytes", 7, 255 - get_byte("bytes", 7)) WHERE "sha256" = $1 AND "index" = 2`,
      [sha256],
    );
    const received: Buffer[] = [];
    const failure = await (async () => {
      for await (const part of (await store.stream(sha256))!) received.push(Buffer.from(part as Uint8Array));
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ArtifactIntegrityError);
    expect(failure).toMatchObject({ sha256, chunk: 2 });
    expect((failure as Error).message).toMatch(`artifact ${sha256} is corrupt: chunk 2 of 4 has sha256 `);
    expect(Buffer.concat(received).equals(bytes.subarray(0, 2 * CHUNK))).toBe(true); // the intact chunks only

    // A chunk whose stored hash was altered along with its bytes still fails the whole-artifact
    // check, before the last chunk is handed on.
    const other = randomBytes(2 * CHUNK);
    const put = await store.put(other, 'checkpoint');
    await t.db.sql.query(
      `UPDATE "ArtifactChunk" SET "bytes" = set_byte("bytes", 0, 255 - get_byte("bytes", 0)) WHERE "sha256" = $1 AND "index" = 1`,
      [put.sha256],
    );
    await t.db.sql.query(
      `UPDATE "ArtifactChunk" SET "chunkSha256" = encode(sha256("bytes"), 'hex') WHERE "sha256" = $1 AND "index" = 1`,
      [put.sha256],
    );
    const parts: Buffer[] = [];
    await expect(
      (async () => {
        for await (const part of (await store.stream(put.sha256))!) parts.push(Buffer.from(part as Uint8Array));
      })(),
    ).rejects.toThrow(`artifact ${put.sha256} is corrupt: its ${2 * CHUNK} bytes have sha256 `);
    expect(Buffer.concat(parts).length).toBe(CHUNK);
  });

  it('verifies chunks stored before chunk hashes existed as a whole first, then stores their hashes', async () => {
    const bytes = randomBytes(2 * CHUNK + 3);
    const { sha256 } = await store.put(bytes, 'checkpoint');
    const unhash = () =>
      prisma.artifactChunk.updateMany({ where: { sha256, index: { in: [0, 2] } }, data: { chunkSha256: null } });
    await unhash();
    expect(Buffer.from((await store.get(sha256))!).equals(bytes)).toBe(true);
    const rows = await prisma.artifactChunk.findMany({ where: { sha256 }, orderBy: { index: 'asc' } });
    expect(rows.map((c) => c.chunkSha256)).toEqual(rows.map((c) => sha(c.bytes))); // filled in

    // Corrupt and without hashes: refused before the first chunk, since no chunk can be trusted alone.
    await unhash();
    await t.db.sql.query(
      `UPDATE "ArtifactChunk" SET "bytes" = set_byte("bytes", 0, 255 - get_byte("bytes", 0)) WHERE "sha256" = $1 AND "index" = 2`,
      [sha256],
    );
    const parts: Buffer[] = [];
    await expect(
      (async () => {
        for await (const part of (await store.stream(sha256))!) parts.push(Buffer.from(part as Uint8Array));
      })(),
    ).rejects.toThrow('(its chunks were stored without their own hashes)');
    expect(parts).toEqual([]);
    expect(await prisma.artifactChunk.count({ where: { sha256, chunkSha256: null } })).toBe(2); // nothing trusted
  });

  it('deletes an artifact no row refers to, and keeps one that is referenced', async () => {
    const loose = await store.put(randomBytes(CHUNK + 1), 'other');
    expect(await store.deleteIfUnreferenced(loose.sha256)).toBe(true);
    expect(await store.has(loose.sha256)).toBe(false);
    expect(await chunkRows(loose.sha256)).toBe(0);

    const named = await store.put(randomBytes(10), 'other');
    await prisma.datasetFile.create({
      data: { name: 'x.txt', format: 'txt', size: 10n, records: 1, artifactSha256: named.sha256 },
    });
    expect(await store.deleteIfUnreferenced(named.sha256)).toBe(false);
    expect(await store.has(named.sha256)).toBe(true);
  });

  it('serves reads from a verified local cache, and replaces a corrupt cache file from the database', async () => {
    const cached = new ArtifactStore(t.db, { chunkSize: CHUNK, cacheDir });
    const bytes = randomBytes(2 * CHUNK + 5);
    const { sha256 } = await store.put(bytes, 'checkpoint'); // written by "another machine"
    const file = await cached.file(sha256);
    expect(file).toBe(path.join(cacheDir, sha256.slice(0, 2), sha256));
    expect(fs.readFileSync(file!).equals(bytes)).toBe(true);

    fs.writeFileSync(file!, Buffer.concat([bytes.subarray(0, 10), Buffer.from('garbage')]));
    expect(Buffer.from((await cached.get(sha256))!).equals(bytes)).toBe(true);
    expect(fs.readFileSync(file!).equals(bytes)).toBe(true); // repaired

    // Served from the cache: even with the database copy gone, the verified file answers.
    await prisma.artifactChunk.deleteMany({ where: { sha256 } });
    expect((await collect((await cached.stream(sha256))!)).equals(bytes)).toBe(true);
    expect(Buffer.from((await cached.get(sha256))!).equals(bytes)).toBe(true);

    // A streamed put through a caching store leaves the verified file in the cache.
    const more = randomBytes(CHUNK + 3);
    const put = await cached.put(pieces(more), 'dataset');
    expect(fs.readFileSync(path.join(cacheDir, put.sha256.slice(0, 2), put.sha256)).equals(more)).toBe(true);
    expect(fs.readdirSync(path.join(cacheDir, 'tmp'))).toEqual([]); // no spool files left behind
  });

  it('keeps the cache under its size limit, evicting the least recently used files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-artifact-lru-'));
    const size = CHUNK + 100;
    const bounded = new ArtifactStore(t.db, { chunkSize: CHUNK, cacheDir: dir, maxCacheBytes: 2.5 * size });
    const cachedFile = (sha: string) => path.join(dir, sha.slice(0, 2), sha);
    const [a, b, c] = [randomBytes(size), randomBytes(size), randomBytes(size)];
    const first = await bounded.put(a, 'checkpoint');
    const second = await bounded.put(b, 'checkpoint');
    await new Promise((r) => setTimeout(r, 20));
    await bounded.file(first.sha256); // used again: now the most recent
    const third = await bounded.put(c, 'checkpoint');
    expect(fs.existsSync(cachedFile(second.sha256))).toBe(false); // the least recently used went
    expect(fs.existsSync(cachedFile(first.sha256))).toBe(true);
    expect(fs.existsSync(cachedFile(third.sha256))).toBe(true);
    // An evicted artifact is simply read from the database again.
    expect(fs.readFileSync((await bounded.file(second.sha256))!).equals(b)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
