/**
 * Cancel against the write fence, with the worst case for it: a checkpoint every step, so the
 * training child produces checkpoints as fast as it can train. Once the cancel is recorded in
 * Postgres (cancelRun has returned), not one more checkpoint or metric point of the run may
 * land, and the stage reads cancelled within a bound. Real Postgres and Redis, a worker in
 * this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Curriculum } from '@miniglm/core';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { cancelChannel, cancelRun, submitRun } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitFor } from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
let worker: RunningWorker;
const prefix = testPrefix('cancel-fence');

beforeAll(async () => {
  t = await openTestDb('postgres', 'cancel_fence');
  r = testRedis(prefix);
  worker = await startWorker({
    db: t.db,
    redisUrl: REDIS_URL,
    prefix,
    workDir: tempDir('cancel-fence'),
    workerId: 'w-cancel-fence',
    log: () => {},
  });
});

afterAll(async () => {
  await worker?.close();
  await r?.cleanup();
  await t?.cleanup();
});

/** One pretraining stage far too long to finish, with a checkpoint after every step. */
function checkpointEveryStep(name: string): Curriculum {
  const c = tinyCurriculum(name);
  return { ...c, stages: [{ ...c.stages[0]!, iterations: 100_000, checkpointEvery: 1, evalEvery: 1000 }] };
}

describe('cancel with a checkpoint every step', () => {
  it('stops every write of the run at the cancel, and the stage reads cancelled within seconds', async () => {
    const submitted = await submitRun({ prisma: t.db.prisma, flows: r.flows }, checkpointEveryStep('fence'));
    if (!submitted.ok) throw new Error(submitted.error);
    const runId = submitted.value.id;
    const stageId = submitted.value.stages[0]!.id;
    const checkpoints = () =>
      t.db.prisma.checkpoint.findMany({
        where: { stageId },
        orderBy: { step: 'asc' },
        select: { id: true, step: true },
      });
    // Written, that is: the run's retention policy (keep the last 3 and the best) deletes the
    // older rows as new ones land, so the stage's events count them.
    const written = () => t.db.prisma.stageEvent.count({ where: { stageId, type: 'checkpointed' } });
    await waitFor('ten checkpoints', async () => ((await written()) >= 10 ? true : undefined), 90_000, 50);

    const cancelled = await cancelRun(
      { prisma: t.db.prisma, publish: (id) => r.redis.publish(cancelChannel(prefix), id) },
      runId,
    );
    expect(cancelled.ok).toBe(true);
    // The cancel is committed now: what is in the tables is all the run may ever have.
    const atCancel = await checkpoints();
    const pointsAtCancel = await t.db.prisma.metricPoint.count({ where: { stageId } });
    const asked = Date.now();

    const stage = await waitFor(
      'the stage to read cancelled',
      async () => {
        const s = await t.db.prisma.stage.findUniqueOrThrow({ where: { id: stageId } });
        return s.status === 'cancelled' ? s : undefined;
      },
      30_000,
      20,
    );
    const stoppedAfterMs = Date.now() - asked;
    expect(stoppedAfterMs).toBeLessThan(5_000);

    // Give a child that was not stopped, or a parent still working through a backlog of
    // checkpoint messages, the time to write more: nothing may appear.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await checkpoints()).toEqual(atCancel);
    expect(await t.db.prisma.metricPoint.count({ where: { stageId } })).toBe(pointsAtCancel);
    const lateEvents = await t.db.prisma.stageEvent.count({
      where: { stageId, type: 'checkpointed', step: { gt: atCancel.at(-1)!.step } },
    });
    expect(lateEvents).toBe(0);

    const run = await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run.status).toBe('cancelled');
    // The stage says where it stopped: no further than its last accepted write.
    expect(stage.step).toBeGreaterThanOrEqual(atCancel.at(-1)!.step);
    const events = await t.db.prisma.stageEvent.findMany({ where: { stageId, type: 'cancelled' } });
    expect(events).toHaveLength(1);
    expect(events[0]!.step).toBe(stage.step);
    console.log(
      `cancel-fence: ${await written()} checkpoints written (${atCancel.length} kept) before the cancel, stage cancelled after ${stoppedAfterMs} ms`,
    );
  });
});
