/**
 * Redis is a queue, Postgres is the truth: a Redis restarted empty in the middle of a run (a
 * redis-server of this test's own, keeping nothing on disk) loses every job of it, and the
 * worker's reconciler queues the run's flow again, so the run still ends, succeeded. Real
 * Postgres, a worker in this process.
 */
import { FlowProducer, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { createRedis, jobId, QUEUE, startLocalRedis, submitRun, type LocalRedis } from '@miniglm/core/service';
import { DEFAULT_SETTINGS, startWorker, type RunningWorker } from '@miniglm/worker';
import { createContext } from '../src/context.ts';
import { startReconciler } from '../src/reconcile.ts';
import { tempDir, testPrefix, tinyCurriculum, waitFor, waitForRun } from './helpers.ts';

let t: TestDb;
let local: LocalRedis;
let redis: Redis;
let flows: FlowProducer;
let worker: RunningWorker;
const prefix = testPrefix('reconcile');

beforeAll(async () => {
  t = await openTestDb('postgres', 'reconcile');
  local = await startLocalRedis();
  redis = createRedis(local.url, { blocking: true });
  flows = new FlowProducer({ connection: redis, prefix });
  flows.on('error', () => {});
  worker = await startWorker({
    db: t.db,
    redisUrl: local.url,
    prefix,
    workDir: tempDir('reconcile'),
    workerId: 'w-reconcile',
    settings: { reconcileIntervalMs: 500, reconcileGraceMs: 1000 },
    log: () => {},
  });
});

afterAll(async () => {
  await worker?.close();
  await flows?.close();
  redis?.disconnect();
  await local?.stop();
  await t?.cleanup();
});

describe('the reconciler', () => {
  it('queues again the run whose jobs a Redis restart lost, and the run succeeds', async () => {
    const c = tinyCurriculum('redis-restart');
    const curriculum = { ...c, stages: [{ ...c.stages[0]!, iterations: 60, checkpointEvery: 10 }, c.stages[1]!] };
    const submitted = await submitRun({ prisma: t.db.prisma, flows }, curriculum);
    if (!submitted.ok) throw new Error(submitted.error);
    const runId = submitted.value.id;
    const first = submitted.value.stages[0]!.id;
    await waitFor(
      'the first stage to train',
      async () => {
        const s = await t.db.prisma.stage.findUniqueOrThrow({ where: { id: first } });
        return s.status === 'running' && s.step >= 5 ? s : undefined;
      },
      90_000,
      50,
    );

    // Restart Redis on the same port: a new redis-server that keeps nothing on disk starts
    // empty, every job of the run is gone.
    const { port, pid } = local;
    await local.stop();
    local = await startLocalRedis({ port });
    expect(local.pid).not.toBe(pid);

    const run = await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled'], 180_000);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const stages = await t.db.prisma.stage.findMany({ where: { runId }, orderBy: { index: 'asc' } });
    expect(stages.map((s) => [s.status, s.step])).toEqual([
      ['succeeded', 60],
      ['succeeded', 10],
    ]);
    expect(await t.db.prisma.evaluation.count({ where: { runId } })).toBe(1);
    // One point per step: whatever ran twice wrote the same steps again, not extra ones.
    const points = await t.db.prisma.metricPoint.findMany({
      where: { stageId: first, key: 'trainLoss' },
      orderBy: { step: 'asc' },
    });
    expect(points.map((p) => p.step)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const requeued = await t.db.prisma.stageEvent.findMany({
      where: { stage: { runId }, type: 'queued', message: { contains: 'Redis had lost' } },
    });
    expect(requeued.length).toBeGreaterThanOrEqual(1);
  });

  it('leaves alone a run whose flow Redis still has, and fails one whose flow failed there unrecorded', async () => {
    await worker.close(); // from here on no worker takes jobs: the flows stay as this test leaves them
    // A flow that failed in Redis while Postgres never heard of it (the worker that saw the
    // failure died before writing it): bare BullMQ workers, which write nothing to Postgres,
    // fail its prepare job, and with it (BullMQ fails a parent when its worker picks it up)
    // the stage and the evaluate job.
    const lost = await submitRun({ prisma: t.db.prisma, flows }, tinyCurriculum('failed-unrecorded'));
    if (!lost.ok) throw new Error(lost.error);
    const connection = createRedis(local.url, { blocking: true });
    const failing = [QUEUE.prepare, QUEUE.train, QUEUE.evaluate].map((queue) => {
      const w = new Worker(
        queue,
        async () => {
          throw new UnrecoverableError('the disk is full (test)');
        },
        { connection, prefix },
      );
      w.on('error', () => {});
      return w;
    });
    const evaluate = new Queue(QUEUE.evaluate, { connection: redis, prefix });
    await waitFor('the flow to fail in Redis', async () => {
      const root = await evaluate.getJob(jobId.evaluate(lost.value.id));
      return (await root?.getState()) === 'failed' ? true : undefined;
    });
    await Promise.all(failing.map((w) => w.close()));
    connection.disconnect();
    await evaluate.close();
    // A queued run whose flow is in Redis, waiting for a worker.
    const waiting = await submitRun({ prisma: t.db.prisma, flows }, tinyCurriculum('still-queued'));
    if (!waiting.ok) throw new Error(waiting.error);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // both older than the grace period

    const reconciler = startReconciler(
      createContext({
        db: t.db,
        redis,
        prefix,
        workerId: 'reconciler',
        workDir: tempDir('reconciler'),
        settings: { ...DEFAULT_SETTINGS, reconcileIntervalMs: 60_000, reconcileGraceMs: 1000 },
        log: () => {},
      }),
    );
    const report = await reconciler.reconcile();
    await reconciler.close();
    expect(report?.failed).toContain(lost.value.id);
    expect(report?.requeued).not.toContain(waiting.value.id);
    const failed = await t.db.prisma.run.findUniqueOrThrow({ where: { id: lost.value.id }, include: { stages: true } });
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('prepare: the disk is full (test)');
    expect(failed.stages.every((s) => s.status === 'cancelled')).toBe(true);
    expect((await t.db.prisma.run.findUniqueOrThrow({ where: { id: waiting.value.id } })).status).toBe('queued');
  });
});
