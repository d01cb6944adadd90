/**
 * A worker in this process against the real Postgres and Redis: a two-stage curriculum
 * runs through its flow (prepare → tang → qa → evaluate), writes metrics, checkpoints,
 * lineage and an evaluation, and a second run reuses the prepared datasets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { parseCurriculum, runCurriculum } from '@miniglm/core';
import { submitRun } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitForRun } from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
let worker: RunningWorker;
const prefix = testPrefix('worker');

beforeAll(async () => {
  t = await openTestDb('postgres', 'worker');
  r = testRedis(prefix);
  worker = await startWorker({
    db: t.db,
    redisUrl: REDIS_URL,
    prefix,
    workDir: tempDir('worker'),
    workerId: 'w-inprocess',
    log: () => {},
  });
});

afterAll(async () => {
  await worker?.close();
  await r?.cleanup();
  await t?.cleanup();
});

describe('a worker in this process', () => {
  it('runs a two-stage curriculum to an evaluation, and a second run reuses its datasets', async () => {
    const submitted = await submitRun({ prisma: t.db.prisma, flows: r.flows }, tinyCurriculum('inproc'));
    expect(submitted.ok).toBe(true);
    if (!submitted.ok) return;
    const run = await waitForRun(t.db, submitted.value.id, ['succeeded', 'failed', 'cancelled']);
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');

    const stages = await t.db.prisma.stage.findMany({
      where: { runId: run.id },
      orderBy: { index: 'asc' },
      include: { checkpoints: { orderBy: { step: 'asc' } } },
    });
    expect(stages.map((s) => [s.status, s.step])).toEqual([
      ['succeeded', 12],
      ['succeeded', 10],
    ]);
    expect(stages[0]!.checkpoints.map((c) => c.step)).toEqual([4, 8, 12]);
    expect(stages[1]!.checkpoints.map((c) => c.step)).toEqual([5, 10]);
    // Lineage: stage 2 starts from stage 1's last checkpoint; each has its dataset.
    expect(stages[1]!.parentCheckpointId).toBe(stages[0]!.checkpoints.at(-1)!.id);
    expect(stages.every((s) => s.datasetId)).toBe(true);
    const points = await t.db.prisma.metricPoint.findMany({
      where: { runId: run.id, key: 'trainLoss' },
      orderBy: [{ stageId: 'asc' }, { step: 'asc' }],
    });
    expect(points.length).toBe(22);
    const evaluation = await t.db.prisma.evaluation.findFirstOrThrow({ where: { runId: run.id } });
    expect(evaluation.perplexity).toBeGreaterThan(1);
    expect((evaluation.samples as unknown[]).length).toBe(1);
    expect(run.params).toBeGreaterThan(0);

    const again = await submitRun({ prisma: t.db.prisma, flows: r.flows }, tinyCurriculum('inproc-2', { seed: 7 }));
    if (!again.ok) throw new Error(again.error);
    const second = await waitForRun(t.db, again.value.id, ['succeeded', 'failed', 'cancelled']);
    expect(second.status).toBe('succeeded');
    expect(await t.db.prisma.dataset.count()).toBe(2);
    // Same data, same seed, same model: the same numbers.
    const final = async (runId: string) =>
      (await t.db.prisma.metricPoint.findMany({ where: { runId, key: 'trainLoss' }, orderBy: [{ step: 'asc' }] }))
        .map((p) => p.value)
        .sort();
    expect(await final(second.id)).toEqual(await final(run.id));
  });

  it('trains a stage to the same numbers as `miniglm train` does locally', async () => {
    const curriculum = tinyCurriculum('same-as-local');
    const submitted = await submitRun({ prisma: t.db.prisma, flows: r.flows }, curriculum);
    if (!submitted.ok) throw new Error(submitted.error);
    expect((await waitForRun(t.db, submitted.value.id, ['succeeded', 'failed', 'cancelled'])).status).toBe('succeeded');

    const out = tempDir('local-run');
    const parsed = parseCurriculum(curriculum);
    if (!parsed.ok) throw new Error(parsed.error);
    await runCurriculum(parsed.value, {
      outDir: out,
      baseDir: out,
      dataDir: path.join(out, 'datasets'),
      // No backend named, as the worker names none: both take the best available one.
    });
    for (const [index, stage] of curriculum.stages.entries()) {
      const local = fs
        .readFileSync(path.join(out, 'stages', stage.name, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { trainLoss: number }).trainLoss);
      const stageId = submitted.value.stages[index]!.id;
      const service = (
        await t.db.prisma.metricPoint.findMany({ where: { stageId, key: 'trainLoss' }, orderBy: { step: 'asc' } })
      ).map((p) => p.value);
      // Equal to the last digits Postgres keeps (its text form of a double drops the 17th).
      expect(service.length, stage.name).toBe(local.length);
      service.forEach((value, i) =>
        expect(Math.abs(value - local[i]!) / local[i]!, `${stage.name} step ${i + 1}`).toBeLessThan(1e-14),
      );
    }
  });
});
