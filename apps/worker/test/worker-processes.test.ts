/**
 * Workers as separate processes (`miniglm worker`), as an operator runs them, against the
 * real Postgres and Redis: kill -9 in the middle of a stage, SIGTERM, cancel, and two
 * workers sharing three runs. Locks are short here (3 s) so that a killed worker's job is
 * found stalled in seconds instead of BullMQ's default 30 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Curriculum } from '@miniglm/core';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { cancelChannel, cancelRun, jobId, QUEUE, submitRun } from '@miniglm/core/service';
import { Queue } from 'bullmq';
import {
  spawnWorker,
  tempDir,
  testPrefix,
  testRedis,
  tinyCurriculum,
  waitFor,
  waitForRun,
  type WorkerProcess,
} from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
const prefix = testPrefix('procs');
const workers: WorkerProcess[] = [];
const LOCK_MS = 1000;

beforeAll(async () => {
  t = await openTestDb('postgres', 'procs');
  r = testRedis(prefix);
});

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  await r?.cleanup();
  await t?.cleanup();
});

/** Each test starts its own workers: a worker left from another test would take its jobs. */
async function stopAll(): Promise<void> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
}

function start(id: string, lockMs = 3000): WorkerProcess {
  const w = spawnWorker({ databaseUrl: t.where, prefix, workDir: tempDir(id), id, lockMs });
  workers.push(w);
  return w;
}

/** One pretraining stage long enough to be interrupted. */
function longRun(name: string, iterations: number): Curriculum {
  const c = tinyCurriculum(name);
  return { ...c, stages: [{ ...c.stages[0]!, iterations, checkpointEvery: 10, evalEvery: 10 }] };
}

async function submit(c: Curriculum): Promise<string> {
  const s = await submitRun({ prisma: t.db.prisma, flows: r.flows }, c);
  if (!s.ok) throw new Error(s.error);
  return s.value.id;
}

const stageOf = (runId: string, index = 0) =>
  t.db.prisma.stage.findUniqueOrThrow({ where: { runId_index: { runId, index } } });

async function trainLoss(runId: string): Promise<{ step: number; value: number }[]> {
  return t.db.prisma.metricPoint.findMany({
    where: { runId, key: 'trainLoss' },
    orderBy: { step: 'asc' },
    select: { step: true, value: true },
  });
}

const steps = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

// Each case trains one or two runs of 120-150 steps in worker processes: about a minute on 2
// idle cores, and twice that beside other work. The bound is for a hung worker, not a speed.
describe('workers as processes', { timeout: 300_000 }, () => {
  it('kill -9 mid-stage: another worker resumes from the last checkpoint and the run matches an undisturbed one', async () => {
    await stopAll();
    // A short lock: the undisturbed run below must train for longer than it.
    const a = start('worker-a', LOCK_MS);
    const runId = await submit(longRun('killed', 120));
    const stage = await stageOf(runId);
    await waitFor(
      'a checkpoint at step 20',
      async () =>
        (await t.db.prisma.checkpoint.findFirst({ where: { stageId: stage.id, step: { gte: 20 } } })) ?? undefined,
    );
    a.child.kill('SIGKILL');
    await a.exited;
    const stepAtKill = (await stageOf(runId)).step;
    expect(stepAtKill).toBeLessThan(120);

    const b = start('worker-b', LOCK_MS);
    const done = await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled']);
    expect(done.status, b.output()).toBe('succeeded');
    const after = await stageOf(runId);
    expect(after.attempts).toBe(2);
    expect(after.workerId).toBe('worker-b');
    const events = await t.db.prisma.stageEvent.findMany({ where: { stageId: stage.id }, orderBy: { id: 'asc' } });
    const retried = events.find((e) => e.type === 'retried');
    expect(retried?.workerId).toBe('worker-b');
    expect(retried!.step).toBeGreaterThanOrEqual(20);
    // One point per step, no gaps, no duplicates.
    const killed = await trainLoss(runId);
    expect(killed.map((p) => p.step)).toEqual(steps(120));

    // The same curriculum, undisturbed, gives the same numbers step for step.
    const clean = await submit(longRun('undisturbed', 120));
    expect((await waitForRun(t.db, clean, ['succeeded', 'failed', 'cancelled'])).status).toBe('succeeded');
    expect((await trainLoss(clean)).map((p) => p.value)).toEqual(killed.map((p) => p.value));
    // Training for longer than the lock never counted as stalled: one attempt.
    const cleanStage = await stageOf(clean);
    expect(cleanStage.attempts).toBe(1);
    expect(cleanStage.finishedAt!.getTime() - cleanStage.startedAt!.getTime()).toBeGreaterThan(LOCK_MS);
  });

  it('SIGTERM: the worker checkpoints, hands the job back and exits 0; the next worker finishes the stage', async () => {
    await stopAll();
    const c = start('worker-c');
    const runId = await submit(longRun('sigterm', 150));
    await waitFor('training under way', async () => ((await stageOf(runId)).step >= 15 ? true : undefined));
    c.child.kill('SIGTERM');
    const exit = await c.exited;
    expect(exit, c.output()).toEqual({ code: 0, signal: null });
    const handedBack = await stageOf(runId);
    expect(handedBack.status, c.output()).toBe('queued');
    expect(handedBack.step).toBeLessThan(150);
    const checkpoint = await t.db.prisma.checkpoint.findFirst({
      where: { stageId: handedBack.id },
      orderBy: { step: 'desc' },
    });
    expect(checkpoint?.step).toBe(handedBack.step);
    const queue = new Queue(QUEUE.train, { connection: r.redis, prefix });
    expect(await (await queue.getJob(jobId.stage(runId, 0)))!.getState()).toBe('waiting');
    await queue.close();

    const next = start('worker-d');
    expect((await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled'])).status, next.output()).toBe(
      'succeeded',
    );
    expect((await trainLoss(runId)).map((p) => p.step)).toEqual(steps(150));
    const events = await t.db.prisma.stageEvent.findMany({ where: { stageId: handedBack.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toContain('queued');
    expect(events.find((e) => e.type === 'retried')?.step).toBe(handedBack.step);
  });

  it('cancel stops a training stage at once; the run reads cancelled and keeps the checkpoints written before', async () => {
    await stopAll();
    const w = start('worker-cancel');
    const runId = await submit(longRun('cancelled', 2000));
    await waitFor('training under way', async () => ((await stageOf(runId)).step >= 12 ? true : undefined));
    const cancelled = await cancelRun(
      { prisma: t.db.prisma, publish: (id) => r.redis.publish(cancelChannel(prefix), id) },
      runId,
    );
    expect(cancelled.ok).toBe(true);
    const stageId = (await stageOf(runId)).id;
    const checkpointsAtCancel = await t.db.prisma.checkpoint.findMany({ where: { stageId }, select: { id: true } });
    const asked = Date.now();
    const stage = await waitFor(
      'the stage to be cancelled',
      async () => {
        const s = await stageOf(runId);
        return s.status === 'cancelled' ? s : undefined;
      },
      30_000,
      50,
    );
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(stage.step).toBeLessThan(2000);
    const run = await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run.status).toBe('cancelled');
    // Nothing is written after the cancel: the checkpoints are those it had, the last one at
    // or before where the stage stopped.
    const kept = await t.db.prisma.checkpoint.findMany({ where: { stageId }, orderBy: { step: 'asc' } });
    expect(kept.map((c) => c.id).sort()).toEqual(checkpointsAtCancel.map((c) => c.id).sort());
    expect(kept.at(-1)!.step).toBeLessThanOrEqual(stage.step);
    const events = await t.db.prisma.stageEvent.findMany({ where: { stageId: stage.id } });
    expect(
      events.some((e) => e.type === 'cancelled' && e.step === stage.step),
      `${JSON.stringify(events)}\n${w.output()}`,
    ).toBe(true);
  });

  it('two workers and three runs at once all finish, with every stage linked to its dataset and parent', async () => {
    await stopAll();
    start('worker-e');
    start('worker-f');
    const ids = await Promise.all(
      ['three-a', 'three-b', 'three-c'].map((name, i) => submit(tinyCurriculum(name, { seed: 11 + i }))),
    );
    for (const id of ids)
      expect((await waitForRun(t.db, id, ['succeeded', 'failed', 'cancelled'])).status).toBe('succeeded');
    for (const id of ids) {
      const stages = await t.db.prisma.stage.findMany({
        where: { runId: id },
        orderBy: { index: 'asc' },
        include: { checkpoints: true },
      });
      expect(stages.every((s) => s.datasetId && s.status === 'succeeded')).toBe(true);
      expect(stages[1]!.parentCheckpointId).toBe(stages[0]!.checkpoints.find((c) => c.step === 12)!.id);
    }
    const workersUsed = await t.db.prisma.stage.findMany({
      where: { runId: { in: ids } },
      select: { workerId: true },
      distinct: ['workerId'],
    });
    expect(workersUsed.length).toBeGreaterThanOrEqual(1);
  });
});
