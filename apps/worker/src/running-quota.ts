/**
 * A run starts only within its key's running runs quota (core's running-quota.ts). The
 * prepare job, which starts a run, asks first; when the key runs as many runs as it may, the
 * job goes back to wait for `heldBackDelayMs` (BullMQ: moveToDelayed with the worker's token,
 * which frees the job's lock, then DelayedError, which tells the worker the job was moved).
 * Such a job is neither failed nor counted as an attempt (moveToDelayed skips the attempt
 * count), and the run stays queued. When its delay ends the job joins the back of the queue,
 * so the runs of other keys that came meanwhile go first. The run's first stage gets a
 * `queued` event saying why it waits: once per reason, not on every look.
 */
import { DelayedError, type Job } from 'bullmq';
import { startRunWithinQuota, type PrepareJob } from '@miniglm/core/service';
import type { WorkerContext } from './context.ts';

/** Starts the job's run, or puts the job back to wait and throws DelayedError. */
export async function startOrHoldBack(
  ctx: WorkerContext,
  job: Job<PrepareJob>,
  token: string | undefined,
): Promise<void> {
  const { runId } = job.data;
  const start = await startRunWithinQuota(ctx.db.prisma, runId, ctx.settings.defaultMaxRunningRuns);
  if (start.ok) return;
  if (await noteWaiting(ctx, runId, start.waiting)) ctx.log(`run ${runId}: ${start.waiting}`);
  await job.moveToDelayed(Date.now() + ctx.settings.heldBackDelayMs, token);
  throw new DelayedError();
}

/** Writes why the run waits on its first stage, unless that is its latest event already; true when written. */
async function noteWaiting(ctx: WorkerContext, runId: string, waiting: string): Promise<boolean> {
  const prisma = ctx.db.prisma;
  const first = await prisma.stage.findUnique({ where: { runId_index: { runId, index: 0 } }, select: { id: true } });
  if (!first) return false;
  const latest = await prisma.stageEvent.findFirst({
    where: { stageId: first.id },
    orderBy: [{ at: 'desc' }, { id: 'desc' }],
    select: { message: true },
  });
  if (latest?.message === waiting) return false;
  await prisma.stageEvent.create({
    data: { stageId: first.id, type: 'queued', workerId: ctx.workerId, message: waiting },
  });
  return true;
}
