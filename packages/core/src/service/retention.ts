/**
 * Retention: which checkpoints of a stage a run keeps as new ones land. Applied by the
 * worker after each checkpoint it stores (apps/worker/src/train.ts), inside the stage's
 * write fence, so that nothing is deleted once the run is cancelled.
 *
 * Kept, per stage: the `keepLast` latest (the latest is the resume point), the `keepBest`
 * with the lowest val loss recorded with them, and every checkpoint that is pinned: named by
 * an alias, the one a stage starts from (the next stage's, or another run's initFrom), or the
 * one an evaluation was measured on. A stage's final checkpoint is its latest, so it stays.
 * Everything else is deleted; the bytes go with it unless another row shares them
 * (garbage.ts). Pins are checked again in the DELETE itself, so an alias or a branch made
 * while the policy runs is never undone.
 */
import type { Prisma } from '../db/index.ts';
import type { RetentionConfig } from '../curriculum.ts';

/** What the policy needs to know of one checkpoint. */
export interface RetentionCandidate {
  id: string;
  step: number;
  /** The val loss recorded with the checkpoint (the stage's latest evaluation at that step), if any. */
  valLoss?: number;
  /** Named by an alias, a stage's starting point, or evaluated: never deleted. */
  pinned: boolean;
}

/**
 * The ids the policy deletes, latest first. Ties in val loss go to the earlier step: a val
 * loss is measured every evalEvery steps and recorded with every checkpoint until the next
 * evaluation, so the earliest one carrying it is the one it was measured nearest to.
 */
export function checkpointsToDrop(checkpoints: readonly RetentionCandidate[], policy: RetentionConfig): string[] {
  const latestFirst = [...checkpoints].sort((a, b) => b.step - a.step);
  const kept = new Set(latestFirst.slice(0, policy.keepLast).map((c) => c.id));
  const best = checkpoints
    .filter((c) => c.valLoss !== undefined && Number.isFinite(c.valLoss))
    .sort((a, b) => a.valLoss! - b.valLoss! || a.step - b.step)
    .slice(0, policy.keepBest);
  for (const c of best) kept.add(c.id);
  return latestFirst.filter((c) => !kept.has(c.id) && !c.pinned).map((c) => c.id);
}

/** A checkpoint that nothing pins: no alias, no stage starting from it, no evaluation. */
const UNPINNED = { aliases: { none: {} }, childStages: { none: {} }, evaluations: { none: {} } } as const;

/**
 * Deletes the stage's checkpoints the policy does not keep; returns the artifacts they named,
 * for garbage collection once the transaction has committed.
 */
export async function applyRetention(
  tx: Prisma.TransactionClient,
  stageId: string,
  policy: RetentionConfig,
): Promise<{ deleted: number; artifacts: string[] }> {
  const rows = await tx.checkpoint.findMany({
    where: { stageId },
    select: {
      id: true,
      step: true,
      metrics: true,
      artifactSha256: true,
      _count: { select: { aliases: true, childStages: true, evaluations: true } },
    },
  });
  const drop = checkpointsToDrop(
    rows.map((r) => {
      const valLoss = (r.metrics as { valLoss?: unknown } | null)?.valLoss;
      const pins = r._count.aliases + r._count.childStages + r._count.evaluations;
      return { id: r.id, step: r.step, valLoss: typeof valLoss === 'number' ? valLoss : undefined, pinned: pins > 0 };
    }),
    policy,
  );
  if (drop.length === 0) return { deleted: 0, artifacts: [] };
  // Lock the rows first. A run submitted meanwhile with one of them as its initFrom holds a
  // key-share lock on it (its stage's foreign key) until it commits; FOR UPDATE waits for that,
  // and the DELETE below, a new statement, then sees the new stage and keeps the checkpoint.
  // Without the lock the DELETE could pass its NOT EXISTS and fail on the foreign key,
  // failing the checkpoint's whole write. (The other order, this first, is submit's 409.)
  await tx.$queryRawUnsafe(`SELECT "id" FROM "Checkpoint" WHERE "id" = ANY($1::text[]) FOR UPDATE`, drop);
  const { count } = await tx.checkpoint.deleteMany({ where: { id: { in: drop }, ...UNPINNED } });
  const dropped = new Set(drop);
  return { deleted: count, artifacts: rows.filter((r) => dropped.has(r.id)).map((r) => r.artifactSha256) };
}
