/**
 * Infrastructure errors, against the real Postgres and Redis: a database that refuses a write
 * (here a trigger that raises, as a full disk or a lost connection would) is not the user's
 * fault, so the job is retried with backoff (BullMQ attempts and exponential backoff,
 * queues.ts); when the attempts are spent the run fails with a plain message — one line, the
 * database's own words — and never with the library's source code (Prisma's errors carry a
 * code frame of its minified runtime).
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { jobId, QUEUE, submitRun } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { plainError } from '../src/plain-error.ts';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitFor, waitForRun } from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
let worker: RunningWorker;
const prefix = testPrefix('infra-errors');

beforeAll(async () => {
  t = await openTestDb('postgres', 'infra_errors');
  r = testRedis(prefix);
  worker = await startWorker({
    db: t.db,
    redisUrl: REDIS_URL,
    prefix,
    workDir: tempDir('infra-errors'),
    workerId: 'w-infra-errors',
    log: () => {},
  });
});

afterAll(async () => {
  await worker?.close();
  await r?.cleanup();
  await t?.cleanup();
});

describe('infrastructure errors', () => {
  it('a Prisma error reads as one plain line', async () => {
    const run = await t.db.prisma.run.create({ data: { name: 'overflow', seed: 1, curriculum: {} } });
    const error = await t.db.prisma.run.update({ where: { id: run.id }, data: { params: 77e9 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).message.length).toBeGreaterThan(2000); // the code frame of the minified runtime
    expect(plainError(error)).toBe(
      'database error (Run): value "77000000000" is out of range for type integer, Prisma P2020',
    );
    await t.db.prisma.run.delete({ where: { id: run.id } });
  });

  it('are retried with backoff, then fail the run with a plain message', async () => {
    // The prepare job's last write (the run's tokenizer and parameter count) is refused.
    await t.db.prisma.$executeRawUnsafe(`
      CREATE FUNCTION refuse_params() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.params IS NOT NULL THEN RAISE EXCEPTION 'could not extend file: No space left on device (test)'; END IF;
        RETURN NEW;
      END $$`);
    await t.db.prisma.$executeRawUnsafe(
      `CREATE TRIGGER refuse_params BEFORE UPDATE ON "Run" FOR EACH ROW EXECUTE FUNCTION refuse_params()`,
    );
    const c = tinyCurriculum('disk-full');
    const submitted = await submitRun({ prisma: t.db.prisma, flows: r.flows }, { ...c, stages: [c.stages[0]!] });
    if (!submitted.ok) throw new Error(submitted.error);
    const runId = submitted.value.id;

    const run = await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled']);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(
      /^prepare: database error( \(Run\))?: could not extend file: No space left on device \(test\)/,
    );
    expect(run.error).not.toMatch(/\n|function|=>|invocation/);
    expect(run.error!.length).toBeLessThan(200);

    const queue = new Queue(QUEUE.prepare, { connection: r.redis, prefix });
    const job = await waitFor('the prepare job to fail for good', async () => {
      const j = await queue.getJob(jobId.prepare(runId));
      return j && (await j.getState()) === 'failed' ? j : undefined;
    });
    await queue.close();
    // Three attempts, 2 s and then 4 s apart (exponential backoff from 2 s).
    expect(job.attemptsMade).toBe(3);
    expect(job.finishedOn! - job.timestamp).toBeGreaterThanOrEqual(6000);
    expect(job.failedReason).toBe(run.error);
    const stages = await t.db.prisma.stage.findMany({ where: { runId } });
    expect(stages.map((s) => s.status)).toEqual(['cancelled']);
  });
});
