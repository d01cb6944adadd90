/**
 * The running runs quota: at most so many of an owner's runs run at once (its key's own
 * maxRunningRuns, else the service's MINIGLM_QUOTA_RUNNING_RUNS). A submission is accepted
 * whatever its owner has running (the queued runs quota bounds how many runs wait); the cap is
 * kept where a run starts. Its prepare job moves it from queued to running through
 * startRunWithinQuota, which counts the owner's running runs and starts this one under the
 * owner's advisory lock (quotas.ts), so two workers cannot both start the run one past the
 * limit. A run refused here stays queued, and its worker puts the job back to wait
 * (apps/worker/src/running-quota.ts).
 */
import type { PrismaClient } from '../db/index.ts';
import { DEFAULT_QUOTAS, lockOwner, ownerLimits, OWNER_LOCK_TRANSACTION, quotasApply } from './quotas.ts';
import { markRunRunning } from './status.ts';

export type RunStart =
  /**
   * The run may go on: it was queued and is running now, or it was not queued (running
   * already, its flow queued again by the reconciler; or ended, which the job sees itself).
   */
  | { ok: true }
  /** Its owner is at its limit: the run stays queued. `waiting` says why, in words for its events. */
  | { ok: false; waiting: string };

/**
 * Starts a queued run if its owner has fewer runs running than its limit (`defaultLimit` when
 * its key has none of its own); admin keys are not limited (quotasApply).
 */
export async function startRunWithinQuota(
  prisma: PrismaClient,
  runId: string,
  defaultLimit: number,
): Promise<RunStart> {
  return prisma.$transaction(async (tx) => {
    const run = await tx.run.findUnique({
      where: { id: runId },
      select: { status: true, ownerId: true, owner: { select: { role: true } } },
    });
    if (!run || run.status !== 'queued') return { ok: true };
    // Keyless use (no owner) acts as an admin, and quotasApply does not spare it.
    if (quotasApply({ keyId: run.ownerId, role: run.owner?.role ?? 'admin' })) {
      await lockOwner(tx, run.ownerId);
      // After the lock: every run of this owner that another worker started has committed.
      const running = await tx.run.count({ where: { ownerId: run.ownerId, status: 'running' } });
      // Only the running runs default matters here; the others are the API's to check.
      const owner = { ownerId: run.ownerId, defaults: { ...DEFAULT_QUOTAS, runningRuns: defaultLimit } };
      const { limits, who, setBy } = await ownerLimits(tx, owner);
      if (running >= limits.runningRuns)
        return {
          ok: false,
          waiting:
            `waiting: ${who} has ${running} of ${limits.runningRuns} runs running, the most it may run at once ` +
            `(running runs quota: ${setBy('runningRuns')}); this run starts when one of them ends`,
        };
    }
    await markRunRunning(tx, runId);
    return { ok: true };
  }, OWNER_LOCK_TRANSACTION);
}
