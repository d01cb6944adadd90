/**
 * Writing run and stage state from a worker. Stage updates are fenced by the attempt
 * number: a worker that has lost its stage to another (it stalled, the job was retried
 * elsewhere) changes nothing, because its `attempts` no longer matches the row's.
 */
import { UnrecoverableError } from 'bullmq';
import { STAGE_TRANSITIONS, type StageTransition } from '@miniglm/core/service';
import type { DbModels } from '@miniglm/core/db';
import type { WorkerContext } from './context.ts';

export class StageLostError extends Error {
  override name = 'StageLostError';
}

export async function markRunRunning(ctx: WorkerContext, runId: string): Promise<void> {
  await ctx.db.prisma.run.updateMany({
    where: { id: runId, status: 'queued' },
    data: { status: 'running', startedAt: new Date() },
  });
}

/**
 * Ends a run as failed with a message a user can act on; stages that never ran are
 * cancelled. Returns the error to throw so that BullMQ does not retry it and the flow ends.
 */
export async function failRun(ctx: WorkerContext, runId: string, message: string): Promise<UnrecoverableError> {
  const now = new Date();
  const open = await ctx.db.prisma.stage.findMany({
    where: { runId, status: { in: ['queued', 'running'] } },
    select: { id: true, status: true },
  });
  await ctx.db.prisma.$transaction([
    ctx.db.prisma.run.updateMany({
      where: { id: runId, status: { in: ['queued', 'running'] } },
      data: { status: 'failed', error: message, finishedAt: now },
    }),
    // Conditional: a stage another process has just closed keeps what it was given.
    ...open.map((s) =>
      ctx.db.prisma.stage.updateMany({
        where: { id: s.id, status: s.status },
        data:
          s.status === 'running'
            ? { status: 'failed', error: message, finishedAt: now }
            : { status: 'cancelled', error: 'not run: the run failed earlier', finishedAt: now },
      }),
    ),
    ctx.db.prisma.stageEvent.createMany({
      data: open.map((s) => ({
        stageId: s.id,
        type: s.status === 'running' ? ('failed' as const) : ('cancelled' as const),
        workerId: ctx.workerId,
        message,
      })),
    }),
  ]);
  return new UnrecoverableError(message);
}

/** The run is over (cancelled or failed): a job of it that starts now should not do anything. */
export async function runIsOver(ctx: WorkerContext, runId: string): Promise<DbModels.Run | undefined> {
  const run = await ctx.db.prisma.run.findUnique({ where: { id: runId } });
  if (!run) return undefined;
  return run.status === 'cancelled' || run.status === 'failed' ? run : undefined;
}

/**
 * Moves a stage held by this attempt along the state machine, with an event. Throws
 * StageLostError when the row is no longer this attempt's.
 */
export async function moveStage(
  ctx: WorkerContext,
  stage: { id: string; attempt: number },
  transition: StageTransition,
  event: { type: DbModels.StageEventType; step?: number; message?: string },
  data: DbModels.Prisma.StageUpdateManyMutationInput = {},
): Promise<void> {
  const { from, to } = STAGE_TRANSITIONS[transition];
  // One transaction: whoever sees the new status also sees its event.
  await ctx.db.prisma.$transaction(async (tx) => {
    const moved = await tx.stage.updateMany({
      where: { id: stage.id, attempts: stage.attempt, status: { in: [...from] } },
      data: { ...data, status: to },
    });
    if (moved.count === 0)
      throw new StageLostError(`stage ${stage.id} is no longer held by attempt ${stage.attempt} of ${ctx.workerId}`);
    await tx.stageEvent.create({ data: { stageId: stage.id, workerId: ctx.workerId, ...event } });
  });
}
