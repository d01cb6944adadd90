/**
 * The retention policy (service/retention.ts): which checkpoints of a stage are kept, as a
 * pure choice and applied to real rows on Postgres, where aliased checkpoints, the ones a
 * stage starts from and evaluated ones are never deleted. Also the curriculum field's
 * defaults and limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, parseCurriculum, retentionOf } from '../src/index.ts';
import { ArtifactStore, type PrismaClient } from '../src/db/index.ts';
import { openTestDb, type TestDb } from '../src/db/testing.ts';
import { applyRetention, checkpointsToDrop, type RetentionCandidate } from '../src/service/index.ts';

/** Checkpoints at steps 10, 20, ..., with the val losses given (undefined: none recorded). */
const candidates = (losses: (number | undefined)[], pinned: number[] = []): RetentionCandidate[] =>
  losses.map((valLoss, i) => ({ id: `c${(i + 1) * 10}`, step: (i + 1) * 10, valLoss, pinned: pinned.includes(i) }));

describe('checkpointsToDrop', () => {
  it('keeps the last N and the best N by val loss, and drops the rest, latest first', () => {
    const all = candidates([5, 3, 1.5, 4, 2, 2.5, 3.5, 6]);
    expect(checkpointsToDrop(all, { keepLast: 3, keepBest: 1 })).toEqual(['c50', 'c40', 'c20', 'c10']);
    expect(checkpointsToDrop(all, { keepLast: 1, keepBest: 2 })).toEqual(['c70', 'c60', 'c40', 'c20', 'c10']);
    expect(checkpointsToDrop(all, { keepLast: 8, keepBest: 0 })).toEqual([]);
  });

  it('never drops a pinned checkpoint', () => {
    expect(checkpointsToDrop(candidates([5, 4, 3, 2, 1], [0, 2]), { keepLast: 1, keepBest: 0 })).toEqual([
      'c40',
      'c20',
    ]);
  });

  it('breaks a val-loss tie towards the earliest step, and ignores checkpoints without a finite val loss', () => {
    // A val loss measured at step 10 is carried by the checkpoints until the next evaluation.
    const all = candidates([undefined, 2, 2, 2, NaN, 3]);
    expect(checkpointsToDrop(all, { keepLast: 1, keepBest: 1 })).toEqual(['c50', 'c40', 'c30', 'c10']);
  });
});

describe('the curriculum field', () => {
  const base = {
    name: 'r',
    tokenizer: { name: 'char' },
    model: { layers: 1, dim: 8, blockSize: 8 },
    stages: [{ name: 's', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 10, batchSize: 2 }],
  };

  it('defaults to keeping the last 3 and the best 1; a partial policy gets the other default', () => {
    const parsed = parseCurriculum(base);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(retentionOf(parsed.value)).toEqual({ keepLast: 3, keepBest: 1 });
    expect(DEFAULTS.retention).toEqual({ keepLast: 3, keepBest: 1 });
    const partial = parseCurriculum({ ...base, retention: { keepLast: 10 } });
    if (!partial.ok) throw new Error(partial.error);
    expect(retentionOf(partial.value)).toEqual({ keepLast: 10, keepBest: 1 });
  });

  it('refuses keepLast 0 (a stage must keep its resume point) and unknown fields, naming them', () => {
    const zero = parseCurriculum({ ...base, retention: { keepLast: 0 } });
    expect(zero.ok).toBe(false);
    if (!zero.ok) expect(zero.error).toMatch(/^\/retention\/keepLast: /);
    const unknown = parseCurriculum({ ...base, retention: { keepAll: true } });
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error).toMatch(/^\/retention/);
  });
});

describe('applyRetention on Postgres', () => {
  let t: TestDb;
  let prisma: PrismaClient;
  beforeAll(async () => {
    t = await openTestDb('postgres', 'retention');
    prisma = t.db.prisma;
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('deletes what the policy drops, but keeps aliased, branched-from and evaluated checkpoints', async () => {
    const store = new ArtifactStore(t.db);
    const run = await prisma.run.create({ data: { name: 'kept', curriculum: {}, seed: 1, status: 'running' } });
    const stage = await prisma.stage.create({
      data: { runId: run.id, index: 0, name: 's', kind: 'pretrain', iterations: 100 },
    });
    const losses = [5, 4, 3, 3.5, 2, 2.5, 4.5, 6, 7, 8];
    const ids: string[] = [];
    for (const [i, valLoss] of losses.entries()) {
      const { sha256 } = await store.put(Buffer.from(`step ${(i + 1) * 10}`), 'checkpoint');
      const row = await prisma.checkpoint.create({
        data: { stageId: stage.id, step: (i + 1) * 10, artifactSha256: sha256, metrics: { valLoss } },
      });
      ids.push(row.id);
    }
    // Pins: an alias on step 10, another run's stage started from step 20, an evaluation of step 30.
    await prisma.alias.create({ data: { name: 'first', checkpointId: ids[0]! } });
    const other = await prisma.run.create({ data: { name: 'branch', curriculum: {}, seed: 1 } });
    await prisma.stage.create({
      data: { runId: other.id, index: 0, name: 's', kind: 'pretrain', iterations: 1, parentCheckpointId: ids[1] },
    });
    await prisma.evaluation.create({ data: { runId: run.id, checkpointId: ids[2]! } });

    const result = await prisma.$transaction((tx) => applyRetention(tx, stage.id, { keepLast: 3, keepBest: 1 }));
    // Kept: steps 80-100 (last 3), 50 (best), 10, 20, 30 (pinned). Deleted: 40, 60, 70.
    const kept = await prisma.checkpoint.findMany({ where: { stageId: stage.id }, orderBy: { step: 'asc' } });
    expect(kept.map((c) => c.step)).toEqual([10, 20, 30, 50, 80, 90, 100]);
    expect(result.deleted).toBe(3);
    const gone = [ids[3]!, ids[5]!, ids[6]!];
    const artifactsOfGone = result.artifacts;
    expect(artifactsOfGone).toHaveLength(3);
    expect(await prisma.checkpoint.count({ where: { id: { in: gone } } })).toBe(0);

    // Applied again with nothing new: nothing more goes.
    expect((await prisma.$transaction((tx) => applyRetention(tx, stage.id, DEFAULTS.retention))).deleted).toBe(0);
  });
});
