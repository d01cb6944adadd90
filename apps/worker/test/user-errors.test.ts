/**
 * User errors through a worker, against the real Postgres and Redis: a stage whose parent
 * checkpoint is corrupt (in the database, or a stored file that is not a whole checkpoint), a
 * model that cannot fit in memory, and a loss that diverges each fail the run at once with a
 * message naming the problem. Retrying could not fix any of them: the stage's job runs once
 * (BullMQ's attemptsMade 1, the stage's attempts 1, no 'retried' event), where an
 * infrastructure fault would be tried three times.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Curriculum } from '@miniglm/core';
import { ArtifactStore } from '@miniglm/core/db';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { jobId, QUEUE, submitRun } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { REDIS_URL, tempDir, testPrefix, testRedis, tinyCurriculum, waitFor, waitForRun } from './helpers.ts';

let t: TestDb;
let r: ReturnType<typeof testRedis>;
let worker: RunningWorker;
let trainQueue: Queue;
/** No cache: the bytes a test stores are read back from the database by the worker. */
let store: ArtifactStore;
const prefix = testPrefix('user-errors');

/** A finished one-stage run whose checkpoint the corrupt copies are made from. */
let base: { stageId: string; bytes: Uint8Array };

/** The tiny curriculum's first stage alone, with parts replaced. */
function oneStage(name: string, stage: object = {}, over: object = {}): Curriculum {
  const c = tinyCurriculum(name, over);
  return { ...c, stages: [{ ...c.stages[0]!, iterations: 8, ...stage }] };
}

async function submit(c: Curriculum): Promise<string> {
  const s = await submitRun({ prisma: t.db.prisma, flows: r.flows }, c);
  if (!s.ok) throw new Error(s.error);
  return s.value.id;
}

/** A checkpoint row of the base stage holding `bytes`, as if a worker had stored them. */
async function storedCheckpoint(bytes: Uint8Array, step: number): Promise<{ id: string; sha256: string }> {
  const { sha256 } = await store.put(bytes, 'checkpoint');
  const row = await t.db.prisma.checkpoint.create({
    data: { stageId: base.stageId, step, artifactSha256: sha256 },
  });
  return { id: row.id, sha256 };
}

beforeAll(async () => {
  t = await openTestDb('postgres', 'user_errors');
  r = testRedis(prefix);
  store = new ArtifactStore(t.db);
  trainQueue = new Queue(QUEUE.train, { connection: r.redis, prefix });
  worker = await startWorker({
    db: t.db,
    redisUrl: REDIS_URL,
    prefix,
    workDir: tempDir('user-errors'),
    workerId: 'w-user-errors',
    log: () => {},
  });
  const runId = await submit(oneStage('base'));
  expect((await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled'])).status).toBe('succeeded');
  const stage = await t.db.prisma.stage.findUniqueOrThrow({ where: { runId_index: { runId, index: 0 } } });
  const last = await t.db.prisma.checkpoint.findFirstOrThrow({
    where: { stageId: stage.id },
    orderBy: { step: 'desc' },
  });
  base = { stageId: stage.id, bytes: (await store.get(last.artifactSha256))! };
});

afterAll(async () => {
  await worker?.close();
  await trainQueue?.close();
  await r?.cleanup();
  await t?.cleanup();
});

/** The run failed with `reason`, and its stage ran exactly once. */
async function expectFailedAtOnce(runId: string, reason: RegExp): Promise<void> {
  const run = await waitForRun(t.db, runId, ['succeeded', 'failed', 'cancelled']);
  expect(run.status).toBe('failed');
  expect(run.error).toMatch(reason);
  expect(run.error).not.toMatch(/\n|internal error/);

  const job = await waitFor(`the train job of run ${runId} to fail`, async () => {
    const j = await trainQueue.getJob(jobId.stage(runId, 0));
    return j && (await j.getState()) === 'failed' ? j : undefined;
  });
  expect(job.attemptsMade).toBe(1);
  expect(job.failedReason).toMatch(reason);

  const stage = await t.db.prisma.stage.findUniqueOrThrow({ where: { runId_index: { runId, index: 0 } } });
  expect(stage.status).toBe('failed');
  expect(stage.attempts).toBe(1);
  expect(stage.error).toMatch(reason);
  const events = await t.db.prisma.stageEvent.findMany({ where: { stageId: stage.id }, orderBy: { id: 'asc' } });
  const types = events.map((e) => e.type);
  expect(types.filter((type) => type === 'started')).toHaveLength(1);
  expect(types).not.toContain('retried');
  expect(types.at(-1)).toBe('failed');
}

describe('user errors fail the run at once, never retried', () => {
  it('a parent checkpoint whose stored bytes no longer match their sha256', async () => {
    // Stored intact, then damaged in the database: the worker reads it from there (never cached).
    const copy = Uint8Array.from(base.bytes);
    copy[copy.length - 1] ^= 0xff;
    const { id, sha256 } = await storedCheckpoint(copy, 1001);
    await t.db.prisma.artifactChunk.update({
      where: { sha256_index: { sha256, index: 0 } },
      data: { bytes: Buffer.from(base.bytes) },
    });
    const runId = await submit(oneStage('corrupt-artifact', {}, { initFrom: id }));
    await expectFailedAtOnce(
      runId,
      // Read as a whole, or chunk by chunk once chunks have their own hashes (fee2f1c).
      new RegExp(
        `^stage-0: checkpoint ${id}: artifact ${sha256} is corrupt: (read \\d+ bytes|chunk \\d+ of \\d+ has) sha256 [0-9a-f]{64}`,
      ),
    );
  });

  it('a parent checkpoint that is not a whole checkpoint file', async () => {
    const { id } = await storedCheckpoint(base.bytes.subarray(0, Math.floor(base.bytes.length * 0.6)), 1002);
    const runId = await submit(oneStage('truncated-parent', {}, { initFrom: id }));
    await expectFailedAtOnce(runId, new RegExp(`^stage tang: parent checkpoint ${id}: \\S+ is truncated`));
  });

  it('a model that does not fit in memory', async () => {
    // 300 M parameters with a batch of 4096 x 32 tokens: about a terabyte of activations even
    // with the native backend's fused kernels, more than a test machine has. Refused before
    // the model is built.
    const runId = await submit(
      oneStage(
        'too-big',
        { batchSize: 4096 },
        { model: { kind: 'gpt', layers: 24, heads: 8, dim: 1024, blockSize: 32 } },
      ),
    );
    await expectFailedAtOnce(
      runId,
      /^stage tang: training this model with batchSize 4096 and blockSize 32 needs about [\d.]+ [GT]iB \(.*\), more than the [\d.]+ GiB (the wasm backend can address|this machine has)/,
    );
    // It stopped before training: no metric, no checkpoint.
    const stage = await t.db.prisma.stage.findUniqueOrThrow({ where: { runId_index: { runId, index: 0 } } });
    expect(await t.db.prisma.metricPoint.count({ where: { stageId: stage.id } })).toBe(0);
    expect(await t.db.prisma.checkpoint.count({ where: { stageId: stage.id } })).toBe(0);
  });

  it('a loss that diverges', async () => {
    // lr 10 with weight decay 10 multiplies the weights by 1 - 10 * 10 each step: they
    // overflow float32 within a few steps.
    const runId = await submit(
      oneStage('diverged', { iterations: 40, lr: 10, weightDecay: 10, warmup: 0, checkpointEvery: 4 }),
    );
    await expectFailedAtOnce(
      runId,
      /^stage tang diverged: (loss|the gradient norm) became (NaN|-?Infinity) at step \d+; the stage stopped/,
    );
  });
});
