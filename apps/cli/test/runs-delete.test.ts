/**
 * `miniglm runs delete <id>` against an API this test starts on the real Postgres and Redis:
 * a finished run goes; a run that is still queued is refused in one line that says to cancel
 * it first, and stays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type StartedApi } from '@miniglm/api';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { createRedis, deleteKeysWithPrefix, DEFAULT_REDIS_URL } from '@miniglm/core/service';
import { expectOneLineError, expectSuccess, runCli, useTempDir } from './helpers.ts';

const dir = useTempDir('runs-delete');
const prefix = `miniglm-test-cli-delete-${process.pid}`;
const redis = createRedis(process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL, { failFast: true });
let t: TestDb;
let api: StartedApi;

beforeAll(async () => {
  t = await openTestDb('postgres', 'cli_delete');
  api = await startApi({ db: t.db, redis, prefix, port: 0, logger: false });
});

afterAll(async () => {
  await api?.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await t?.cleanup();
});

const runRow = (name: string, status: 'succeeded' | 'queued') =>
  t.db.prisma.run.create({ data: { name, curriculum: {}, seed: 1, status } });

describe('miniglm runs delete', () => {
  it('deletes a finished run, and refuses a queued one in one line', async () => {
    const done = await runRow('finished', 'succeeded');
    const deleted = await runCli(['runs', 'delete', done.id, '--api', api.url], dir());
    expectSuccess(deleted);
    expect(deleted.stdout.trim()).toBe(`deleted run ${done.id}`);
    expect(await t.db.prisma.run.count({ where: { id: done.id } })).toBe(0);

    const queued = await runRow('waiting', 'queued');
    const refused = await runCli(['runs', 'delete', queued.id, '--api', api.url], dir());
    expectOneLineError(
      refused,
      new RegExp(`DELETE /v1/runs/${queued.id}: 409 run "waiting" \\(${queued.id}\\) is queued: cancel it first`),
    );
    expect(await t.db.prisma.run.count({ where: { id: queued.id } })).toBe(1);

    expectOneLineError(await runCli(['runs', 'delete', '--api', api.url], dir()), /runs delete: name the run/);
  });
});
