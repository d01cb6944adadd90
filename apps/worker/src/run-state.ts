/**
 * A worker's side of run and stage state: the statuses themselves are written by
 * `@miniglm/core/service`'s status.ts; here they become the errors a job processor throws.
 */
import { UnrecoverableError } from 'bullmq';
import { markRunFailed, moveHeldStage, type HeldStage, type StageTransition } from '@miniglm/core/service';
import type { DbModels } from '@miniglm/core/db';
import type { WorkerContext } from './context.ts';

/** This attempt no longer holds its stage: another worker has it now, or the run ended. */
export class StageLostError extends Error {
  override name = 'StageLostError';
}

/** The run of this attempt's stage was cancelled or failed: the write fence refuses its writes. */
export class RunEndedError extends Error {
  override name = 'RunEndedError';
  constructor(
    readonly runId: string,
    readonly runStatus: 'cancelled' | 'failed',
  ) {
    super(`run ${runId} is ${runStatus}`);
  }
}

/**
 * Ends a run as failed with a message a user can act on; stages that never ran are
 * cancelled. Returns the error to throw so that BullMQ does not retry it and the flow ends.
 */
export async function failRun(ctx: WorkerContext, runId: string, message: string): Promise<UnrecoverableError> {
  await markRunFailed(ctx.db.prisma, runId, message, ctx.workerId);
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
  stage: HeldStage,
  transition: StageTransition,
  event: { type: DbModels.StageEventType; step?: number; message?: string },
  data: DbModels.Prisma.StageUpdateManyMutationInput = {},
): Promise<void> {
  if (!(await moveHeldStage(ctx.db.prisma, stage, transition, { ...event, workerId: ctx.workerId }, data)))
    throw new StageLostError(`stage ${stage.id} is no longer held by attempt ${stage.attempt} of ${ctx.workerId}`);
}
