/**
 * Garbage collection of artifacts and datasets (db/garbage.ts) on the real Postgres: an
 * artifact goes with its chunks once no checkpoint, dataset or file refers to it; a shared
 * one stays while any row names it; an upload in progress stays; the sweep leaves young
 * orphans alone; and a writer whose reused bytes were collected under it stores them again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore, collectArtifacts, collectDatasets, sweepGarbage, type PrismaClient } from '../src/db/index.ts';
import { openTestDb, type TestDb } from '../src/db/testing.ts';

let t: TestDb;
let prisma: PrismaClient;
let store: ArtifactStore;
let cacheDir = '';
beforeAll(async () => {
  t = await openTestDb('postgres', 'garbage');
  prisma = t.db.prisma;
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-garbage-cache-'));
  // Small chunks: every artifact here has several chunk rows, which must go with it.
  store = new ArtifactStore(t.db, { chunkSize: 8, cacheDir });
});
afterAll(async () => {
  await t?.cleanup();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

let made = 0;
/** Stored bytes no one has seen before. */
async function artifact(kind: 'checkpoint' | 'dataset' | 'other' = 'checkpoint') {
  const { sha256, size } = await store.put(Buffer.from(`artifact ${++made} ${'x'.repeat(20)}`), kind);
  return { sha256, size };
}

const present = async (sha256: string) => ({
  artifact: await prisma.artifact.count({ where: { sha256 } }),
  chunks: await prisma.artifactChunk.count({ where: { sha256 } }),
});

async function file(sha256: string) {
  return prisma.datasetFile.create({
    data: { name: 'f.txt', format: 'txt', size: 1n, records: 1, artifactSha256: sha256 },
  });
}

async function stage() {
  const run = await prisma.run.create({ data: { name: 'gc', curriculum: {}, seed: 1, status: 'succeeded' } });
  return prisma.stage.create({ data: { runId: run.id, index: 0, name: 's', kind: 'pretrain', iterations: 1 } });
}

async function dataset(sha256: string) {
  return prisma.dataset.create({
    data: {
      contentHash: `c${++made}`,
      tokenizerHash: 't',
      kind: 'pretrain',
      source: 'x',
      manifest: {},
      artifactSha256: sha256,
    },
  });
}

const backdate = (sha256: string, ms: number) =>
  t.db.sql.query(
    `UPDATE "Artifact" SET "createdAt" = "createdAt" - make_interval(secs => $2), "completedAt" = "completedAt" - make_interval(secs => $2) WHERE "sha256" = $1`,
    [sha256, ms / 1000],
  );

describe('collectArtifacts', () => {
  it('removes an artifact no row refers to, with its chunks and its cached copy', async () => {
    const a = await artifact();
    expect((await present(a.sha256)).chunks).toBeGreaterThan(1);
    const cached = path.join(cacheDir, a.sha256.slice(0, 2), a.sha256);
    expect(fs.existsSync(cached)).toBe(true);
    expect(await collectArtifacts(t.db, [a.sha256], { cache: store })).toEqual({
      artifacts: 1,
      bytes: a.size,
      datasets: 0,
    });
    expect(await present(a.sha256)).toEqual({ artifact: 0, chunks: 0 });
    expect(fs.existsSync(cached)).toBe(false);
  });

  it('keeps an artifact a checkpoint, a dataset or a file refers to', async () => {
    const s = await stage();
    const [c, d, f] = [await artifact(), await artifact('dataset'), await artifact('other')];
    await prisma.checkpoint.create({ data: { stageId: s.id, step: 1, artifactSha256: c.sha256 } });
    await dataset(d.sha256);
    await file(f.sha256);
    expect(await collectArtifacts(t.db, [c.sha256, d.sha256, f.sha256])).toEqual({
      artifacts: 0,
      bytes: 0,
      datasets: 0,
    });
    for (const { sha256 } of [c, d, f]) expect((await present(sha256)).artifact).toBe(1);
  });

  it('keeps a shared artifact until the last row naming it is gone', async () => {
    const shared = await artifact('other');
    const [first, second] = [await file(shared.sha256), await file(shared.sha256)];
    await prisma.datasetFile.delete({ where: { id: first.id } });
    expect((await collectArtifacts(t.db, [shared.sha256])).artifacts).toBe(0);
    expect((await present(shared.sha256)).artifact).toBe(1);
    await prisma.datasetFile.delete({ where: { id: second.id } });
    expect((await collectArtifacts(t.db, [shared.sha256])).artifacts).toBe(1);
    expect(await present(shared.sha256)).toEqual({ artifact: 0, chunks: 0 });
  });

  it('leaves an upload in progress alone, unless it was abandoned a day ago', async () => {
    const sha256 = 'a'.repeat(64);
    await prisma.artifact.create({ data: { sha256, size: 100n, kind: 'checkpoint', chunkSize: 8, chunkCount: 13 } });
    expect((await collectArtifacts(t.db, [sha256])).artifacts).toBe(0);
    expect((await present(sha256)).artifact).toBe(1);
    await backdate(sha256, 25 * 3_600_000);
    expect((await collectArtifacts(t.db, [sha256])).artifacts).toBe(1);
  });
});

describe('collectDatasets', () => {
  it('removes a dataset no stage trains on, and its artifact; keeps one a stage names', async () => {
    const [free, used] = [await dataset((await artifact('dataset')).sha256), await dataset((await artifact()).sha256)];
    const s = await stage();
    await prisma.stage.update({ where: { id: s.id }, data: { datasetId: used.id } });
    expect(await collectDatasets(t.db, [free.id, used.id])).toMatchObject({ datasets: 1, artifacts: 1 });
    expect(await prisma.dataset.count({ where: { id: free.id } })).toBe(0);
    expect((await present(free.artifactSha256)).artifact).toBe(0);
    expect(await prisma.dataset.count({ where: { id: used.id } })).toBe(1);
    expect((await present(used.artifactSha256)).artifact).toBe(1);
  });
});

describe('sweepGarbage', () => {
  it('collects orphans older than the grace period and leaves young ones', async () => {
    const [old, young] = [await artifact(), await artifact()];
    const oldDataset = await dataset((await artifact('dataset')).sha256);
    await backdate(old.sha256, 2 * 3_600_000);
    await t.db.sql.query(`UPDATE "Dataset" SET "createdAt" = now() - interval '2 hours' WHERE "id" = $1`, [
      oldDataset.id,
    ]);
    const swept = await sweepGarbage(t.db);
    expect(swept.datasets).toBeGreaterThanOrEqual(1);
    expect(swept.artifacts).toBeGreaterThanOrEqual(2); // the old orphan and the old dataset's bytes
    expect((await present(old.sha256)).artifact).toBe(0);
    expect(await prisma.dataset.count({ where: { id: oldDataset.id } })).toBe(0);
    expect((await present(oldDataset.artifactSha256)).artifact).toBe(0);
    expect((await present(young.sha256)).artifact).toBe(1);
  });
});

describe('ArtifactStore.putReferenced', () => {
  it('stores reused bytes again when they were collected between the store and the row', async () => {
    const bytes = Buffer.from('bytes another row stored first, then let go');
    const first = await store.put(bytes, 'other');
    let tries = 0;
    const row = await store.putReferenced(
      () => bytes,
      'other',
      async (stored) => {
        expect(stored.sha256).toBe(first.sha256);
        // The first time, a garbage collection takes the (unreferenced) bytes just now.
        if (tries++ === 0) expect((await collectArtifacts(t.db, [stored.sha256])).artifacts).toBe(1);
        return file(stored.sha256);
      },
    );
    expect(tries).toBe(2);
    expect(row.artifactSha256).toBe(first.sha256);
    // Stored again in the database (a store without a cache reads it from there).
    expect(Buffer.from((await new ArtifactStore(t.db).get(first.sha256))!)).toEqual(bytes);
  });
});
