/**
 * The only writers of `Run.status` and `Stage.status`: the API (submit, cancel) and the
 * workers (claim, finish, fail, hand back) move runs and stages through these functions
 * alone, each along an edge of RUN_TRANSITIONS or STAGE_TRANSITIONS (states.ts).
 *
 * Every write is conditional on the edge's `from` states, so a run or stage that another
 * process has just moved keeps what it was given; each function answers whether it moved
 * anything. A stage a worker holds is fenced as well by its attempt number: a worker that
 * has lost its stage to another (it stalled, the job was retried elsewhere) changes nothing,
 * because its `attempts` no longer matches the row's.
 */
import type { DbModels, Prisma, PrismaClient } from '../db/index.ts';
import {
  RUN_TRANSITIONS,
  STAGE_TRANSITIONS,
  type RunStatus,
  type RunTransition,
  type StageTransition,
} from './states.ts';

/** A stage held by one attempt of one worker: it is running, and its `attempts` is `attempt`. */
export interface HeldStage {
  id: string;
  attempt: number;
}

/** The client, or the client inside an interactive transaction. */
type Writer = Pick<PrismaClient, 'run' | 'stage'>;

// Updates that move the rows `where` matches along one edge; they return Prisma's lazy query,
// so that they can also go into `$transaction([...])`.
function moveRuns(
  db: Writer,
  where: Prisma.RunWhereInput,
  transition: RunTransition,
  data: Prisma.RunUpdateManyMutationInput = {},
) {
  const { from, to } = RUN_TRANSITIONS[transition];
  return db.run.updateMany({ where: { ...where, status: { in: [...from] } }, data: { ...data, status: to } });
}

function moveStages<T extends StageTransition>(
  db: Writer,
  where: Prisma.StageWhereInput,
  transition: T,
  data: Prisma.StageUncheckedUpdateManyInput = {},
  /** Fewer `from` states than the edge allows, when the caller needs the stage's exact state. */
  onlyFrom: readonly (typeof STAGE_TRANSITIONS)[T]['from'][number][] = STAGE_TRANSITIONS[transition].from,
) {
  return db.stage.updateMany({
    where: { ...where, status: { in: [...onlyFrom] } },
    data: { ...data, status: STAGE_TRANSITIONS[transition].to },
  });
}

// ---------------------------------------------------------------------------- runs

/**
 * The run's first job has started. `db` may be a transaction: starting a run within its
 * owner's running runs quota (running-quota.ts) counts and starts under the owner's lock.
 */
export async function markRunRunning(db: Writer, runId: string): Promise<boolean> {
  const moved = await moveRuns(db, { id: runId }, 'start', { startedAt: new Date() });
  return moved.count > 0;
}

/** The run's evaluation is written. */
export async function markRunSucceeded(prisma: PrismaClient, runId: string): Promise<boolean> {
  const moved = await moveRuns(prisma, { id: runId }, 'finish', { finishedAt: new Date(), error: null });
  return moved.count > 0;
}

/**
 * Ends a run as failed with a message a user can act on: its running stage fails with it,
 * and stages that never ran are cancelled, each with an event.
 */
export async function markRunFailed(
  prisma: PrismaClient,
  runId: string,
  message: string,
  workerId: string,
): Promise<void> {
  const now = new Date();
  const notRun = 'not run: the run failed earlier';
  const open = await prisma.stage.findMany({
    where: { runId, status: { in: [...STAGE_TRANSITIONS.fail.from] } },
    select: { id: true, status: true },
  });
  await prisma.$transaction([
    moveRuns(prisma, { id: runId }, 'fail', { error: message, finishedAt: now }),
    // Each from the state it was read in: a stage another process has just closed keeps what it
    // was given, and one that has just started is not called "not run".
    ...open.map((s) =>
      s.status === 'running'
        ? moveStages(prisma, { id: s.id }, 'fail', { error: message, finishedAt: now }, ['running'])
        : moveStages(prisma, { id: s.id }, 'cancel', { error: notRun, finishedAt: now }, ['queued']),
    ),
    prisma.stageEvent.createMany({
      data: open.map((s) => ({
        stageId: s.id,
        type: s.status === 'running' ? ('failed' as const) : ('cancelled' as const),
        workerId,
        message,
      })),
    }),
  ]);
}

/**
 * Takes back a run just written whose flow Redis did not take: its rows are deleted (stages,
 * events with them), so nothing of a refused submission survives. Only while it is still
 * queued: false when a worker has started it, which means the flow did reach Redis after all.
 */
export async function withdrawUnqueuedRun(prisma: PrismaClient, runId: string): Promise<boolean> {
  const removed = await prisma.run.deleteMany({ where: { id: runId, status: 'queued' } });
  return removed.count > 0;
}

/**
 * Cancels a run by request, and its queued stages with it (each with an event). A running
 * stage is left to its worker, which stops it at its next iteration with a checkpoint.
 * False when the run had already finished: it keeps its result.
 */
export async function markRunCancelled(prisma: PrismaClient, runId: string): Promise<boolean> {
  const now = new Date();
  const moved = await moveRuns(prisma, { id: runId }, 'cancel', { finishedAt: now, error: 'cancelled by request' });
  if (moved.count === 0) return false;
  const queued = await prisma.stage.findMany({ where: { runId, status: 'queued' }, select: { id: true } });
  await prisma.$transaction([
    moveStages(prisma, { id: { in: queued.map((s) => s.id) } }, 'cancel', { finishedAt: now }, ['queued']),
    prisma.stageEvent.createMany({
      data: queued.map((s) => ({ stageId: s.id, type: 'cancelled' as const, message: 'cancelled before it started' })),
    }),
  ]);
  return true;
}

// ---------------------------------------------------------------------------- stages

/**
 * Claims a stage for one more attempt by this worker: a queued stage, or a running one whose
 * worker is gone. Fenced by the attempt number it was read with, so of two workers that claim
 * it at once one wins; undefined for the other (or when the stage was cancelled meanwhile).
 */
export async function claimStage(
  prisma: PrismaClient,
  stage: { id: string; attempts: number; startedAt: Date | null },
  claim: { workerId: string; parentCheckpointId: string | null; resumeStep: number },
): Promise<HeldStage | undefined> {
  const attempt = stage.attempts + 1;
  const claimed = await moveStages(prisma, { id: stage.id, attempts: stage.attempts }, 'start', {
    attempts: attempt,
    workerId: claim.workerId,
    startedAt: stage.startedAt ?? new Date(),
    parentCheckpointId: claim.parentCheckpointId,
    step: claim.resumeStep,
    error: null,
  });
  if (claimed.count === 0) return undefined;
  await prisma.stageEvent.create({
    data: {
      stageId: stage.id,
      workerId: claim.workerId,
      type: attempt === 1 ? 'started' : 'retried',
      step: claim.resumeStep,
      message: attempt === 1 ? undefined : `attempt ${attempt}, resuming from step ${claim.resumeStep}`,
    },
  });
  return { id: stage.id, attempt };
}

/**
 * Moves a stage held by this attempt along the state machine, with an event. False when the
 * row is no longer this attempt's.
 */
export async function moveHeldStage(
  prisma: PrismaClient,
  stage: HeldStage,
  transition: StageTransition,
  event: { type: DbModels.StageEventType; workerId: string; step?: number; message?: string },
  data: Prisma.StageUpdateManyMutationInput = {},
): Promise<boolean> {
  // One transaction: whoever sees the new status also sees its event.
  return prisma.$transaction(async (tx) => {
    const moved = await moveStages(tx, { id: stage.id, attempts: stage.attempt }, transition, data);
    if (moved.count === 0) return false;
    await tx.stageEvent.create({ data: { stageId: stage.id, ...event } });
    return true;
  });
}

/** Writes a held stage's progress; false when the row is no longer this attempt's. */
export async function updateHeldStage(
  prisma: PrismaClient,
  stage: HeldStage,
  progress: { step?: number; tokensPerSec?: number; backend?: string },
): Promise<boolean> {
  const r = await prisma.stage.updateMany({
    where: { id: stage.id, attempts: stage.attempt, status: 'running' },
    data: progress,
  });
  return r.count > 0;
}

/** Why a held stage's write was refused: another attempt has the stage, or its run has ended. */
export type FenceRefusal = { refused: 'lost' } | { refused: 'run-ended'; runStatus: 'cancelled' | 'failed' };

/**
 * The write fence of a training attempt: writes its progress and then `write` (checkpoint
 * rows, metric points) in one transaction, only while this attempt holds the stage and the
 * run is neither cancelled nor failed.
 *
 * The run's row is read FOR SHARE, so a cancel (an UPDATE of that row) waits for a write
 * already past the fence to commit, and every write that starts after the cancel has
 * committed sees it and is refused: no checkpoint or metric lands after a cancel is recorded.
 */
export async function writeHeldStage<T>(
  prisma: PrismaClient,
  stage: HeldStage,
  progress: { step?: number; tokensPerSec?: number; backend?: string },
  write: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<{ ok: true; value: T } | ({ ok: false } & FenceRefusal)> {
  return prisma.$transaction(async (tx) => {
    const [run] = await tx.$queryRaw<{ status: RunStatus }[]>`
      SELECT r.status::text AS status FROM "Run" r JOIN "Stage" s ON s."runId" = r.id
      WHERE s.id = ${stage.id} FOR SHARE OF r`;
    if (!run) return { ok: false, refused: 'lost' } as const;
    if (run.status === 'cancelled' || run.status === 'failed')
      return { ok: false, refused: 'run-ended', runStatus: run.status } as const;
    const held = await tx.stage.updateMany({
      where: { id: stage.id, attempts: stage.attempt, status: 'running' },
      data: progress,
    });
    if (held.count === 0) return { ok: false, refused: 'lost' } as const;
    return { ok: true, value: await write(tx) } as const;
  });
}

/**
 * Closes the stage of a run that was cancelled or failed while no worker held it (its worker
 * died), with an event. Nothing is written when it is closed already.
 */
export async function cancelStageOfEndedRun(
  prisma: PrismaClient,
  stageId: string,
  workerId: string,
  message: string,
): Promise<void> {
  const open = await moveStages(prisma, { id: stageId }, 'cancel', { finishedAt: new Date() });
  if (open.count > 0) await prisma.stageEvent.create({ data: { stageId, type: 'cancelled', workerId, message } });
}
