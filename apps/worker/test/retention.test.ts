/**
 * Retention and the checkpoint floor in a worker of this process, against the real Postgres
 * and Redis: a stage that checkpoints every 10 of its 100 steps ends with a bounded number
 * of checkpoint rows and stored bytes (the run's default policy), and a worker with a floor
 * of an hour between checkpoints writes only a stage's first and last one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Curriculum } from '@miniglm/core';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { deleteRun, submitRun } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitForRun } from './helpers.ts';

let t: TestDb;
const started: { worker: RunningWorker; redis: ReturnType<typeof testRedis> }[] = [];

beforeAll(async () => {
  t = await openTestDb('postgres', 'retention');
});

afterAll(async () => {
  for (const { worker, redis } of started) {
    await worker.close();
    await redis.cleanup();
  }
  await t?.cleanup();
});

/** A worker on a prefix of its own, and the flow producer that feeds it. */
async function workerWith(name: string, minCheckpointSeconds: number) {
  const prefix = testPrefix(name);
  const redis = testRedis(prefix);
  const worker = await startWorker({
    db: t.db,
    redisUrl: REDIS_URL,
    prefix,
    workDir: tempDir(name),
    workerId: name,
    settings: { minCheckpointSeconds },
    log: () => {},
  });
  started.push({ worker, redis });
  return { worker, redis };
}

/** One pretraining stage of `iterations` steps with a checkpoint and a val loss every 10. */
function oneStage(name: string, iterations: number): Curriculum {
  const c = tinyCurriculum(name);
  return { ...c, stages: [{ ...c.stages[0]!, iterations, checkpointEvery: 10, evalEvery: 10 }] };
}

async function runToEnd(redis: ReturnType<typeof testRedis>, curriculum: Curriculum) {
  const submitted = await submitRun({ prisma: t.db.prisma, flows: redis.flows }, curriculum);
  if (!submitted.ok) throw new Error(submitted.error);
  const run = await waitForRun(t.db, submitted.value.id, ['succeeded', 'failed', 'cancelled']);
  expect(run.status, run.error ?? '').toBe('succeeded');
  return { runId: run.id, stageId: submitted.value.stages[0]!.id };
}

describe('retention in a worker', () => {
  it('keeps a stage that checkpoints every 10 of 100 steps to the last 3 and the best, rows and bytes', async () => {
    const { worker, redis } = await workerWith('retention', 0);
    const { stageId } = await runToEnd(redis, oneStage('bounded', 100));

    const written = await t.db.prisma.stageEvent.count({ where: { stageId, type: 'checkpointed' } });
    expect(written).toBe(10);
    const kept = await t.db.prisma.checkpoint.findMany({ where: { stageId }, orderBy: { step: 'asc' } });
    const steps = kept.map((c) => c.step);
    expect(steps.slice(-3)).toEqual([80, 90, 100]);
    expect(kept.length).toBeLessThanOrEqual(4);
    // The best by val loss is among them (the earliest step carrying the lowest).
    const valLoss = (c: (typeof kept)[number]) => (c.metrics as { valLoss: number }).valLoss;
    const points = await t.db.prisma.metricPoint.findMany({ where: { stageId, key: 'valLoss', step: { gte: 10 } } });
    const best = Math.min(...points.filter((p) => p.step % 10 === 0).map((p) => p.value));
    expect(Math.min(...kept.map(valLoss))).toBe(best);

    // Stored bytes: exactly the kept checkpoints' artifacts (and their chunks), nothing of the
    // 6 or so deleted ones.
    const artifacts = await t.db.prisma.artifact.findMany({ where: { kind: 'checkpoint' } });
    expect(artifacts.map((a) => a.sha256).sort()).toEqual([...new Set(kept.map((c) => c.artifactSha256))].sort());
    const chunks = await t.db.prisma.artifactChunk.count({ where: { sha256: { in: artifacts.map((a) => a.sha256) } } });
    expect(chunks).toBe(artifacts.reduce((n, a) => n + a.chunkCount, 0));
    const bytes = artifacts.reduce((n, a) => n + Number(a.size), 0);
    expect(bytes).toBeLessThanOrEqual(4 * Math.max(...artifacts.map((a) => Number(a.size))));

    // The worker's local cache holds no copy of a collected checkpoint.
    const cached = cachedArtifacts(worker);
    const stored = new Set((await t.db.prisma.artifact.findMany({ select: { sha256: true } })).map((a) => a.sha256));
    expect(cached.filter((sha256) => !stored.has(sha256))).toEqual([]);
    console.log(`retention: ${written} checkpoints written, ${kept.length} kept (${steps.join(', ')}), ${bytes} bytes`);
  });

  it("after the run is deleted (by the API, which has no cache), a garbage round clears the worker's copies", async () => {
    const { worker } = started[0]!;
    const run = await t.db.prisma.run.findFirstOrThrow({ where: { name: 'bounded' }, include: { stages: true } });
    const datasetId = run.stages[0]!.datasetId!;
    const datasetDir = path.join(worker.context.workDir, 'datasets', datasetId);
    expect(fs.existsSync(datasetDir)).toBe(true);
    const cachedBefore = cachedArtifacts(worker);
    expect(cachedBefore.length).toBeGreaterThan(0);

    const deleted = await deleteRun({ db: t.db }, run.id);
    expect(deleted.ok && deleted.value).toMatchObject({ datasets: 1 });
    expect(await t.db.prisma.artifact.count()).toBe(0);
    expect(cachedArtifacts(worker)).toEqual(cachedBefore); // the worker has not looked yet

    const report = await worker.collectGarbage();
    expect(report?.local.entries).toBe(cachedBefore.length + 1); // the cached artifacts and the dataset folder
    expect(cachedArtifacts(worker)).toEqual([]);
    expect(fs.existsSync(datasetDir)).toBe(false);
  });
});

/** The artifacts a worker keeps in its local cache, by sha256. */
function cachedArtifacts(worker: RunningWorker): string[] {
  const cacheDir = worker.context.store.cacheDir!;
  return fs
    .readdirSync(cacheDir)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => fs.readdirSync(path.join(cacheDir, d)))
    .sort();
}

describe('a floor between checkpoints in a worker', () => {
  it('writes only the first and the last checkpoint of a stage when the floor is an hour', async () => {
    const { redis } = await workerWith('floor', 3600);
    const { stageId } = await runToEnd(redis, oneStage('floored', 30));
    const events = await t.db.prisma.stageEvent.findMany({
      where: { stageId, type: 'checkpointed' },
      orderBy: { step: 'asc' },
    });
    expect(events.map((e) => e.step)).toEqual([10, 30]);
  });
});
