/**
 * Starting a run within its owner's running runs quota (service/running-quota.ts) against a
 * real Postgres: many starts of one owner at once start no more runs than its limit (the
 * owner's advisory lock), a key's own limit comes before the default, keyless runs share the
 * default as one owner, admin keys are not limited, and a run that is not queued goes on
 * without being counted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/db/index.ts';
import { openTestDb, type TestDb } from '../src/db/testing.ts';
import { createApiKey, startRunWithinQuota } from '../src/service/index.ts';

let t: TestDb;
let prisma: PrismaClient;
beforeAll(async () => {
  t = await openTestDb('postgres', 'running_quota_start');
  prisma = t.db.prisma;
});
afterAll(async () => {
  await t?.cleanup();
});

/** `count` queued runs of `ownerId` (null: keyless); their ids. */
async function queuedRuns(ownerId: string | null, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push((await prisma.run.create({ data: { name: `r${i}`, seed: 1, curriculum: {}, ownerId } })).id);
  return ids;
}

const running = (ownerId: string | null) => prisma.run.count({ where: { ownerId, status: 'running' } });

describe('startRunWithinQuota', () => {
  it("starts at most the key's own limit of its runs when many are started at once", async () => {
    const key = await createApiKey(prisma, { name: 'busy', role: 'member', quotas: { maxRunningRuns: 2 } });
    const runs = await queuedRuns(key.id, 8);
    const starts = await Promise.all(runs.map((id) => startRunWithinQuota(prisma, id, 20)));
    expect(starts.filter((s) => s.ok)).toHaveLength(2);
    expect(await running(key.id)).toBe(2);
    const held = starts.find((s) => !s.ok);
    expect(held).toEqual({
      ok: false,
      waiting:
        `waiting: key ${key.id} ("busy") has 2 of 2 runs running, the most it may run at once (running runs quota: ` +
        `this key's own limit, set by miniglm keys set ${key.id} --max-running-runs); this run starts when one of them ends`,
    });
    // A held run stays queued, and starts once one of the running ones has ended.
    const [done] = await prisma.run.findMany({ where: { ownerId: key.id, status: 'running' } });
    await prisma.run.update({ where: { id: done!.id }, data: { status: 'succeeded' } });
    const queued = await prisma.run.findMany({ where: { ownerId: key.id, status: 'queued' } });
    expect(queued).toHaveLength(6);
    expect(await startRunWithinQuota(prisma, queued[0]!.id, 20)).toEqual({ ok: true });
    expect(await startRunWithinQuota(prisma, queued[1]!.id, 20)).toMatchObject({ ok: false });
  });

  it('keyless runs share the default as one owner, naming MINIGLM_QUOTA_RUNNING_RUNS', async () => {
    const runs = await queuedRuns(null, 3);
    const starts = await Promise.all(runs.map((id) => startRunWithinQuota(prisma, id, 1)));
    expect(starts.filter((s) => s.ok)).toHaveLength(1);
    expect(starts.find((s) => !s.ok)).toEqual({
      ok: false,
      waiting:
        'waiting: keyless use (every run and file without a key) has 1 of 1 runs running, the most it may run at once ' +
        "(running runs quota: MINIGLM_QUOTA_RUNNING_RUNS, the service's default); this run starts when one of them ends",
    });
  });

  it('does not limit admin keys, and lets a run that is running already go on', async () => {
    const admin = await createApiKey(prisma, { name: 'ops', role: 'admin', quotas: { maxRunningRuns: 1 } });
    const runs = await queuedRuns(admin.id, 3);
    for (const id of runs) expect(await startRunWithinQuota(prisma, id, 1)).toEqual({ ok: true });
    expect(await running(admin.id)).toBe(3);

    const member = await createApiKey(prisma, { name: 'again', role: 'member', quotas: { maxRunningRuns: 1 } });
    const [first] = await queuedRuns(member.id, 1);
    expect(await startRunWithinQuota(prisma, first!, 20)).toEqual({ ok: true });
    // Its flow queued again (the reconciler): the run is counted once, and goes on.
    expect(await startRunWithinQuota(prisma, first!, 20)).toEqual({ ok: true });
    expect(await running(member.id)).toBe(1);
  });
});
