/**
 * A checkpoint whose stored bytes were altered never downloads as a success. Over a real
 * socket (the API listening on a port, Postgres underneath), one byte is changed in the
 * database as `UPDATE "ArtifactChunk" SET bytes = set_byte(...)` would:
 *
 * - in the first chunk: nothing has been sent yet, so the answer is a 500 whose JSON message
 *   names the artifact and the chunk;
 * - in a later chunk: the intact chunks before it have gone out under a 200, and the
 *   connection is cut before the corrupt one, so the body stops short of its content-length
 *   (curl exits with "(18) transfer closed with outstanding read data remaining");
 * - chunks stored before chunk hashes existed (chunkSha256 null) are verified whole before
 *   the first byte is sent.
 *
 * An intact checkpoint still downloads byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { openHarness, type Harness } from './helpers.ts';

const CHUNK = 1024;
const CHUNKS = 4;

let h: Harness;
let base = '';
let stageId = '';
let store: ArtifactStore;

beforeAll(async () => {
  h = await openHarness('integrity');
  base = await h.app.listen({ port: 0, host: '127.0.0.1' });
  store = new ArtifactStore(h.db, { chunkSize: CHUNK });
  const run = await h.db.prisma.run.create({ data: { name: 'integrity', curriculum: {}, seed: 1 } });
  const stage = await h.db.prisma.stage.create({
    data: { runId: run.id, index: 0, name: 'tang', kind: 'pretrain', iterations: 10 },
  });
  stageId = stage.id;
});
afterAll(async () => {
  await h?.close();
});

let step = 0;
/** A checkpoint whose artifact has CHUNKS chunks (the last one short). */
async function checkpoint(): Promise<{ id: string; sha256: string; bytes: Buffer }> {
  const bytes = randomBytes(CHUNK * (CHUNKS - 1) + 100);
  const { sha256 } = await store.put(bytes, 'checkpoint');
  const row = await h.db.prisma.checkpoint.create({ data: { stageId, step: ++step, artifactSha256: sha256 } });
  return { id: row.id, sha256, bytes };
}

/** Changes one byte of a stored chunk in place, as a bad disk or a stray UPDATE would. */
async function alterChunk(sha256: string, index: number): Promise<void> {
  const rows = await h.db.sql.query(
    `UPDATE "ArtifactChunk" SET "bytes" = set_byte("bytes", 10, 255 - get_byte("bytes", 10))
     WHERE "sha256" = $1 AND "index" = $2 RETURNING "index"`,
    [sha256, index],
  );
  expect(rows).toHaveLength(1);
}

interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** False when the connection ended before the whole body (by content-length) arrived. */
  complete: boolean;
}

/** GET over a fresh connection, keeping whatever arrives, also when the connection is cut. */
function download(id: string): Promise<Download> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${base}/v1/checkpoints/${id}/download`, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      const done = () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), complete: res.complete });
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', done);
      // A response cut short emits 'error' (ECONNRESET / "aborted") and 'close' without 'end'.
      res.on('error', () => {});
      res.on('close', () => {
        if (!res.complete) done();
      });
    });
    request.on('error', reject);
  });
}

describe('GET /v1/checkpoints/:id/download', () => {
  it('sends an intact checkpoint byte for byte, with its length and sha256', async () => {
    const c = await checkpoint();
    const got = await download(c.id);
    expect(got.status).toBe(200);
    expect(got.complete).toBe(true);
    expect(got.headers['content-length']).toBe(String(c.bytes.length));
    expect(got.headers['x-sha256']).toBe(c.sha256);
    expect(got.body.equals(c.bytes)).toBe(true);
    expect(createHash('sha256').update(got.body).digest('hex')).toBe(c.sha256);
  });

  it('answers 500 naming the artifact and chunk when the first chunk is corrupt: not a byte of it is sent', async () => {
    const c = await checkpoint();
    await alterChunk(c.sha256, 0);
    const got = await download(c.id);
    expect(got.status).toBe(500);
    expect(got.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(got.body.toString('utf8'));
    expect(Object.keys(body).sort()).toEqual(['error', 'message']);
    expect(body.message).toMatch(
      new RegExp(
        `^artifact ${c.sha256} is corrupt: chunk 0 of ${CHUNKS} has sha256 [0-9a-f]{64}, but [0-9a-f]{64} was stored`,
      ),
    );
    expect(body.message).toMatch(/the download was refused before any byte was sent$/);
  });

  it('cuts the connection before a corrupt later chunk: the body stops short of its content-length', async () => {
    const c = await checkpoint();
    await alterChunk(c.sha256, 2);
    const got = await download(c.id);
    expect(got.status).toBe(200); // the headers went out with the first chunk
    expect(got.headers['content-length']).toBe(String(c.bytes.length));
    expect(got.complete).toBe(false);
    // Exactly the two intact chunks arrived; not one byte of the corrupt one.
    expect(got.body.equals(c.bytes.subarray(0, 2 * CHUNK))).toBe(true);
  });

  it('also cuts it before the last chunk, and the API keeps serving afterwards', async () => {
    const c = await checkpoint();
    await alterChunk(c.sha256, CHUNKS - 1);
    const got = await download(c.id);
    expect(got.complete).toBe(false);
    expect(got.body.equals(c.bytes.subarray(0, (CHUNKS - 1) * CHUNK))).toBe(true);
    const intact = await checkpoint();
    expect((await download(intact.id)).body.equals(intact.bytes)).toBe(true);
  });

  it('verifies chunks stored without their own hash as a whole before sending anything', async () => {
    const legacy = await checkpoint();
    const corrupt = await checkpoint();
    await h.db.sql.query(`UPDATE "ArtifactChunk" SET "chunkSha256" = NULL WHERE "sha256" IN ($1, $2)`, [
      legacy.sha256,
      corrupt.sha256,
    ]);
    await alterChunk(corrupt.sha256, 2);

    const bad = await download(corrupt.id);
    expect(bad.status).toBe(500);
    expect(JSON.parse(bad.body.toString('utf8')).message).toMatch(
      new RegExp(`^artifact ${corrupt.sha256} is corrupt: its ${corrupt.bytes.length} bytes have sha256 `),
    );

    const good = await download(legacy.id);
    expect(good.status).toBe(200);
    expect(good.body.equals(legacy.bytes)).toBe(true);
    // Verified whole, its chunks now carry their hashes.
    expect(await h.db.prisma.artifactChunk.count({ where: { sha256: legacy.sha256, chunkSha256: null } })).toBe(0);
  });
});
