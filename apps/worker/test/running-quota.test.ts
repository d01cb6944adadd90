/**
 * The running runs quota is a cap on concurrency, kept by the workers: with two workers in
 * this process (real Postgres and Redis), a key that may run one run at a time runs its three
 * runs one after the other, each one held back while another runs (neither failed nor counted
 * as an attempt), while another key's run goes alongside. A held-back run stays queued: the
 * reconciler does not take it for lost, and cancelling it removes its jobs.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { cancelRun, createApiKey, jobId, QUEUE, setApiKeyQuotas, submitRun } from '@miniglm/core/service';
import type { Curriculum } from '@miniglm/core';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitFor, waitForRun } from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
let prepareQueue: Queue;
let evaluateQueue: Queue;
const workers: RunningWorker[] = [];
const prefix = testPrefix('running-quota');
const keys = { alice: '', bob: '' };

beforeAll(async () => {
  t = await openTestDb('postgres', 'running_quota');
  r = testRedis(prefix);
  prepareQueue = new Queue(QUEUE.prepare, { connection: r.redis, prefix });
  evaluateQueue = new Queue(QUEUE.evaluate, { connection: r.redis, prefix });
  keys.alice = (await createApiKey(t.db.prisma, { name: 'alice', role: 'member', quotas: { maxRunningRuns: 1 } })).id;
  keys.bob = (await createApiKey(t.db.prisma, { name: 'bob', role: 'member' })).id;
  for (const id of ['w-quota-1', 'w-quota-2'])
    workers.push(
      await startWorker({
        db: t.db,
        redisUrl: REDIS_URL,
        prefix,
        workDir: tempDir(id),
        workerId: id,
        // A held-back run is looked at again soon; the reconciler runs only when the test asks.
        settings: { heldBackDelayMs: 200, reconcileIntervalMs: 600_000, reconcileGraceMs: 0 },
        log: () => {},
      }),
    );
});

afterAll(async () => {
  for (const w of workers) await w.close();
  await prepareQueue?.close();
  await evaluateQueue?.close();
  await r?.cleanup();
  await t?.cleanup();
});

/** A short run (one stage of a few iterations), submitted as `ownerId`. */
async function submitAs(ownerId: string, name: string): Promise<string> {
  const tiny = tinyCurriculum(name, {}, [4, 1]);
  const curriculum: Curriculum = { ...tiny, stages: [{ ...tiny.stages[0]!, checkpointEvery: 4 }] };
  const submitted = await submitRun({ prisma: t.db.prisma, flows: r.flows, ownerId }, curriculum);
  if (!submitted.ok) throw new Error(submitted.error);
  return submitted.value.id;
}

/** The messages of the "waiting: ..." events of a run's first stage. */
async function waitingEvents(runId: string): Promise<string[]> {
  const events = await t.db.prisma.stageEvent.findMany({
    where: { stage: { runId, index: 0 }, type: 'queued', message: { startsWith: 'waiting:' } },
  });
  return events.map((e) => e.message!);
}

describe('the running runs quota', () => {
  it("runs a key's runs one at a time when it may run one, while another key's run goes alongside", async () => {
    const aliceRuns = [
      await submitAs(keys.alice, 'a-1'),
      await submitAs(keys.alice, 'a-2'),
      await submitAs(keys.alice, 'a-3'),
    ];
    const bobRun = await submitAs(keys.bob, 'b-1');
    const ends = ['succeeded', 'failed', 'cancelled'];
    for (const id of [...aliceRuns, bobRun]) expect((await waitForRun(t.db, id, ends)).status).toBe('succeeded');

    // Alice's runs never overlapped: each started after the one before it had finished.
    const alice = (await t.db.prisma.run.findMany({ where: { id: { in: aliceRuns } } })).sort(
      (a, b) => a.startedAt!.getTime() - b.startedAt!.getTime(),
    );
    for (let i = 1; i < alice.length; i++)
      expect(alice[i]!.startedAt!.getTime()).toBeGreaterThanOrEqual(alice[i - 1]!.finishedAt!.getTime());
    // Bob's run was not held back by Alice's limit: it ran while her first run did.
    const bob = await t.db.prisma.run.findUniqueOrThrow({ where: { id: bobRun } });
    expect(bob.startedAt!.getTime()).toBeLessThan(alice[0]!.finishedAt!.getTime());
    expect(await waitingEvents(bobRun)).toEqual([]);

    // The last of Alice's runs waited, and its events say why, once.
    expect(await waitingEvents(alice[2]!.id)).toEqual([
      `waiting: key ${keys.alice} ("alice") has 1 of 1 runs running, the most it may run at once (running runs quota: ` +
        `this key's own limit, set by miniglm keys set ${keys.alice} --max-running-runs); this run starts when one of them ends`,
    ]);
    // Held back many times (every 200 ms while two runs trained), its prepare job still made one attempt.
    for (const id of [...aliceRuns, bobRun])
      expect((await prepareQueue.getJob(jobId.prepare(id)))!.attemptsMade).toBe(1);
  });

  it('a held-back run stays queued through a reconciling round, and cancelling it removes its jobs', async () => {
    await setApiKeyQuotas(t.db.prisma, keys.alice, { maxRunningRuns: 0 });
    // Long enough that the job is still delayed when the test looks and cancels.
    for (const w of workers) w.context.settings.heldBackDelayMs = 60_000;
    const runId = await submitAs(keys.alice, 'a-held');
    await waitFor('the run to be held back', async () =>
      (await prepareQueue.getJob(jobId.prepare(runId)))?.isDelayed().then((d) => d || undefined),
    );
    expect(await waitingEvents(runId)).toEqual([
      `waiting: key ${keys.alice} ("alice") has 0 of 0 runs running, the most it may run at once (running runs quota: ` +
        `this key's own limit, set by miniglm keys set ${keys.alice} --max-running-runs); this run starts when one of them ends`,
    ]);

    const report = await workers[0]!.reconcile();
    expect(report).toEqual({ requeued: [], failed: [] });
    expect((await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).status).toBe('queued');

    // As POST /v1/runs/:id/cancel does it (apps/api/src/routes/runs.ts).
    const cancelled = await cancelRun(
      {
        prisma: t.db.prisma,
        publish: async () => 0,
        removeJobs: (id) => evaluateQueue.remove(jobId.evaluate(id), { removeChildren: true }),
      },
      runId,
    );
    expect(cancelled.ok).toBe(true);
    const run = await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect([run.status, run.startedAt]).toEqual(['cancelled', null]);
    expect(await prepareQueue.getJob(jobId.prepare(runId))).toBeUndefined();
    expect(await evaluateQueue.getJob(jobId.evaluate(runId))).toBeUndefined();
  });
});
