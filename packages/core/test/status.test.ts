/**
 * The status writers (service/status.ts) against a real Postgres: each moves a run or stage
 * only along its edge, answers whether it did, and leaves a row that another process has just
 * moved as that process left it; a stage's writes are fenced by the attempt that holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/db/index.ts';
import { openTestDb, type TestDb } from '../src/db/testing.ts';
import {
  cancelStageOfEndedRun,
  claimStage,
  markRunCancelled,
  markRunFailed,
  markRunRunning,
  markRunSucceeded,
  moveHeldStage,
  updateHeldStage,
  writeHeldStage,
} from '../src/service/status.ts';

let t: TestDb;
let prisma: PrismaClient;
beforeAll(async () => {
  t = await openTestDb('postgres', 'status');
  prisma = t.db.prisma;
});
afterAll(async () => {
  await t?.cleanup();
});

/** A queued run of three queued stages. */
async function makeRun() {
  const run = await prisma.run.create({
    data: {
      name: 'states',
      seed: 1,
      curriculum: {},
      stages: {
        create: [0, 1, 2].map((index) => ({ index, name: `s${index}`, kind: 'pretrain' as const, iterations: 10 })),
      },
    },
    include: { stages: { orderBy: { index: 'asc' } } },
  });
  return { runId: run.id, stages: run.stages };
}

const statusOf = async (runId: string) => {
  const run = await prisma.run.findUniqueOrThrow({ where: { id: runId }, include: { stages: true } });
  return { run: run.status, stages: run.stages.sort((a, b) => a.index - b.index).map((s) => s.status) };
};
const eventsOf = (stageId: string) =>
  prisma.stageEvent.findMany({ where: { stageId }, orderBy: { id: 'asc' }, select: { type: true, workerId: true } });

describe('run status', () => {
  it('starts once, and succeeds only from running', async () => {
    const { runId } = await makeRun();
    expect(await markRunSucceeded(prisma, runId)).toBe(false);
    expect(await markRunRunning(prisma, runId)).toBe(true);
    expect(await markRunRunning(prisma, runId)).toBe(false);
    expect(await markRunSucceeded(prisma, runId)).toBe(true);
    const run = await prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run).toMatchObject({ status: 'succeeded', error: null });
    expect(run.startedAt).not.toBeNull();
    expect(run.finishedAt).not.toBeNull();
  });

  it('cancel closes the queued stages, leaves the running one to its worker, and does not undo a result', async () => {
    const { runId, stages } = await makeRun();
    const held = await claimStage(prisma, stages[0]!, { workerId: 'w', parentCheckpointId: null, resumeStep: 0 });
    expect(held).toEqual({ id: stages[0]!.id, attempt: 1 });
    expect(await markRunCancelled(prisma, runId)).toBe(true);
    expect(await statusOf(runId)).toEqual({ run: 'cancelled', stages: ['running', 'cancelled', 'cancelled'] });
    expect((await eventsOf(stages[1]!.id)).map((e) => e.type)).toEqual(['cancelled']);
    expect(await markRunCancelled(prisma, runId)).toBe(false);

    const done = await makeRun();
    await markRunRunning(prisma, done.runId);
    await markRunSucceeded(prisma, done.runId);
    expect(await markRunCancelled(prisma, done.runId)).toBe(false);
    expect((await statusOf(done.runId)).run).toBe('succeeded');
  });

  it('failing a run fails its running stage and cancels the ones that never ran, keeping finished ones', async () => {
    const { runId, stages } = await makeRun();
    await markRunRunning(prisma, runId);
    const first = await claimStage(prisma, stages[0]!, { workerId: 'w', parentCheckpointId: null, resumeStep: 0 });
    await moveHeldStage(prisma, first!, 'finish', { type: 'finished', workerId: 'w' });
    await claimStage(prisma, stages[1]!, { workerId: 'w', parentCheckpointId: null, resumeStep: 0 });
    await markRunFailed(prisma, runId, 'the loss diverged', 'w');
    expect(await statusOf(runId)).toEqual({ run: 'failed', stages: ['succeeded', 'failed', 'cancelled'] });
    const last = await prisma.stage.findUniqueOrThrow({ where: { id: stages[2]!.id } });
    expect(last.error).toBe('not run: the run failed earlier');
    expect((await eventsOf(stages[1]!.id)).map((e) => e.type)).toEqual(['started', 'failed']);
  });
});

describe('stage status', () => {
  it('of two claims made from the same read, one wins; a retry is the next attempt', async () => {
    const { stages } = await makeRun();
    const read = stages[0]!;
    const claim = { workerId: 'a', parentCheckpointId: null, resumeStep: 0 };
    const [a, b] = await Promise.all([claimStage(prisma, read, claim), claimStage(prisma, read, claim)]);
    expect([a, b].filter(Boolean)).toEqual([{ id: read.id, attempt: 1 }]);

    // The worker died: another claims the running stage from its row as it is now.
    const now = await prisma.stage.findUniqueOrThrow({ where: { id: read.id } });
    const retry = await claimStage(prisma, now, { workerId: 'b', parentCheckpointId: null, resumeStep: 4 });
    expect(retry).toEqual({ id: read.id, attempt: 2 });
    expect((await eventsOf(read.id)).map((e) => e.type)).toEqual(['started', 'retried']);
  });

  it('a superseded attempt changes nothing, and writes no event', async () => {
    const { stages } = await makeRun();
    const claim = { workerId: 'a', parentCheckpointId: null, resumeStep: 0 };
    const old = (await claimStage(prisma, stages[0]!, claim))!;
    const row = await prisma.stage.findUniqueOrThrow({ where: { id: old.id } });
    const current = (await claimStage(prisma, row, { ...claim, workerId: 'b' }))!;
    expect(await updateHeldStage(prisma, old, { step: 3 })).toBe(false);
    expect(await moveHeldStage(prisma, old, 'finish', { type: 'finished', workerId: 'a' })).toBe(false);
    expect(await updateHeldStage(prisma, current, { step: 3 })).toBe(true);
    expect(await moveHeldStage(prisma, current, 'handBack', { type: 'queued', workerId: 'b' })).toBe(true);
    const stage = await prisma.stage.findUniqueOrThrow({ where: { id: old.id } });
    expect(stage).toMatchObject({ status: 'queued', step: 3, attempts: 2 });
    expect((await eventsOf(old.id)).map((e) => e.type)).toEqual(['started', 'retried', 'queued']);
  });

  it('a stage of an ended run is closed once, and a closed stage cannot be claimed', async () => {
    const { stages } = await makeRun();
    const id = stages[0]!.id;
    await cancelStageOfEndedRun(prisma, id, 'w', 'the run is cancelled');
    await cancelStageOfEndedRun(prisma, id, 'w', 'the run is cancelled');
    expect((await eventsOf(id)).map((e) => e.type)).toEqual(['cancelled']);
    const claim = { workerId: 'w', parentCheckpointId: null, resumeStep: 0 };
    expect(await claimStage(prisma, stages[0]!, claim)).toBeUndefined();
  });
});

describe('the write fence of a held stage', () => {
  const claim = { workerId: 'w', parentCheckpointId: null, resumeStep: 0 };
  const checkpointed = (stageId: string, step: number) => () =>
    prisma.stageEvent.create({ data: { stageId, type: 'checkpointed', workerId: 'w', step } });

  it('writes while the attempt holds the stage; refuses a superseded attempt and a cancelled run', async () => {
    const { runId, stages } = await makeRun();
    const held = (await claimStage(prisma, stages[0]!, claim))!;
    expect(await writeHeldStage(prisma, held, { step: 1 }, checkpointed(held.id, 1))).toMatchObject({ ok: true });
    const stale = { ...held, attempt: held.attempt - 1 };
    expect(await writeHeldStage(prisma, stale, { step: 2 }, checkpointed(held.id, 2))).toEqual({
      ok: false,
      refused: 'lost',
    });
    expect(await markRunCancelled(prisma, runId)).toBe(true);
    expect(await writeHeldStage(prisma, held, { step: 3 }, checkpointed(held.id, 3))).toEqual({
      ok: false,
      refused: 'run-ended',
      runStatus: 'cancelled',
    });
    // Neither refused write left anything: not the event, not the progress.
    expect((await eventsOf(held.id)).map((e) => e.type)).toEqual(['started', 'checkpointed']);
    expect((await prisma.stage.findUniqueOrThrow({ where: { id: held.id } })).step).toBe(1);
  });

  it('a cancel waits for a write already past the fence, and every later write is refused', async () => {
    const { runId, stages } = await makeRun();
    const held = (await claimStage(prisma, stages[0]!, claim))!;
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const write = writeHeldStage(prisma, held, { step: 1 }, async (tx) => {
      await holding; // the transaction is open and past the fence
      await tx.stageEvent.create({ data: { stageId: held.id, type: 'checkpointed', workerId: 'w', step: 1 } });
      order.push('written');
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const cancel = markRunCancelled(prisma, runId).then((moved) => order.push(`cancelled ${moved}`));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(order).toEqual([]); // the cancel is waiting for the write's transaction
    release();
    await Promise.all([write, cancel]);
    expect(order).toEqual(['written', 'cancelled true']);
    expect(await writeHeldStage(prisma, held, { step: 2 }, checkpointed(held.id, 2))).toMatchObject({
      refused: 'run-ended',
    });
  });
});
